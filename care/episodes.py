"""Alert episodes (docs/ALERTS.md) as a pure function of a patient's alerts and the on-call actions.

One patient, one reason, one open item in the queue. The same alerts and actions give the
same episodes whatever order they arrived in and however they were batched: an action that
names an alert not seen yet simply has nothing to apply to until the alert is there.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from care.rules import stable_id


@dataclass(frozen=True)
class StoredAlert:
    """An alert as the warehouse holds it."""

    alert_id: str
    patient_id: str
    clinic_id: str
    reason: str
    severity: str
    source_event_id: str
    source_occurred_at: datetime
    raised_at: datetime
    withdrawn_at: datetime | None  # None while the alert stands


@dataclass(frozen=True)
class Action:
    """An alert.acknowledged or alert.resolved event."""

    event_id: str
    patient_id: str
    alert_id: str
    occurred_at: datetime
    staff_id: str
    resolution: str | None  # None for an acknowledgement


@dataclass(frozen=True)
class Episode:
    episode_id: str
    patient_id: str
    clinic_id: str
    reason: str
    severity: str
    alert_ids: tuple[str, ...]  # standing alerts in episode order (all, when all are withdrawn)
    withdrawn_ids: tuple[str, ...]  # withdrawn alerts that fall in a standing episode
    opened_at: datetime
    acknowledged: Action | None  # the earliest acknowledgement (a resolution acknowledges too)
    resolved: Action | None  # the earliest resolution
    withdrawn_at: datetime | None  # set when every alert of the episode is withdrawn

    @property
    def occurrences(self) -> int:
        return len(self.alert_ids)

    @property
    def members(self) -> tuple[str, ...]:
        return self.alert_ids + self.withdrawn_ids

    @property
    def status(self) -> str:
        # A person's resolution outlives a withdrawal; a withdrawal empties the queue item.
        if self.resolved is not None:
            return "resolved"
        if self.withdrawn_at is not None:
            return "withdrawn"
        return "acknowledged" if self.acknowledged is not None else "open"


def episode_id(first_alert_id: str) -> str:
    """Deterministic from the episode's first alert."""
    return stable_id(first_alert_id, "episode")


def _earliest(actions: Iterable[Action]) -> Action | None:
    return min(actions, key=lambda a: (a.occurred_at, a.event_id), default=None)


def episodes(alerts: Iterable[StoredAlert], actions: Iterable[Action]) -> list[Episode]:
    """Every episode of these alerts; actions apply to the alert they name, for the same patient only."""
    by_alert: dict[str, list[Action]] = defaultdict(list)
    for act in actions:
        by_alert[act.alert_id].append(act)
    keys: dict[tuple[str, str], list[StoredAlert]] = defaultdict(list)
    for a in alerts:
        keys[(a.patient_id, a.reason)].append(a)
    out: list[Episode] = []
    for members in keys.values():
        members.sort(key=_order)
        out += _key_episodes(members, by_alert)
    return out


def _order(a: StoredAlert) -> tuple[datetime, str]:
    return (a.source_occurred_at, a.alert_id)


def _key_episodes(members: list[StoredAlert], by_alert: dict[str, list[Action]]) -> list[Episode]:
    """Standing alerts make the episodes: the history supports exactly them, whatever the arrival
    order. A withdrawn alert (which exists only because some event came late) joins the standing
    episode it falls in, or, before any, an episode of withdrawn alerts only: `withdrawn`."""
    standing = [a for a in members if a.withdrawn_at is None]
    groups = _split(standing, by_alert)
    leftovers = []
    for w in (a for a in members if a.withdrawn_at is not None):
        host = next((g for g in reversed(groups) if _order(g[0]) <= _order(w)), None)
        (host if host is not None else leftovers).append(w)
    return [_episode(g, by_alert) for g in groups + _split(leftovers, by_alert)]


def _split(members: list[StoredAlert], by_alert: dict[str, list[Action]]) -> list[list[StoredAlert]]:
    """One key's alerts, in order, into episodes: a new one when the latest was resolved at or before
    the alert's source event."""
    groups: list[list[StoredAlert]] = []
    for a in members:
        resolved = _resolution(groups[-1], by_alert) if groups else None
        if not groups or (resolved is not None and resolved.occurred_at <= a.source_occurred_at):
            groups.append([a])
        else:
            groups[-1].append(a)
    return groups


def _acts(group: list[StoredAlert], by_alert: dict[str, list[Action]]) -> list[Action]:
    pid = group[0].patient_id
    return [act for a in group for act in by_alert.get(a.alert_id, ()) if act.patient_id == pid]


def _resolution(group: list[StoredAlert], by_alert: dict[str, list[Action]]) -> Action | None:
    return _earliest(act for act in _acts(group, by_alert) if act.resolution is not None)


def _episode(group: list[StoredAlert], by_alert: dict[str, list[Action]]) -> Episode:
    group = sorted(group, key=_order)
    standing = [a for a in group if a.withdrawn_at is None]
    first = (standing or group)[0]
    withdrawn = [a.withdrawn_at for a in group]
    return Episode(
        episode_id=episode_id(first.alert_id),
        patient_id=first.patient_id,
        clinic_id=first.clinic_id,
        reason=first.reason,
        severity=first.severity,
        alert_ids=tuple(a.alert_id for a in standing or group),
        withdrawn_ids=tuple(a.alert_id for a in group if standing and a.withdrawn_at is not None),
        opened_at=first.raised_at,
        acknowledged=_earliest(_acts(group, by_alert)),
        resolved=_resolution(group, by_alert),
        withdrawn_at=max(withdrawn) if all(w is not None for w in withdrawn) else None,  # type: ignore[type-var]
    )
