"""The alert lifecycle through real landing into a real DuckDB file: episodes, actions, messages."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

from care.episodes import episode_id
from care.rules import stable_id
from schemas.messages import Message
from schemas.validate import Clock
from tests.care.conftest import Clinic
from tests.factories import event
from warehouse.landing import land_batch

T0 = datetime(2026, 6, 1, 9, 0, tzinfo=timezone.utc)
URGENT_ITEMS = [0] * 8 + [2]


def checkin(pid="P0001", minutes=0.0):
    """A check-in with PHQ-9 item 9 positive: an urgent phq9_item9_positive alert of its own."""
    return event("checkin.completed", pid, at=T0 + timedelta(minutes=minutes), phq9_items=URGENT_ITEMS)


def alert_of(e: dict, reason="phq9_item9_positive") -> str:
    return stable_id(e["event_id"], reason)


def ack(alert_id, minutes, pid="P0001", by="nurse-7"):
    return event("alert.acknowledged", pid, at=T0 + timedelta(minutes=minutes), alert_id=alert_id, by=by)


def resolve(alert_id, minutes, pid="P0001", resolution="actioned", by="dr-2"):
    return event(
        "alert.resolved", pid, at=T0 + timedelta(minutes=minutes), alert_id=alert_id, by=by, resolution=resolution
    )


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def messages(clinic: Clinic) -> list[dict]:
    rows = clinic.conn.execute("SELECT value FROM outbox WHERE kind = 'alert' ORDER BY created_at").fetchall()
    return [json.loads(bytes(v)) for (v,) in rows]


def episode_rows(clinic: Clinic) -> list[dict]:
    cur = clinic.conn.execute("SELECT * FROM alert_episodes ORDER BY opened_at, episode_id")
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r)) for r in cur.fetchall()]


def test_a_repeat_joins_the_open_episode_and_is_published_as_repeated(clinic):
    c1, c2 = checkin(minutes=0), checkin(minutes=60)
    clinic.land(c1, clock=at(1))
    clinic.land(c2, clock=at(61))
    [ep] = episode_rows(clinic)
    assert ep["episode_id"] == episode_id(alert_of(c1)) and ep["occurrences"] == 2 and ep["status"] == "open"
    first, second = messages(clinic)
    assert first["event_id"] == alert_of(c1) and first["payload"]["action"] == "raised"
    assert second["event_id"] == alert_of(c2) and second["payload"]["action"] == "repeated"
    assert second["payload"]["episode_id"] == ep["episode_id"] and second["payload"]["occurrences"] == 2
    assert {m["payload"]["escalation_level"] for m in (first, second)} == {0}
    ids = clinic.conn.execute("SELECT DISTINCT episode_id FROM clinical_alerts").fetchall()
    assert ids == [(ep["episode_id"],)]


def test_a_resolution_before_a_new_alert_opens_a_new_episode_published_as_raised(clinic):
    c1, c2 = checkin(minutes=0), checkin(minutes=120)
    clinic.land(c1, clock=at(1))
    clinic.land(resolve(alert_of(c1), 30, resolution="no_action_needed"), clock=at(31))
    clinic.land(c2, clock=at(121))
    old, new = episode_rows(clinic)
    assert old["status"] == "resolved" and old["resolution"] == "no_action_needed" and old["resolved_by"] == "dr-2"
    assert old["acknowledged_at"] == old["resolved_at"] == at(30)
    assert new["status"] == "open" and new["episode_id"] == episode_id(alert_of(c2))
    assert [m["payload"]["action"] for m in messages(clinic)] == ["raised", "raised"]


def test_acknowledging_any_alert_acknowledges_the_episode_and_a_second_changes_nothing(clinic):
    c1, c2 = checkin(minutes=0), checkin(minutes=10)
    clinic.land(c1, c2, clock=at(11))
    clinic.land(ack(alert_of(c2), 14, by="nurse-1"), clock=at(15))
    clinic.land(ack(alert_of(c1), 20, by="nurse-2"), clock=at(21))
    [ep] = episode_rows(clinic)
    assert ep["status"] == "acknowledged" and ep["acknowledged_at"] == at(14) and ep["acknowledged_by"] == "nurse-1"


def test_an_action_waits_for_an_alert_that_has_not_arrived(clinic):
    c1 = checkin(minutes=0)
    clinic.land(ack(alert_of(c1), 5), clock=at(6))
    assert episode_rows(clinic) == []
    assert clinic.conn.execute("SELECT count(*) FROM alert_acknowledgements").fetchall()[0][0] == 1
    clinic.land(c1, clock=at(7))
    [ep] = episode_rows(clinic)
    assert ep["status"] == "acknowledged" and ep["acknowledged_at"] == at(5)


def test_an_action_naming_another_patients_alert_is_rejected_at_patient_id(settings):
    clinic = Clinic(settings)
    c1 = checkin("P0001", minutes=0)
    clinic.land(c1, clock=at(1))
    wrong = ack(alert_of(c1), 5, pid="P0002")
    result = land_batch(
        clinic.conn, [Message("file:t", 0, 99, None, json.dumps(wrong).encode())], Clock(at(6)), clinic.cfg
    )
    assert result.quarantined == {"schema": 1}
    kind, errors, public = clinic.conn.execute("SELECT error_kind, errors, public_errors FROM quarantine").fetchall()[0]
    assert kind == "schema" and json.loads(errors)[0]["loc"] == "patient_id"
    assert json.loads(public) == [{"loc": "patient_id", "msg": "the alert named belongs to another patient"}]
    assert "P0001" not in errors, "the other patient's id must not leak to the publisher"
    assert episode_rows(clinic)[0]["status"] == "open"
    clinic.conn.close()


def test_withdrawal_is_published_once_and_a_return_reopens_the_episode(clinic):
    """A session without REMS enrollment raises esketamine_without_rems_enrollment; a late enrollment
    withdraws it; a corrected enrollment date brings it back; a second withdrawal is not re-published."""
    reg = event("patient.registered", at=T0 - timedelta(days=30))
    sess = event("session.completed", at=T0)
    clinic.land(reg, sess, clock=at(1))
    aid = alert_of(sess, "esketamine_without_rems_enrollment")
    [ep] = [e for e in episode_rows(clinic) if e["reason"] == "esketamine_without_rems_enrollment"]
    assert ep["status"] == "open"
    day = (T0 - timedelta(days=5)).date().isoformat()
    clinic.land(event("rems.enrolled", at=T0 + timedelta(hours=2), enrolled_on=day), clock=at(200))
    [ep] = [e for e in episode_rows(clinic) if e["reason"] == "esketamine_without_rems_enrollment"]
    assert ep["status"] == "withdrawn" and ep["withdrawn_at"] == at(200)
    withdrawn = [m for m in messages(clinic) if m["payload"]["action"] == "withdrawn"]
    assert [m["event_id"] for m in withdrawn] == [stable_id(aid, "withdrawn")]
    assert withdrawn[0]["payload"]["alert_id"] == aid and withdrawn[0]["payload"]["episode_id"] == ep["episode_id"]
    assert withdrawn[0]["patient_id"] == "P0001" and withdrawn[0]["payload"]["occurrences"] == 1


def test_an_episode_whose_alert_comes_back_reopens(clinic):
    reg = event("patient.registered", at=T0 - timedelta(days=30))
    sess = event("session.completed", at=T0)
    clinic.land(reg, sess, clock=at(1))
    # An intake with a contraindication makes the session dosed_despite_contraindication...
    flagged = event("intake.assessed", at=T0 - timedelta(days=1), **{"screening": _screening(pregnant=True)})
    clinic.land(flagged, clock=at(10))
    reason = "dosed_despite_contraindication"
    assert _status(clinic, reason) == "open"
    # ...until a later screening before the session clears it (withdrawn)...
    clear = event("intake.assessed", at=T0 - timedelta(hours=12), **{"screening": _screening()})
    clinic.land(clear, clock=at(20))
    assert _status(clinic, reason) == "withdrawn"
    # ...and a screening closer to the session flags it again: the same episode reopens.
    again = event("intake.assessed", at=T0 - timedelta(hours=1), **{"screening": _screening(pregnant=True)})
    clinic.land(again, clock=at(30))
    assert _status(clinic, reason) == "open"
    withdrawn = [m for m in messages(clinic) if m["payload"]["action"] == "withdrawn"]
    assert len(withdrawn) == 1


def _status(clinic, reason):
    [ep] = [e for e in episode_rows(clinic) if e["reason"] == reason]
    return ep["status"]


def _screening(**flags):
    from schemas.events import SCREENING_FIELDS

    return {k: flags.get(k, False) for k in SCREENING_FIELDS}


def test_rems_form_overdue_keeps_one_alert_per_session_in_one_episode(settings):
    from care.channels import ProviderChannel
    from care.outreach import run_outreach

    class Sink:
        def send(self, *args):
            pass

    clinic = Clinic(settings)
    reg = event("patient.registered", at=T0 - timedelta(days=60))
    day = (T0 - timedelta(days=59)).date().isoformat()
    enrolled = event("rems.enrolled", at=T0 - timedelta(days=59), enrolled_on=day)
    s1 = event("session.completed", at=T0 - timedelta(days=30), session_id="S-1")
    s2 = event("session.completed", at=T0 - timedelta(days=20), session_id="S-2")
    clinic.land(reg, enrolled, s1, s2, clock=T0)
    run_outreach(clinic.conn, settings, T0, ProviderChannel("sink", Sink()))
    rows = clinic.conn.execute(
        "SELECT episode_id, source_event_id FROM clinical_alerts WHERE reason = 'rems_form_overdue'"
    ).fetchall()
    assert {s for _, s in rows} == {s1["event_id"], s2["event_id"]} and len({e for e, _ in rows}) == 1
    [ep] = [e for e in episode_rows(clinic) if e["reason"] == "rems_form_overdue"]
    assert ep["occurrences"] == 2
    actions = [m["payload"]["action"] for m in messages(clinic) if m["payload"]["reason"] == "rems_form_overdue"]
    assert sorted(actions) == ["raised", "repeated"]
    clinic.conn.close()


def test_analysts_see_episodes_with_times_and_escalation_level_but_no_patient_or_staff_id(settings):
    from care.escalation import escalate

    clinic = Clinic(settings)
    c = checkin(minutes=0)
    clinic.land(c, clock=at(1))
    clinic.land(ack(alert_of(c), 21, by="nurse-5"), resolve(alert_of(c), 61), clock=at(62))
    escalate(clinic.conn, settings, at(90))
    cur = clinic.conn.execute("SELECT * FROM analytics.alert_episodes")
    row = dict(zip([d[0] for d in cur.description], cur.fetchone()))
    assert row["escalation_level"] == 1 and row["status"] == "resolved" and row["resolution"] == "actioned"
    assert (row["minutes_to_acknowledge"], row["minutes_to_resolve"]) == (20.0, 60.0)
    assert "patient_id" not in row and "nurse-5" not in row.values() and len(row["patient_key"]) == 64
    [(episode,)] = clinic.conn.execute("SELECT DISTINCT episode_id FROM analytics.alerts").fetchall()
    assert episode == row["episode_id"]
    clinic.conn.close()
