"""Episodes as a pure function (docs/ALERTS.md "Episodes"), rule by rule, without a warehouse."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

from care.episodes import Action, StoredAlert, episode_id, episodes

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)


def a(n: int, minutes: float, reason="bp_crisis", pid="P1", withdrawn=None, raised=None) -> StoredAlert:
    at = T0 + timedelta(minutes=minutes)
    return StoredAlert(f"a{n:02d}", pid, "austin-1", reason, "urgent", f"e{n}", at, raised or at, withdrawn)


def ack(alert_id: str, minutes: float, pid="P1", by="s1", n=None) -> Action:
    return Action(n or f"ack-{alert_id}-{minutes}", pid, alert_id, T0 + timedelta(minutes=minutes), by, None)


def res(alert_id: str, minutes: float, resolution="actioned", pid="P1", by="s2") -> Action:
    return Action(f"res-{alert_id}-{minutes}", pid, alert_id, T0 + timedelta(minutes=minutes), by, resolution)


def test_repeats_of_a_key_join_one_episode_named_after_the_first_alert():
    [ep] = episodes([a(2, 10), a(1, 0), a(3, 20)], [])
    assert ep.alert_ids == ("a01", "a02", "a03") and ep.occurrences == 3
    assert ep.episode_id == episode_id("a01") and ep.status == "open"


def test_alerts_of_the_same_instant_are_ordered_by_alert_id():
    t = T0 + timedelta(minutes=5)
    late = StoredAlert("a09", "P1", "austin-1", "bp_crisis", "urgent", "e9", t, T0, None)
    early = StoredAlert("a03", "P1", "austin-1", "bp_crisis", "urgent", "e3", t, T0 + timedelta(hours=1), None)
    [ep] = episodes([late, early], [])
    assert ep.alert_ids == ("a03", "a09") and ep.episode_id == episode_id("a03")
    assert ep.opened_at == T0 + timedelta(hours=1), "opened_at is the first alert's raised_at, not the earliest"


def test_each_patient_and_reason_is_its_own_key():
    eps = episodes([a(1, 0), a(2, 1, reason="worsening"), a(3, 2, pid="P2")], [])
    assert len(eps) == 3 and all(e.occurrences == 1 for e in eps)


def test_a_resolution_before_a_new_alert_opens_a_new_episode():
    first, second = episodes([a(1, 0), a(2, 30), a(3, 60)], [res("a01", 45)])
    assert first.alert_ids == ("a01", "a02") and first.status == "resolved"
    assert second.alert_ids == ("a03",) and second.status == "open" and second.episode_id == episode_id("a03")


def test_resolved_exactly_at_the_alerts_source_time_opens_a_new_episode():
    eps = episodes([a(1, 0), a(2, 30)], [res("a01", 30)])
    assert [e.alert_ids for e in eps] == [("a01",), ("a02",)]


def test_an_acknowledgement_does_not_split_episodes():
    [ep] = episodes([a(1, 0), a(2, 30)], [ack("a01", 5)])
    assert ep.occurrences == 2 and ep.status == "acknowledged"


def test_acting_on_any_alert_of_the_episode_acts_on_the_episode():
    [ep] = episodes([a(1, 0), a(2, 10), a(3, 20)], [ack("a02", 25)])
    assert ep.status == "acknowledged" and ep.acknowledged.alert_id == "a02"


def test_the_earliest_acknowledgement_and_resolution_count():
    [ep] = episodes(
        [a(1, 0)], [ack("a01", 30, by="late"), ack("a01", 12, by="first"), res("a01", 50), res("a01", 40, "duplicate")]
    )
    assert ep.acknowledged.staff_id == "first" and ep.acknowledged.occurred_at == T0 + timedelta(minutes=12)
    assert ep.resolved.resolution == "duplicate" and ep.resolved.occurred_at == T0 + timedelta(minutes=40)


def test_a_resolution_without_acknowledgement_acknowledges_at_the_same_instant():
    [ep] = episodes([a(1, 0)], [res("a01", 33)])
    assert ep.acknowledged.occurred_at == ep.resolved.occurred_at == T0 + timedelta(minutes=33)
    assert ep.status == "resolved"


def test_an_action_for_an_unknown_alert_changes_nothing_until_it_appears():
    assert episodes([], [ack("a01", 5)]) == []
    [ep] = episodes([a(1, 0)], [ack("a01", 5)])
    assert ep.status == "acknowledged"


def test_an_action_of_another_patient_never_applies():
    [ep] = episodes([a(1, 0)], [ack("a01", 5, pid="P2"), res("a01", 6, pid="P2")])
    assert ep.status == "open"


def test_all_alerts_withdrawn_is_withdrawn_and_one_coming_back_reopens():
    w = T0 + timedelta(days=1)
    [ep] = episodes([a(1, 0, withdrawn=w), a(2, 5, withdrawn=w + timedelta(hours=1))], [])
    assert ep.status == "withdrawn" and ep.withdrawn_at == w + timedelta(hours=1)
    [back] = episodes([a(1, 0), a(2, 5)], [])
    assert back.status == "open" and back.episode_id == ep.episode_id and back.withdrawn_at is None


def test_standing_alerts_make_the_episode_and_a_withdrawn_one_only_joins_it():
    """A withdrawn alert exists only because an event came late: it neither names nor counts."""
    w = T0 + timedelta(days=1)
    [ep] = episodes([a(1, 0), a(2, 5, withdrawn=w), a(3, 9)], [ack("a02", 6)])
    assert ep.episode_id == episode_id("a01") and ep.alert_ids == ("a01", "a03") and ep.withdrawn_ids == ("a02",)
    assert ep.occurrences == 2 and ep.status == "acknowledged", "an answer to the withdrawn alert still counts"
    first, later = episodes([a(1, 0, withdrawn=w), a(2, 5)], [])
    assert first.episode_id == episode_id("a02") and first.status == "open"
    assert later.alert_ids == ("a01",) and later.status == "withdrawn"


def test_a_resolution_outlives_a_withdrawal():
    [ep] = episodes([a(1, 0, withdrawn=T0 + timedelta(days=1))], [res("a01", 10)])
    assert ep.status == "resolved"


def test_opened_at_is_the_first_alerts_raised_at():
    raised = T0 + timedelta(days=3)
    [ep] = episodes([a(1, 0, raised=raised), a(2, 5)], [])
    assert ep.opened_at == raised


def test_order_of_input_does_not_matter():
    alerts = [a(i, i * 7 % 50) for i in range(1, 12)]
    actions = [ack("a03", 9), res("a05", 36), ack("a09", 52), res("a10", 400)]
    expected = episodes(alerts, actions)
    rnd = random.Random(4)
    for _ in range(20):
        rnd.shuffle(alerts)
        rnd.shuffle(actions)
        assert sorted(episodes(alerts, actions), key=lambda e: e.episode_id) == sorted(
            expected, key=lambda e: e.episode_id
        )
    assert len(expected) >= 2
