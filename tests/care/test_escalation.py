"""Escalation (docs/ALERTS.md "Escalation"): thresholds, once per level, the age limit, the clock."""

from __future__ import annotations

from datetime import timedelta

import pytest

from care.escalation import escalate, escalation_id
from care.policy import CarePolicy
from core.errors import SettingsError
from core.settings import load_settings
from tests.care.test_lifecycle import T0, ack, alert_of, at, checkin, episode_rows, messages, resolve
from tests.factories import event


def levels(clinic, as_of) -> list[int]:
    return sorted(e.level for e in escalate(clinic.conn, clinic.settings, as_of))


def urgent_episode(clinic):
    """An urgent episode raised (landed) at T0 + 1 minute."""
    c = checkin(minutes=0)
    clinic.land(c, clock=at(1))
    return alert_of(c)


@pytest.mark.parametrize(
    "ack_minute,expected",
    [(None, [1, 2]), (14, []), (16, []), (16.5, [1]), (20, [1]), (31, [1]), (31.5, [1, 2])],
)
def test_urgent_levels_against_the_acknowledgement_time(clinic, ack_minute, expected):
    # Opened at minute 1: level 1 due at 16, level 2 at 31; acknowledged at the due instant is in time.
    aid = urgent_episode(clinic)
    if ack_minute is not None:
        clinic.land(ack(aid, ack_minute), clock=at(ack_minute + 1))
    assert levels(clinic, at(120)) == expected


def test_an_acknowledgement_at_minute_14_prevents_level_1_and_at_minute_20_only_level_2(clinic):
    """The issue's wording, with the clock running: minutes counted from the episode's raised_at."""
    aid = urgent_episode(clinic)
    clinic.land(ack(aid, 1 + 14), clock=at(1 + 14.5))
    assert levels(clinic, at(1 + 15)) == [] and levels(clinic, at(1 + 60)) == []
    clinic2_aid = _second_patient(clinic)
    assert levels(clinic, at(1 + 15)) == [1]  # P0002's episode: nobody answered by minute 15
    clinic.land(ack(clinic2_aid, 1 + 20, pid="P0002"), clock=at(1 + 21))
    assert levels(clinic, at(1 + 30)) == [] and levels(clinic, at(1 + 90)) == []


def _second_patient(clinic):
    c = checkin("P0002", minutes=0)
    clinic.land(c, clock=at(1))
    return alert_of(c)


def test_levels_wait_for_the_clock(clinic):
    urgent_episode(clinic)
    assert levels(clinic, at(15.9)) == []
    assert levels(clinic, at(16)) == [1]
    assert levels(clinic, at(30)) == []
    assert levels(clinic, at(31)) == [2]


def test_escalating_twice_at_the_same_clock_publishes_nothing_new(clinic):
    urgent_episode(clinic)
    assert levels(clinic, at(60)) == [1, 2]
    before = messages(clinic)
    assert levels(clinic, at(60)) == [] and levels(clinic, at(61)) == []
    assert messages(clinic) == before
    escalated = sorted(
        (m for m in before if m["payload"]["action"] == "escalated"), key=lambda m: m["payload"]["escalation_level"]
    )
    [ep] = episode_rows(clinic)
    assert [m["event_id"] for m in escalated] == [
        escalation_id(ep["episode_id"], 1),
        escalation_id(ep["episode_id"], 2),
    ]
    assert [m["payload"]["escalation_level"] for m in escalated] == [1, 2]
    assert all(m["payload"]["episode_id"] == ep["episode_id"] for m in escalated)


def test_an_episode_raised_8_days_before_the_clock_is_not_escalated(clinic):
    urgent_episode(clinic)
    assert levels(clinic, at(1) + timedelta(days=8)) == []
    assert levels(clinic, at(1) + timedelta(days=7) - timedelta(minutes=1)) == [1, 2]


def test_resolved_or_withdrawn_before_the_threshold_is_never_escalated(clinic):
    aid = urgent_episode(clinic)
    clinic.land(resolve(aid, 10, resolution="false_positive"), clock=at(11))
    assert levels(clinic, at(120)) == []
    reg = event("patient.registered", "P0003", at=T0 - timedelta(days=30))
    sess = event("session.completed", "P0003", at=T0)
    clinic.land(reg, sess, clock=at(1))  # esketamine_without_rems_enrollment: high, level 1 after 24 h
    day = (T0 - timedelta(days=5)).date().isoformat()
    clinic.land(event("rems.enrolled", "P0003", at=T0 + timedelta(hours=2), enrolled_on=day), clock=at(600))
    assert "esketamine_without_rems_enrollment" not in _reasons(escalate(clinic.conn, clinic.settings, at(3000)))


def _reasons(escalations):
    return {e.reason for e in escalations}


def test_high_escalates_once_after_a_day_and_routine_never(clinic):
    reg = event("patient.registered", at=T0 - timedelta(days=30))
    sess = event("session.completed", at=T0)  # high: esketamine without REMS enrollment
    intake = event("intake.assessed", at=T0 - timedelta(days=20), phq9_items=[1] * 8 + [0])  # baseline
    worse = event("checkin.completed", at=T0 - timedelta(minutes=5), phq9_items=[2] * 8 + [0])  # routine: worsening
    clinic.land(reg, intake, sess, worse, clock=at(1))
    severities = {e["reason"]: e["severity"] for e in episode_rows(clinic)}
    assert severities["worsening"] == "routine" and severities["esketamine_without_rems_enrollment"] == "high"
    assert _reasons(escalate(clinic.conn, clinic.settings, at(1 + 1439))) == set()
    found = escalate(clinic.conn, clinic.settings, at(1 + 1440))
    assert {(e.reason, e.level) for e in found} == {("esketamine_without_rems_enrollment", 1)}
    assert "worsening" not in _reasons(escalate(clinic.conn, clinic.settings, at(1 + 6 * 1440)))


def test_thresholds_are_settings(clinic):
    urgent_episode(clinic)
    policy = CarePolicy.from_settings(clinic.settings.model_copy(update={"care_escalate_urgent_level1_minutes": 5}))
    assert [e.level for e in escalate(clinic.conn, policy, at(6))] == [1]


def test_a_level_2_without_a_lower_level_1_is_refused(monkeypatch):
    monkeypatch.setenv("CLINICFLOW_CARE_ESCALATE_HIGH_LEVEL2_MINUTES", "60")
    with pytest.raises(SettingsError, match="CARE_ESCALATE_HIGH_LEVEL2_MINUTES|care_escalate_high_level2_minutes"):
        load_settings()


def test_escalation_messages_carry_no_clinical_content(clinic):
    urgent_episode(clinic)
    escalate(clinic.conn, clinic.settings, at(60))
    for m in messages(clinic):
        assert set(m["payload"]) == {
            "alert_id",
            "severity",
            "reason",
            "source_event_id",
            "raised_at",
            "action",
            "episode_id",
            "occurrences",
            "escalation_level",
        }
        assert not any(isinstance(v, (int, float)) for k, v in m["payload"].items() if k not in COUNTS)


COUNTS = ("occurrences", "escalation_level")
