"""The outreach flow's rules: dispatch, expiry, once-only, no clinical content, channel adapters."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from care.channels import ProviderChannel
from care.exceptions import ChannelError
from care.outreach import run_outreach
from tests.care.test_tasks import T0, completed, enrolled, event, register


class FakeSms:
    """The SMS provider is outside the system: the one thing we fake."""

    def __init__(self, fail: bool = False):
        self.sent: list[tuple] = []
        self.fail = fail

    def send(self, outreach_id, patient_id, channel, template):
        if self.fail:
            raise RuntimeError("provider returned 503")
        self.sent.append((outreach_id, patient_id, channel, template))


@pytest.fixture()
def sms():
    return FakeSms()


def run(clinic, as_of, provider):
    return run_outreach(clinic.conn, clinic.settings, as_of, ProviderChannel("sms", provider))


def day1(clinic):
    return clinic.task("checkin_day1")


def test_due_tasks_are_dispatched_once(clinic, sms):
    clinic.land(register(), enrolled(), completed())
    t = day1(clinic)
    assert run(clinic, t["send_after"] - timedelta(seconds=1), sms).dispatched == 0
    r1 = run(clinic, t["send_after"], sms)
    r2 = run(clinic, t["send_after"] + timedelta(hours=1), sms)
    assert (r1.dispatched, r2.dispatched, len(sms.sent)) == (1, 0, 1)
    assert day1(clinic)["status"] == "dispatched"
    assert sms.sent[0][2:] == ("sms", "checkin_day1")


def test_staff_tasks_are_never_sent_to_patients(clinic, sms):
    clinic.land(register(), enrolled(), completed())
    run(clinic, T0 + timedelta(days=8), sms)
    assert all(template != "rems_form_due" for *_, template in sms.sent)


def test_a_task_7_days_stale_is_expired_never_sent(clinic, sms):
    clinic.land(register(), enrolled(), completed())
    t = day1(clinic)
    r = run(clinic, t["send_after"] + timedelta(days=7), sms)
    assert day1(clinic)["status"] == "expired" and r.expired >= 1
    assert not [s for s in sms.sent if s[3] == "checkin_day1"]


def test_a_dispatched_task_not_completed_in_7_days_expires(clinic, sms):
    clinic.land(register(), enrolled(), completed())
    t = day1(clinic)
    run(clinic, t["send_after"], sms)
    run(clinic, t["send_after"] + timedelta(days=6, hours=23), sms)
    assert day1(clinic)["status"] == "dispatched"
    run(clinic, t["send_after"] + timedelta(days=7), sms)
    assert day1(clinic)["status"] == "expired"


def test_blocked_tasks_stay_blocked_and_visible(clinic, sms):
    clinic.land(register(consent={"sms": False, "email": False, "phone": False}), enrolled(), completed())
    r = run(clinic, T0 + timedelta(days=60), sms)
    assert day1(clinic)["status"] == "blocked_no_consent" and r.blocked_no_consent == 5 and not sms.sent


def test_completion_after_dispatch_wins_and_stop_never_undoes_a_dispatch(clinic, sms):
    clinic.land(register(), enrolled(), completed())
    t = day1(clinic)
    run(clinic, t["send_after"], sms)
    clinic.land(event("consent.updated", at=t["send_after"] - timedelta(hours=1), sms=False))
    assert day1(clinic)["status"] == "dispatched" and day1(clinic)["channel"] == "sms"
    clinic.land(event("checkin.completed", at=t["send_after"] + timedelta(hours=2), task_id=t["task_id"]))
    assert day1(clinic)["status"] == "completed"


def test_a_crash_after_delivery_resends_the_same_outreach_id(clinic, sms):
    clinic.land(register(), enrolled(), completed())
    t = day1(clinic)
    run(clinic, t["send_after"], sms)
    clinic.conn.execute("UPDATE outbox SET sent_at = NULL WHERE kind = 'outreach'")  # the mark was lost
    run(clinic, t["send_after"] + timedelta(minutes=5), sms)
    assert len(sms.sent) == 2 and sms.sent[0] == sms.sent[1], "same task, same outreach_id"
    assert (
        clinic.conn.execute(
            "SELECT count(DISTINCT outreach_id) FROM followup_tasks WHERE outreach_id IS NOT NULL"
        ).fetchall()[0][0]
        == 1
    )


def test_provider_failure_keeps_the_message_queued(clinic):
    clinic.land(register(), enrolled(), completed())
    t = day1(clinic)
    with pytest.raises(ChannelError, match="stays queued"):
        run(clinic, t["send_after"], FakeSms(fail=True))
    ok = FakeSms()
    run(clinic, t["send_after"] + timedelta(minutes=1), ok)
    assert len(ok.sent) == 1


def test_outreach_message_carries_no_clinical_content(clinic, sms):
    clinic.land(register(), enrolled(), completed(), event("intake.assessed", at=T0 - timedelta(days=2)))
    for kind in ("checkin_day1", "checkin_month1", "checkin_month3"):
        run(clinic, clinic.task(kind)["send_after"], sms)
    rows = clinic.conn.execute("SELECT value FROM outbox WHERE kind = 'outreach'").fetchall()
    assert len(rows) == 3
    for (value,) in rows:
        msg = json.loads(bytes(value))
        assert set(msg["payload"]) == {"outreach_id", "channel", "template", "task_id", "send_after"}
        text = bytes(value).decode().lower()
        for word in ("esketamine", "ketamine", "dose", "mg", "phq", "f33", "diagnos", "score", "racemic", "spravato"):
            assert word not in text, word
