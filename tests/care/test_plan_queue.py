"""Deferred re-planning: alerts never wait, tasks wait at most care_plan_delay_s, nothing is lost or sent stale."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

from care.channels import ProviderChannel
from care.outreach import run_outreach
from care.planner import PendingPlans, plan_pending
from stages.ingest import writer
from tests.care.conftest import Clinic
from tests.care.test_outreach import FakeSms
from tests.care.test_tasks import T0, completed, enrolled, event, register


def queued(clinic) -> list[str]:
    return [p for (p,) in clinic.conn.execute("SELECT patient_id FROM care_plan_queue ORDER BY 1").fetchall()]


@pytest.fixture()
def deferred(settings):
    """A clinic whose batches are not followed by a flush of the queue (the loop in the middle of a run)."""
    c = Clinic(settings.model_copy(update={"care_plan_delay_s": 60}), plan=False)
    yield c
    c.conn.close()


def crisis_session(sid="S9"):
    e = completed(sid=sid, start=T0 + timedelta(days=2))
    e["payload"]["bp_pre"] = {"systolic": 185, "diastolic": 95}
    return e


def test_a_completed_session_queues_its_patient_and_its_alert_is_raised_at_once(deferred):
    deferred.land(register(), enrolled())
    deferred.land(crisis_session())
    assert "bp_crisis" in deferred.reasons(), "alerts never wait for the queue"
    assert deferred.tasks("checkin_day1") == [] and queued(deferred) == ["P0001"]
    assert plan_pending(deferred.conn, deferred.settings, T0) == 0, "queued less than care_plan_delay_s ago"
    assert plan_pending(deferred.conn, deferred.settings, T0, all_=True) == 1
    assert len(deferred.tasks("checkin_day1")) == 1 and queued(deferred) == []


def test_a_patient_is_due_once_queued_for_the_delay(deferred):
    deferred.land(register(), enrolled(), completed())
    deferred.land(completed(sid="S2", start=T0 + timedelta(days=3)))
    deferred.conn.execute("UPDATE care_plan_queue SET queued_at = queued_at - INTERVAL 61 SECOND")
    assert plan_pending(deferred.conn, deferred.settings, T0) == 1
    assert len(deferred.tasks("checkin_day1")) == 2 and queued(deferred) == []


def test_between_batches_the_queue_is_read_again_when_its_first_patient_is_due(deferred):
    pending = PendingPlans(deferred.settings)
    deferred.land(register(), enrolled())
    deferred.land(completed())
    # Queued 3 s short of the 60 s delay: due before the 5 s recheck.
    deferred.conn.execute("UPDATE care_plan_queue SET queued_at = now() - INTERVAL 57 SECOND")
    assert pending(deferred.conn, T0) == 0, "not due yet"
    time.sleep(3.2)
    assert pending(deferred.conn, T0) == 1, "read again at its due time, not at the next recheck"
    assert len(deferred.tasks("checkin_day1")) == 1 and queued(deferred) == []


def test_between_batches_an_empty_queue_is_read_again_at_the_recheck(deferred):
    pending = PendingPlans(deferred.settings)
    pending.RECHECK_S = 2.0
    deferred.land(register(), enrolled())
    assert pending(deferred.conn, T0) == 0, "an empty queue: nothing queued later is due for 60 s"
    # Due at once, as a batch whose rules failed queues its patients: found at the recheck, not before.
    deferred.conn.execute("INSERT INTO care_plan_queue VALUES ('P0001', TIMESTAMPTZ '2000-01-01 00:00:00+00')")
    assert pending(deferred.conn, T0) == 0, "not read again before the recheck"
    time.sleep(2.1)
    assert pending(deferred.conn, T0) == 1
    assert queued(deferred) == []


def test_a_later_touch_keeps_the_first_queue_time(deferred):
    deferred.land(register(), enrolled())
    deferred.land(completed())
    deferred.conn.execute("UPDATE care_plan_queue SET queued_at = queued_at - INTERVAL 61 SECOND")
    deferred.land(completed(sid="S2", start=T0 + timedelta(days=3)))
    assert plan_pending(deferred.conn, deferred.settings, T0) == 1, "a busy patient is still planned on time"


@pytest.mark.parametrize(
    "change",
    [
        lambda: event("consent.updated", at=T0 + timedelta(hours=1), sms=False, email=False, phone=False),
        lambda: event(
            "outreach.status", at=T0 + timedelta(hours=1), outreach_id="o-1", status="opted_out", channel="sms"
        ),
    ],
)
def test_consent_withdrawal_replans_in_its_own_batch(deferred, change):
    deferred.land(register(consent={"sms": True, "email": False, "phone": False}), enrolled(), completed())
    deferred.land(completed(sid="S2", start=T0 + timedelta(days=3)))
    assert queued(deferred) == ["P0001"]
    deferred.land(change())
    assert queued(deferred) == [], "planned in the batch, so no longer queued"
    assert {t["status"] for t in deferred.tasks("checkin_day1")} == {"blocked_no_consent"}


def test_a_cancellation_replans_in_its_own_batch(deferred):
    deferred.land(register(), enrolled(), completed(sid="S1"))
    deferred.land(event("session.cancelled", at=T0 + timedelta(hours=5), session_id="S1", reason="clinical_hold"))
    assert deferred.task("checkin_day1")["status"] == "cancelled" and queued(deferred) == []


def test_delay_zero_plans_every_patient_in_its_batch(settings):
    c = Clinic(settings.model_copy(update={"care_plan_delay_s": 0}), plan=False)
    c.land(register(), enrolled())
    c.land(completed())
    assert len(c.tasks("checkin_day1")) == 1 and queued(c) == []
    c.conn.close()


def test_the_queue_is_planned_in_chunks(settings):
    c = Clinic(settings.model_copy(update={"care_plan_chunk_patients": 2}), plan=False)
    pids = [f"P000{i}" for i in range(5)]
    c.land(*[e for p in pids for e in (register(pid=p), enrolled(pid=p))])
    c.land(*[completed(pid=p, sid=f"S-{p}") for p in pids])  # session ids are unique per clinic
    assert queued(c) == pids
    assert plan_pending(c.conn, c.settings, T0, all_=True) == 5
    assert len(c.tasks("checkin_day1")) == 5 and queued(c) == []
    c.conn.close()


def test_a_crash_before_planning_loses_nothing_the_next_writer_plans(deferred):
    deferred.land(register(), enrolled())
    deferred.land(completed())
    deferred.conn.close()  # the process died after the batch committed
    with writer(deferred.settings, publish_snapshot=False) as conn:
        assert conn.execute("SELECT count(*) FROM care_plan_queue").fetchall()[0][0] == 1
    deferred.conn = Clinic(deferred.settings).conn
    assert len(deferred.tasks("checkin_day1")) == 1 and queued(deferred) == []


def test_outreach_plans_the_queue_before_it_dispatches(deferred):
    deferred.land(register(), enrolled())
    deferred.land(completed())
    assert queued(deferred) == ["P0001"]
    sms = FakeSms()
    report = run_outreach(deferred.conn, deferred.settings, T0 + timedelta(days=2), ProviderChannel("sms", sms))
    assert report.dispatched == 1 and len(sms.sent) == 1 and queued(deferred) == []


def test_outreach_never_sends_a_check_in_already_completed_while_queued(deferred):
    deferred.land(register(), enrolled(), completed())
    plan_pending(deferred.conn, deferred.settings, T0, all_=True)
    task_id = deferred.task("checkin_day1")["task_id"]
    deferred.land(event("checkin.completed", at=T0 + timedelta(hours=20), task_id=task_id))
    assert deferred.task("checkin_day1")["status"] == "open" and queued(deferred) == ["P0001"]
    sms = FakeSms()
    run_outreach(deferred.conn, deferred.settings, T0 + timedelta(days=2), ProviderChannel("sms", sms))
    assert sms.sent == [] and deferred.task("checkin_day1")["status"] == "completed"
