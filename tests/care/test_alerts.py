"""Every alert reason of CARE_PLAN.md, with the boundary on both sides."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from care.channels import ProviderChannel
from care.outreach import run_outreach
from tests.factories import NOW, SCREENING, event, racemic_session

T0 = NOW - timedelta(days=30)
BP = {"systolic": 128, "diastolic": 82}


def enrolled(pid="P0001"):
    return [
        event("patient.registered", pid, at=T0 - timedelta(days=3)),
        event("rems.enrolled", pid, at=T0 - timedelta(days=2), enrolled_on=str((T0 - timedelta(days=2)).date())),
    ]


def session(pid="P0001", at=T0, **fields):
    return event("session.completed", pid, at=at, **fields)


def reasons_for(clinic, *events):
    clinic.land(*events)
    return clinic.reasons()


@pytest.mark.parametrize("items,expected", [([1] * 8 + [1], True), ([3] * 8 + [0], False), ([0] * 8 + [3], True)])
def test_phq9_item9_positive_from_intake(clinic, items, expected):
    r = reasons_for(clinic, event("intake.assessed", phq9_items=items))
    assert ("phq9_item9_positive" in r) is expected


def test_phq9_item9_positive_from_checkin_is_urgent(clinic):
    c = event("checkin.completed", phq9_items=[0] * 8 + [2])
    clinic.land(c)
    assert clinic.alerts() == [("phq9_item9_positive", c["event_id"], "urgent")]


@pytest.mark.parametrize(
    "field,bp,expected",
    [
        ("bp_40min", {"systolic": 180, "diastolic": 100}, True),
        ("bp_40min", {"systolic": 179, "diastolic": 109}, False),
        ("bp_discharge", {"systolic": 150, "diastolic": 110}, True),
        ("bp_pre", {"systolic": 185, "diastolic": 100}, True),
    ],
)
def test_bp_crisis(clinic, field, bp, expected):
    r = reasons_for(clinic, *enrolled(), session(**{field: bp}))
    assert ("bp_crisis" in r) is expected


@pytest.mark.parametrize("severity,expected", [("serious", True), ("severe", False)])
def test_serious_adverse_event_in_session(clinic, severity, expected):
    r = reasons_for(clinic, *enrolled(), session(adverse_events=[{"code": "other", "severity": severity}]))
    assert ("serious_adverse_event" in r) is expected


def test_serious_adverse_event_reported_later(clinic):
    e = event("adverse_event.reported", severity="serious")
    clinic.land(e, event("adverse_event.reported", severity="moderate"))
    assert clinic.alerts() == [("serious_adverse_event", e["event_id"], "urgent")]


@pytest.mark.parametrize(
    "fields,expected", [({"respiratory_depression": True}, True), ({"spo2_min": 89}, True), ({"spo2_min": 90}, False)]
)
def test_respiratory_depression(clinic, fields, expected):
    r = reasons_for(clinic, *enrolled(), session(**fields))
    assert ("respiratory_depression" in r) is expected


@pytest.mark.parametrize("minutes,expected", [(119, True), (120, False)])
def test_rems_monitoring_short(clinic, minutes, expected):
    start = T0 - timedelta(hours=4)
    s = session(started_at=start.isoformat(), ended_at=(start + timedelta(minutes=minutes)).isoformat())
    assert ("rems_monitoring_short" in reasons_for(clinic, *enrolled(), s)) is expected


def test_rems_monitoring_short_is_for_esketamine_only(clinic):
    body = racemic_session(T0)
    start = T0 - timedelta(hours=3)
    body.update(started_at=start.isoformat(), ended_at=(start + timedelta(minutes=50)).isoformat())
    assert "rems_monitoring_short" not in reasons_for(clinic, event("session.completed", at=T0, body=body))


@pytest.mark.parametrize(
    "bp,expected",
    [
        ({"systolic": 141, "diastolic": 80}, True),
        ({"systolic": 140, "diastolic": 90}, False),
        ({"systolic": 120, "diastolic": 91}, True),
    ],
)
def test_dosed_above_bp_threshold(clinic, bp, expected):
    assert ("dosed_above_bp_threshold" in reasons_for(clinic, *enrolled(), session(bp_pre=bp))) is expected


@pytest.mark.parametrize(
    "flag,expected",
    [
        ("arteriovenous_malformation", True),
        ("pregnant", True),
        ("ketamine_hypersensitivity", True),
        ("aneurysmal_vascular_disease", True),
        ("intracerebral_hemorrhage_history", True),
        ("active_substance_use_disorder", False),
    ],
)
def test_dosed_despite_contraindication(clinic, flag, expected):
    intake = event("intake.assessed", at=T0 - timedelta(days=1), screening={**SCREENING, flag: True})
    assert ("dosed_despite_contraindication" in reasons_for(clinic, *enrolled(), intake, session())) is expected


def test_contraindication_judged_by_the_latest_screening_before_the_session(clinic):
    flagged = event("intake.assessed", at=T0 - timedelta(days=5), screening={**SCREENING, "pregnant": True})
    cleared = event("intake.assessed", at=T0 - timedelta(days=1), screening=dict(SCREENING))
    after = event("intake.assessed", at=T0 + timedelta(days=1), screening={**SCREENING, "pregnant": True})
    assert "dosed_despite_contraindication" not in reasons_for(clinic, *enrolled(), flagged, cleared, after, session())


def test_late_screening_raises_the_alert_when_it_lands(clinic):
    clinic.land(*enrolled(), session())
    assert "dosed_despite_contraindication" not in clinic.reasons()
    clinic.land(event("intake.assessed", at=T0 - timedelta(days=1), screening={**SCREENING, "pregnant": True}))
    assert "dosed_despite_contraindication" in clinic.reasons()


def test_esketamine_without_rems_enrollment(clinic):
    reg = event("patient.registered", at=T0 - timedelta(days=3))
    assert "esketamine_without_rems_enrollment" in reasons_for(clinic, reg, session())


def test_enrollment_after_the_session_does_not_count(clinic):
    late = event("rems.enrolled", at=T0 + timedelta(days=1), enrolled_on=str((T0 + timedelta(days=1)).date()))
    assert "esketamine_without_rems_enrollment" in reasons_for(clinic, late, session())


def test_racemic_needs_no_rems_enrollment(clinic):
    assert "esketamine_without_rems_enrollment" not in reasons_for(
        clinic, event("session.completed", at=T0, body=racemic_session(T0))
    )


def test_enrollment_arriving_late_withdraws_the_alert_never_deletes_it(clinic):
    clinic.land(event("patient.registered", at=T0 - timedelta(days=3)), session())
    assert "esketamine_without_rems_enrollment" in clinic.reasons()
    clinic.land(event("rems.enrolled", at=T0 - timedelta(days=2), enrolled_on=str((T0 - timedelta(days=2)).date())))
    assert "esketamine_without_rems_enrollment" not in clinic.reasons()
    assert [r for r, _, _ in clinic.alerts("withdrawn")] == ["esketamine_without_rems_enrollment"]


@pytest.mark.parametrize(
    "items,expected",
    [
        ([3, 3, 3, 3, 3, 0, 0, 0, 0], True),  # 15 = baseline + 5
        ([3, 3, 3, 3, 2, 0, 0, 0, 0], False),
    ],
)  # 14
def test_worsening(clinic, items, expected):
    base = event("intake.assessed", at=T0, phq9_items=[2, 2, 2, 2, 2, 0, 0, 0, 0])  # 10
    checkin = event("checkin.completed", at=T0 + timedelta(days=10), phq9_items=items)
    assert ("worsening" in reasons_for(clinic, base, checkin)) is expected


def test_worsening_when_the_checkin_arrives_before_the_baseline(clinic):
    clinic.land(event("checkin.completed", at=T0 + timedelta(days=10), phq9_items=[3] * 6 + [0] * 3))  # 18
    assert "worsening" not in clinic.reasons()
    clinic.land(event("intake.assessed", at=T0, phq9_items=[1] * 8 + [0]))  # baseline 8
    assert "worsening" in clinic.reasons()


def test_rems_form_overdue_is_raised_by_outreach_once(clinic):
    s = session()
    clinic.land(*enrolled(), s)
    sent = []
    channel = ProviderChannel("fake", type("P", (), {"send": lambda self, *a: sent.append(a)})())
    due = datetime.fromisoformat(s["payload"]["ended_at"]) + timedelta(days=7)
    run_outreach(clinic.conn, clinic.settings, due - timedelta(minutes=1), channel)
    assert "rems_form_overdue" not in clinic.reasons()
    r1 = run_outreach(clinic.conn, clinic.settings, due + timedelta(days=1), channel)
    r2 = run_outreach(clinic.conn, clinic.settings, due + timedelta(days=2), channel)
    assert (r1.rems_overdue_alerts, r2.rems_overdue_alerts) == (1, 0)
    assert ("rems_form_overdue", s["event_id"], "routine") in clinic.alerts()


def test_filed_rems_form_raises_no_overdue_alert(clinic):
    clinic.land(*enrolled(), session(), event("rems.form_submitted", at=T0 + timedelta(days=2)))
    channel = ProviderChannel("fake", type("P", (), {"send": lambda self, *a: None})())
    run_outreach(clinic.conn, clinic.settings, T0 + timedelta(days=20), channel)
    assert "rems_form_overdue" not in clinic.reasons()


def test_one_alert_per_event_and_reason_on_replay(clinic):
    evs = [*enrolled(), session(bp_pre={"systolic": 190, "diastolic": 115}, spo2_min=80)]
    clinic.land(*evs)
    first = clinic.alerts()
    outbox = clinic.conn.execute("SELECT count(*) FROM outbox WHERE kind = 'alert'").fetchall()[0][0]
    clinic.land(*evs)
    clinic.land(*evs, batches=[[e] for e in evs])
    assert clinic.alerts() == first
    assert clinic.conn.execute("SELECT count(*) FROM outbox WHERE kind = 'alert'").fetchall()[0][0] == outbox == 3


def test_alert_message_matches_the_contract_and_urgent_ones_go_first(clinic):
    import json

    clinic.land(*enrolled(), session(bp_pre={"systolic": 150, "diastolic": 80}, spo2_min=80))
    rows = clinic.conn.execute("SELECT value FROM outbox WHERE kind = 'alert' ORDER BY created_at").fetchall()
    msgs = [json.loads(bytes(v)) for (v,) in rows]
    assert [m["payload"]["severity"] for m in msgs] == ["urgent", "high"]
    assert all(m["event_type"] == "clinical.alert" and m["event_id"] == m["payload"]["alert_id"] for m in msgs)


def test_thresholds_are_settings(settings, tmp_path):
    from tests.care.conftest import Clinic

    strict = settings.model_copy(
        update={"care_bp_crisis_systolic": 170, "care_spo2_min": 95, "warehouse_path": tmp_path / "strict.duckdb"}
    )
    c = Clinic(strict, quality=False)
    c.land(*enrolled(), session(bp_40min={"systolic": 175, "diastolic": 90}, spo2_min=93))
    assert {"bp_crisis", "respiratory_depression"} <= set(c.reasons())
    c.conn.close()


def _intake(**screening):
    return event(
        "intake.assessed",
        at=T0 - timedelta(days=1),
        screening={**SCREENING, **screening},
        phq9_items=[2, 2, 2, 2, 2, 0, 0, 0, 0],
    )  # baseline 10


def _checkin(total_from_five_items):
    return event(
        "checkin.completed", at=T0 + timedelta(days=10), phq9_items=[3, 3, 3, 3, total_from_five_items - 12, 0, 0, 0, 0]
    )


# The source event lands in a later batch than its context, so it is judged on the fresh-event
# path (no context event in its batch): the context must still reach it.
@pytest.mark.parametrize(
    "context,source,reason,expected",
    [
        ([*enrolled(), _intake(pregnant=True)], session(), "dosed_despite_contraindication", True),
        ([*enrolled(), _intake()], session(), "dosed_despite_contraindication", False),
        (
            [event("patient.registered", at=T0 - timedelta(days=3))],
            session(),
            "esketamine_without_rems_enrollment",
            True,
        ),
        (enrolled(), session(), "esketamine_without_rems_enrollment", False),
        ([_intake()], _checkin(15), "worsening", True),
        ([_intake()], _checkin(14), "worsening", False),
    ],
)
def test_history_dependent_alerts_when_the_source_lands_after_its_context(clinic, context, source, reason, expected):
    clinic.land(*context)
    clinic.land(source)
    assert (reason in clinic.reasons()) is expected
