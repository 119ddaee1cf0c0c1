"""Every follow-up task rule of CARE_PLAN.md, through the real landing path."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from tests.factories import event, racemic_session

UTC = timezone.utc
# A Tuesday in January: Chicago is UTC-6.
T0 = datetime(2026, 1, 13, 20, 0, tzinfo=UTC)
CONSENT_ALL = {"sms": True, "email": True, "phone": True}


def register(pid="P0001", at=T0 - timedelta(days=10), tz="America/Chicago", consent=None, pref="sms", **kw):
    return event(
        "patient.registered",
        pid,
        at=at,
        timezone=tz,
        consent=consent or dict(CONSENT_ALL),
        preferred_channel=pref,
        **kw,
    )


def completed(pid="P0001", sid="S1", start=T0, minutes=130, esk=True, at=None):
    end = start + timedelta(minutes=minutes)
    fields = {"session_id": sid, "started_at": start.isoformat(), "ended_at": end.isoformat()}
    if esk:
        return event("session.completed", pid, at=at or end, **fields)
    body = racemic_session(end)
    body.update(fields)
    return event("session.completed", pid, at=at or end, body=body)


def enrolled(pid="P0001"):
    return event("rems.enrolled", pid, at=T0 - timedelta(days=5), enrolled_on="2026-01-05")


def utc(*a):
    return datetime(*a, tzinfo=UTC)


def test_every_completed_session_gets_a_day1_checkin_due_24h_later(clinic):
    clinic.land(register(), enrolled(), completed(sid="S1"), completed(sid="S2", start=T0 + timedelta(days=3)))
    day1 = clinic.tasks("checkin_day1")
    assert [t["due_at"] for t in day1] == [
        T0 + timedelta(minutes=130, hours=24),
        T0 + timedelta(days=3, minutes=130, hours=24),
    ]
    assert {t["session_id"] for t in day1} == {"S1", "S2"}


def test_long_term_checkins_follow_the_first_session_by_ended_at(clinic):
    later = completed(sid="S2", start=T0 + timedelta(days=4))
    first = completed(sid="S1", start=T0)
    clinic.land(register(), enrolled(), later)
    clinic.land(first)  # the first session arrives after a later one
    end = T0 + timedelta(minutes=130)
    for kind, days in (
        ("checkin_month1", 30),
        ("checkin_month3", 90),
        ("checkin_month6", 180),
        ("checkin_month12", 365),
    ):
        t = clinic.task(kind)
        assert t["due_at"] == end + timedelta(days=days) and t["source_event_id"] == first["event_id"], kind


def test_rems_form_due_is_a_staff_task_for_esketamine_only(clinic):
    clinic.land(
        register(), enrolled(), completed(sid="E1"), completed(sid="R1", esk=False, start=T0 + timedelta(days=1))
    )
    [t] = clinic.tasks("rems_form_due")
    assert t["session_id"] == "E1" and t["due_at"] == T0 + timedelta(minutes=130, days=7)
    assert t["send_after"] == t["due_at"] and t["channel"] is None and t["status"] == "open"


def test_rems_form_submitted_completes_its_task(clinic):
    form = event("rems.form_submitted", at=T0 + timedelta(days=2), session_id="S1", submitted_on="2026-01-15")
    clinic.land(register(), enrolled(), completed(), form)
    t = clinic.task("rems_form_due")
    assert t["status"] == "completed" and t["completed_by"] == form["event_id"]


def test_send_after_leaves_quiet_hours_in_the_patients_zone(clinic):
    # ended 22:10 UTC = 16:10 CST; due next day 16:10 CST: outside quiet hours.
    clinic.land(register(), enrolled(), completed(start=T0))
    assert clinic.task("checkin_day1")["send_after"] == clinic.task("checkin_day1")["due_at"]
    # ended 05:10 UTC = 23:10 CST -> due 23:10 CST next day -> 08:00 CST the day after (14:00 UTC)
    clinic.land(completed(sid="S9", start=utc(2026, 2, 10, 3, 0)))
    t = [x for x in clinic.tasks("checkin_day1") if x["session_id"] == "S9"][0]
    assert t["due_at"] == utc(2026, 2, 11, 5, 10) and t["send_after"] == utc(2026, 2, 11, 14, 0)


def test_quiet_hours_across_the_spring_daylight_saving_change(clinic):
    # Due 2026-03-08 07:10 UTC = 01:10 CST, the night clocks jump: 08:00 CDT = 13:00 UTC.
    clinic.land(register(), enrolled(), completed(start=utc(2026, 3, 7, 5, 0)))
    assert clinic.task("checkin_day1")["send_after"] == utc(2026, 3, 8, 13, 0)


def test_quiet_hours_across_the_autumn_daylight_saving_change(clinic):
    # Due 2026-11-01 07:10 UTC = 01:10 CST (after fall-back at 02:00 CDT... 01:10 CDT) -> 08:00 CST = 14:00 UTC.
    clinic.land(register(), enrolled(), completed(start=utc(2026, 10, 31, 5, 0)))
    assert clinic.task("checkin_day1")["send_after"] == utc(2026, 11, 1, 14, 0)


def test_patient_east_of_utc(clinic):
    # Kolkata is UTC+05:30: due 2026-01-14 17:10 UTC = 22:40 IST -> 08:00 IST Jan 15 = 02:30 UTC.
    clinic.land(register(tz="Asia/Kolkata"), enrolled(), completed(start=utc(2026, 1, 13, 15, 0)))
    assert clinic.task("checkin_day1")["send_after"] == utc(2026, 1, 15, 2, 30)


def test_patients_own_quiet_hours(clinic):
    clinic.land(register(quiet_hours={"start": "14:00", "end": "17:30"}), enrolled(), completed(start=T0))
    # due 16:10 CST: inside 14:00-17:30 -> 17:30 CST = 23:30 UTC
    assert clinic.task("checkin_day1")["send_after"] == utc(2026, 1, 14, 23, 30)


def test_one_patient_task_per_local_day_later_due_moves_on(clinic):
    # S2's day-one check-in falls on the same local day as the month-1 check-in of S1.
    s1 = completed(sid="S1", start=T0)
    s2 = completed(sid="S2", start=T0 + timedelta(days=29, hours=1))
    clinic.land(register(), enrolled(), s1, s2)
    month1 = clinic.task("checkin_month1")
    day1_s2 = [t for t in clinic.tasks("checkin_day1") if t["session_id"] == "S2"][0]
    assert month1["due_at"] < day1_s2["due_at"]
    assert month1["send_after"] == month1["due_at"]
    assert day1_s2["send_after"] == utc(2026, 2, 13, 14, 0)  # 08:00 CST the next local day


def test_channel_is_the_preferred_one_else_the_first_consented(clinic):
    clinic.land(register(pref="email", consent={"sms": True, "email": False, "phone": True}), enrolled(), completed())
    assert clinic.task("checkin_day1")["channel"] == "sms"


def test_no_consented_channel_blocks_the_task_visibly(clinic):
    clinic.land(register(consent={"sms": False, "email": False, "phone": False}), enrolled(), completed())
    assert {t["status"] for t in clinic.tasks() if t["kind"] != "rems_form_due"} == {"blocked_no_consent"}


def test_no_registration_yet_blocks_until_it_arrives(clinic):
    clinic.land(enrolled(), completed())
    assert clinic.task("checkin_day1")["status"] == "blocked_no_consent"
    clinic.land(register())
    assert clinic.task("checkin_day1")["status"] == "open" and clinic.task("checkin_day1")["channel"] == "sms"


def test_stop_after_tasks_were_planned_blocks_every_later_task(clinic):
    clinic.land(register(consent={"sms": True, "email": False, "phone": False}), enrolled(), completed())
    assert {t["status"] for t in clinic.tasks() if t["kind"].startswith("checkin")} == {"open"}
    stop = event("consent.updated", at=T0 + timedelta(days=10), sms=False)
    clinic.land(stop)
    status = {t["kind"]: t["status"] for t in clinic.tasks()}
    assert status["checkin_day1"] == "open"  # before the STOP
    assert all(
        status[k] == "blocked_no_consent"
        for k in ("checkin_month1", "checkin_month3", "checkin_month6", "checkin_month12")
    )


def test_stop_moves_later_tasks_to_another_consented_channel(clinic):
    clinic.land(
        register(consent={"sms": True, "email": True, "phone": False}),
        enrolled(),
        completed(),
        event("consent.updated", at=T0 + timedelta(days=10), sms=False),
    )
    ch = {t["kind"]: t["channel"] for t in clinic.tasks()}
    assert ch["checkin_day1"] == "sms" and ch["checkin_month1"] == "email"


def test_consent_given_later_unblocks_the_tasks_after_it(clinic):
    clinic.land(
        register(consent={"sms": False, "email": False, "phone": False}),
        enrolled(),
        completed(),
        event("consent.updated", at=T0 + timedelta(days=60), email=True),
    )
    status = {t["kind"]: (t["status"], t["channel"]) for t in clinic.tasks()}
    assert status["checkin_month1"] == ("blocked_no_consent", None)
    assert status["checkin_month3"] == ("open", "email")


def test_opted_out_status_withdraws_that_channel(clinic):
    clinic.land(
        register(consent={"sms": True, "email": False, "phone": False}),
        enrolled(),
        completed(),
        event("outreach.status", at=T0 + timedelta(days=5), outreach_id="o-1", status="opted_out", channel="sms"),
    )
    assert clinic.task("checkin_month1")["status"] == "blocked_no_consent"


def test_checkin_with_task_id_completes_that_task(clinic):
    clinic.land(register(), enrolled(), completed())
    month3 = clinic.task("checkin_month3")
    c = event("checkin.completed", at=T0 + timedelta(days=2), task_id=month3["task_id"])
    clinic.land(c)
    assert clinic.task("checkin_month3")["status"] == "completed"
    assert clinic.task("checkin_day1")["status"] == "open"


def test_checkin_without_task_id_completes_the_closest_task_within_3_days(clinic):
    clinic.land(register(), enrolled(), completed())
    near_month1 = event("checkin.completed", at=T0 + timedelta(days=32))
    far = event("checkin.completed", at=T0 + timedelta(days=60))
    clinic.land(near_month1, far)
    status = {t["kind"]: t["status"] for t in clinic.tasks()}
    assert status["checkin_month1"] == "completed" and status["checkin_day1"] == "open"
    assert status["checkin_month3"] == "open"  # 30 days away: no match


def test_checkin_that_arrives_before_its_session(clinic):
    s = completed()
    c = event("checkin.completed", at=T0 + timedelta(days=1, hours=3))
    clinic.land(register(), enrolled(), c)
    assert clinic.tasks() == []
    clinic.land(s)
    t = clinic.task("checkin_day1")
    assert t["status"] == "completed" and t["completed_by"] == c["event_id"]


def test_session_cancelled_creates_nothing_and_a_later_completion_counts(clinic):
    cancel = event("session.cancelled", at=T0 - timedelta(hours=1), session_id="S1", reason="bp_elevated")
    clinic.land(register(), enrolled(), cancel)
    assert clinic.tasks() == []
    clinic.land(completed(sid="S1"))
    assert clinic.task("checkin_day1")["status"] == "open"


def test_task_ids_are_deterministic(clinic, settings, tmp_path):
    evs = [register(), enrolled(), completed()]
    clinic.land(*evs)
    from tests.care.conftest import Clinic

    other = Clinic(settings.model_copy(update={"warehouse_path": tmp_path / "other.duckdb"}), quality=False)
    other.land(*evs)
    assert [t["task_id"] for t in clinic.tasks()] == [t["task_id"] for t in other.tasks()]
    other.conn.close()
