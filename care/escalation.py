"""Escalation of episodes nobody acknowledged (docs/ALERTS.md), judged at the flow's clock.

A level is due at the episode's opened_at plus its severity's threshold. It is escalated when
the clock has reached it, the episode was not acknowledged (or resolved) or withdrawn by then,
the episode opened within care_escalate_max_age_days of the clock, and that level was not
escalated before. The row and its outbox message are written in one transaction with a
deterministic id, so a crash anywhere publishes each escalation under one id, and a second run
at the same clock finds nothing new.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import duckdb
import pyarrow as pa

from care.lifecycle import alert_message, payload, stage_messages
from care.policy import CarePolicy, as_policy
from care.rules import stable_id
from warehouse.db import retry_busy, transaction
from warehouse.leases import serialize


@dataclass(frozen=True)
class Escalation:
    """What operators' automations get: no patient id, no clinical values."""

    message_id: str
    episode_id: str
    level: int
    severity: str
    reason: str
    due_at: datetime
    escalated_at: datetime


@dataclass
class EscalationReport:
    as_of: datetime
    escalated: list[Escalation] = field(default_factory=list)
    published: int = 0
    notified: int = 0

    def as_dict(self) -> dict:
        levels = [e.level for e in self.escalated]
        return {
            "as_of": self.as_of.isoformat(),
            "escalated": len(self.escalated),
            "level_1": levels.count(1),
            "level_2": levels.count(2),
            "published": self.published,
            "notified": self.notified,
        }


def escalation_id(episode_id: str, level: int) -> str:
    return stable_id(episode_id, "escalated", str(level))


_DUE = """
SELECT e.episode_id, t.level, e.opened_at + to_minutes(t.minutes) AS due_at, e.patient_id, e.clinic_id,
       e.reason, e.severity, e.first_alert_id, a.source_event_id, e.opened_at, e.occurrences
FROM alert_episodes e
JOIN thresholds t USING (severity)
JOIN clinical_alerts a ON a.alert_id = e.first_alert_id
WHERE e.opened_at + to_minutes(t.minutes) <= $as_of
  AND e.opened_at > $as_of - to_days($max_age)
  AND (e.acknowledged_at IS NULL OR e.acknowledged_at > e.opened_at + to_minutes(t.minutes))
  AND (e.withdrawn_at IS NULL OR e.withdrawn_at > e.opened_at + to_minutes(t.minutes))
  AND NOT EXISTS (SELECT 1 FROM alert_escalations x WHERE x.episode_id = e.episode_id AND x.level = t.level)
ORDER BY due_at, e.episode_id, t.level
"""


def _due(conn, policy: CarePolicy, as_of: datetime) -> list[tuple]:
    minutes = policy.escalation_minutes()
    table = pa.table(
        {
            "severity": [s for s, _ in minutes],
            "level": pa.array([lv for _, lv in minutes], pa.int32()),
            "minutes": pa.array(list(minutes.values()), pa.int32()),
        }
    )
    conn.register("thresholds", table)
    try:
        return conn.execute(_DUE, {"as_of": as_of, "max_age": policy.escalate_max_age_days}).fetchall()
    finally:
        conn.unregister("thresholds")


def escalate(conn: duckdb.DuckDBPyConnection, policy: CarePolicy, as_of: datetime) -> list[Escalation]:
    """Record and stage every escalation due at `as_of`, in one transaction; what was escalated."""
    policy = as_policy(policy)
    return retry_busy(lambda: _escalate(conn, policy, as_of))


def _escalate(conn, policy: CarePolicy, as_of: datetime) -> list[Escalation]:
    with transaction(conn):
        serialize(conn, "escalation")  # the escalation flow beside the lead ingest worker: not both at once
        rows = _due(conn, policy, as_of)
        out = [_escalation(r, as_of) for r in rows]
        _record(conn, out)
        stage_messages(conn, [_message(r, as_of) for r in rows], as_of, policy.alerts_topic)
    return out


def _escalation(row: tuple, as_of: datetime) -> Escalation:
    episode_id, level, due_at, _, _, reason, severity, *_ = row
    return Escalation(escalation_id(episode_id, level), episode_id, level, severity, reason, due_at, as_of)


def _record(conn, escalations: list[Escalation]) -> None:
    """One INSERT for the run's escalations: after an outage there can be thousands at once."""
    if not escalations:
        return
    ts = pa.timestamp("us", tz="UTC")
    conn.register(
        "new_escalations",
        pa.table(
            {
                "episode_id": [e.episode_id for e in escalations],
                "level": pa.array([e.level for e in escalations], pa.int32()),
                "message_id": [e.message_id for e in escalations],
                "severity": [e.severity for e in escalations],
                "reason": [e.reason for e in escalations],
                "due_at": pa.array([e.due_at for e in escalations], ts),
                "escalated_at": pa.array([e.escalated_at for e in escalations], ts),
            }
        ),
    )
    try:
        conn.execute("INSERT INTO alert_escalations SELECT *, NULL FROM new_escalations")
    finally:
        conn.unregister("new_escalations")


def _message(row: tuple, as_of: datetime) -> tuple[str, str, bytes, str]:
    episode_id, level, _, pid, clinic, reason, severity, first, source, opened_at, occurrences = row
    mid = escalation_id(episode_id, level)
    body = payload(
        alert_id=first,
        source_event_id=source,
        severity=severity,
        reason=reason,
        raised_at=opened_at,
        action="escalated",
        episode_id=episode_id,
        occurrences=occurrences,
        level=level,
    )
    return mid, pid, alert_message(mid, as_of, clinic, pid, body), severity


# --- Prefect events (or any notifier): after the commit, at least once, with the message's id ---
Notify = Callable[[Escalation], None]


def unnotified(conn: duckdb.DuckDBPyConnection, max_age: timedelta, now: datetime) -> list[Escalation]:
    rows = conn.execute(
        """SELECT message_id, episode_id, level, severity, reason, due_at, escalated_at FROM alert_escalations
           WHERE notified_at IS NULL AND escalated_at > ? ORDER BY escalated_at, message_id""",
        [now - max_age],
    ).fetchall()
    return [Escalation(*r) for r in rows]


def notify_all(conn: duckdb.DuckDBPyConnection, notify: Notify, max_age: timedelta, now: datetime) -> int:
    """Hand every escalation not yet notified to `notify`, marking each once handed over."""
    sent = 0
    for esc in unnotified(conn, max_age, now):
        notify(esc)
        conn.execute("UPDATE alert_escalations SET notified_at = now() WHERE message_id = ?", [esc.message_id])
        sent += 1
    return sent
