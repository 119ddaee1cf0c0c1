"""Alerts in the warehouse: insert, withdraw, re-derive episodes, stage what the queue must hear.

Every change to a patient's alerts or on-call actions re-derives that patient's episodes
(care.episodes, a pure function) inside the same transaction, and stages the clinical.alert
messages it calls for in the outbox: `raised` or `repeated` for a new alert, `withdrawn` for
a withdrawn one. Message ids are deterministic, so a message staged twice is sent once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import duckdb
import pyarrow as pa

from care.episodes import Action, Episode, StoredAlert, episodes
from care.rules import HISTORY_DEPENDENT, Alert, stable_id
from schemas.produce import produced_event
from warehouse import outbox
from warehouse.db import retry_busy, transaction

T = "patient_id IN (SELECT patient_id FROM touched)"
ALERTS = "clinical_alerts"
SEVERITY_ORDER = ("urgent", "high", "routine")


@dataclass
class AlertChanges:
    """What one transaction did to alerts, for the messages it owes the queue."""

    new: list[tuple[str, str, Alert]] = field(default_factory=list)  # (patient, clinic, alert)
    withdrawn: list[str] = field(default_factory=list)

    def merge(self, other: AlertChanges) -> AlertChanges:
        self.new += other.new
        self.withdrawn += other.withdrawn
        return self

    def __bool__(self) -> bool:
        return bool(self.new or self.withdrawn)


def insert_alerts(
    conn: duckdb.DuckDBPyConnection,
    new: list[tuple[str, str, Alert]],
    now: datetime,
    into: str = ALERTS,
    episode_of: dict[str, str] | None = None,
) -> None:
    """New alert rows, column-wise, into clinical_alerts or a batch's copy of it; their episodes and
    messages follow in finish() (which passes `episode_of` when it writes a batch's new alerts)."""
    if not new:
        return
    table = pa.table(
        {
            "alert_id": [a.alert_id for _, _, a in new],
            "patient_id": [p for p, _, _ in new],
            "clinic_id": [c for _, c, _ in new],
            "severity": [a.severity for _, _, a in new],
            "reason": [a.reason for _, _, a in new],
            "source_event_id": [a.source_event_id for _, _, a in new],
            "source_occurred_at": pa.array([a.source_occurred_at for _, _, a in new], pa.timestamp("us", tz="UTC")),
            "episode_id": pa.array([(episode_of or {}).get(a.alert_id) for _, _, a in new], pa.string()),
        }
    )
    conn.register("new_alerts", table)
    try:
        conn.execute(
            f"""INSERT INTO {into} (alert_id, patient_id, clinic_id, severity, reason, source_event_id,
                                    raised_at, status, withdrawn_at, source_occurred_at, episode_id)
               SELECT alert_id, patient_id, clinic_id, severity, reason, source_event_id, ?::TIMESTAMPTZ,
                      'open', NULL, source_occurred_at, episode_id FROM new_alerts""",
            [now],
        )
    finally:
        conn.unregister("new_alerts")


def _written(alerts: str) -> tuple[str, ...]:
    """Where a change to existing alerts goes: the table, and the batch's copy when one is read."""
    return (ALERTS,) if alerts == ALERTS else (ALERTS, alerts)


def reconcile(
    conn, derived: list[tuple[str, str, Alert]], now: datetime, withdraw: bool, alerts: str = ALERTS
) -> AlertChanges:
    """Insert the derived alerts not yet known; with `withdraw` (derived from full history), withdraw the
    history-dependent ones the history no longer supports and reopen those it supports again.

    `alerts` is clinical_alerts, or a batch's copy of its patients' rows (the planner's): then new
    alerts go into the copy only, and finish() writes them to the table with their episodes."""
    existing = dict(conn.execute(f"SELECT alert_id, status FROM {alerts} WHERE {T}").fetchall())
    changes = AlertChanges(new=[x for x in derived if x[2].alert_id not in existing])
    insert_alerts(conn, changes.new, now, into=alerts)
    if not withdraw:
        return changes
    ids = {a.alert_id for _, _, a in derived}
    gone = [aid for aid, st in existing.items() if st == "open" and aid not in ids]
    back = [aid for aid, st in existing.items() if st == "withdrawn" and aid in ids]
    if gone:
        # Only history-dependent reasons are ever withdrawn (DuckLake has no UPDATE ... RETURNING).
        where = (
            f"alert_id IN ({', '.join('?' * len(gone))}) "
            f"AND reason IN ({', '.join(repr(r) for r in sorted(HISTORY_DEPENDENT))})"
        )
        changes.withdrawn = [
            aid for (aid,) in conn.execute(f"SELECT alert_id FROM {alerts} WHERE {where}", gone).fetchall()
        ]
        for table in _written(alerts):
            conn.execute(f"UPDATE {table} SET status = 'withdrawn', withdrawn_at = ? WHERE {where}", [now, *gone])
    if back:
        marks = ", ".join("?" * len(back))
        for table in _written(alerts):
            conn.execute(f"UPDATE {table} SET status = 'open', withdrawn_at = NULL WHERE alert_id IN ({marks})", back)
    return changes


# --- episodes --------------------------------------------------------------------------------
def load_alerts(conn, alerts: str = ALERTS) -> list[StoredAlert]:
    rows = conn.execute(
        f"""SELECT alert_id, patient_id, clinic_id, reason, severity, source_event_id, source_occurred_at,
                   raised_at, withdrawn_at FROM {alerts} WHERE {T}"""
    ).fetchall()
    return [StoredAlert(*r) for r in rows]


def load_actions(conn, source: str = "care_history") -> list[Action]:
    rows = conn.execute(
        # care_history (or a batch's copy of it) holds both kinds of action: one scan, not two.
        f"""SELECT event_id, patient_id, alert_id, occurred_at, staff_id, resolution FROM {source}
            WHERE event_type IN ('alert.acknowledged', 'alert.resolved') AND {T}"""
    ).fetchall()
    return [Action(*r) for r in rows]


def refresh_episodes(
    conn: duckdb.DuckDBPyConnection, now: datetime, source: str = "care_history", alerts: str = ALERTS
) -> tuple[dict[str, Episode], dict[str, StoredAlert]]:
    """Re-derive the episodes of the patients in `touched`; ({alert_id: its episode}, {alert_id: alert}).
    With a batch's copy as `alerts`, clinical_alerts' episode ids are left to _move_alerts."""
    stored = load_alerts(conn, alerts)
    eps = episodes(stored, load_actions(conn, source))
    conn.execute(f"DELETE FROM alert_episodes WHERE {T}")
    if eps:
        _write_episodes(conn, eps, now, set_alert_episodes=alerts == ALERTS)
    return {aid: ep for ep in eps for aid in ep.members}, {a.alert_id: a for a in stored}


def backfill_episodes(conn: duckdb.DuckDBPyConnection, now: datetime) -> int:
    """Episodes for alerts that have none (a warehouse from before episodes); how many patients."""
    return retry_busy(lambda: _backfill_episodes(conn, now))  # every writer runs it on open


def _backfill_episodes(conn: duckdb.DuckDBPyConnection, now: datetime) -> int:
    with transaction(conn):
        conn.execute(
            "CREATE OR REPLACE TEMP TABLE touched AS SELECT DISTINCT patient_id FROM clinical_alerts "
            "WHERE episode_id IS NULL"
        )
        n = conn.execute("SELECT count(*) FROM touched").fetchall()[0][0]
        if n:
            refresh_episodes(conn, now)
    return n


def _write_episodes(conn, eps: list[Episode], now: datetime, set_alert_episodes: bool = True) -> None:
    ack = [e.acknowledged for e in eps]
    res = [e.resolved for e in eps]
    ts = pa.timestamp("us", tz="UTC")
    table = pa.table(
        {
            "episode_id": [e.episode_id for e in eps],
            "patient_id": [e.patient_id for e in eps],
            "clinic_id": [e.clinic_id for e in eps],
            "reason": [e.reason for e in eps],
            "severity": [e.severity for e in eps],
            "first_alert_id": [e.alert_ids[0] for e in eps],
            "opened_at": pa.array([e.opened_at for e in eps], ts),
            "occurrences": pa.array([e.occurrences for e in eps], pa.int32()),
            "status": [e.status for e in eps],
            "acknowledged_at": pa.array([a and a.occurred_at for a in ack], ts),
            "acknowledged_by": pa.array([a and a.staff_id for a in ack], pa.string()),
            "resolved_at": pa.array([r and r.occurred_at for r in res], ts),
            "resolved_by": pa.array([r and r.staff_id for r in res], pa.string()),
            "resolution": pa.array([r and r.resolution for r in res], pa.string()),
            "withdrawn_at": pa.array([e.withdrawn_at for e in eps], ts),
        }
    )
    members = pa.table(
        {
            "alert_id": [aid for e in eps for aid in e.members],
            "episode_id": [e.episode_id for e in eps for _ in e.members],
        }
    )
    conn.register("derived_episodes", table)
    conn.register("episode_members", members)
    try:
        conn.execute("INSERT INTO alert_episodes SELECT *, ?::TIMESTAMPTZ FROM derived_episodes", [now])
        if set_alert_episodes:
            _set_episodes(conn, "episode_members")
    finally:
        conn.unregister("derived_episodes")
        conn.unregister("episode_members")


def _set_episodes(conn, members: str) -> None:
    conn.execute(
        f"""UPDATE clinical_alerts SET episode_id = m.episode_id FROM {members} m
            WHERE clinical_alerts.alert_id = m.alert_id AND clinical_alerts.episode_id IS DISTINCT FROM m.episode_id"""
    )


def _move_alerts(conn, alerts: str, by_alert: dict[str, Episode], new: set[str]) -> None:
    """From a batch's copy: stored alerts whose episode changed get the new one in clinical_alerts
    (an UPDATE only when there is one: most batches only add alerts, which finish() writes whole)."""
    held = dict(conn.execute(f"SELECT alert_id, episode_id FROM {alerts} WHERE {T}").fetchall())
    moved = {aid: ep.episode_id for aid, ep in by_alert.items() if aid not in new and held.get(aid) != ep.episode_id}
    if not moved:
        return
    conn.register("moved_alerts", pa.table({"alert_id": list(moved), "episode_id": list(moved.values())}))
    try:
        _set_episodes(conn, "moved_alerts")
    finally:
        conn.unregister("moved_alerts")


# --- messages ----------------------------------------------------------------------------------
def payload(
    *,
    alert_id: str,
    source_event_id: str,
    severity: str,
    reason: str,
    raised_at: datetime,
    action: str,
    episode_id: str,
    occurrences: int,
    level: int = 0,
) -> dict[str, object]:
    """A clinical.alert payload: ids, reason and severity only, never clinical values."""
    return {
        "alert_id": alert_id,
        "severity": severity,
        "reason": reason,
        "source_event_id": source_event_id,
        "raised_at": raised_at,
        "action": action,
        "episode_id": episode_id,
        "occurrences": occurrences,
        "escalation_level": level,
    }


def alert_payload(ep: Episode, a: StoredAlert | Alert, raised_at: datetime, action: str) -> dict[str, object]:
    """The payload of one alert of an episode (raised, repeated, withdrawn)."""
    return payload(
        alert_id=a.alert_id,
        source_event_id=a.source_event_id,
        severity=ep.severity,
        reason=ep.reason,
        raised_at=raised_at,
        action=action,
        episode_id=ep.episode_id,
        occurrences=ep.occurrences,
    )


def alert_message(message_id: str, at: datetime, clinic_id: str, patient_id: str, payload: dict) -> bytes:
    return produced_event("clinical.alert", message_id, at, clinic_id, patient_id, payload)


def finish(
    conn: duckdb.DuckDBPyConnection,
    changes: AlertChanges,
    now: datetime,
    topic: str,
    source: str = "care_history",
    alerts: str = ALERTS,
) -> dict[str, Episode]:
    """Re-derive the episodes of the patients in `touched` and stage the messages `changes` owe;
    on-call actions are read from `source` (care_history, or a batch's copy of its patients' rows).

    With a batch's copy as `alerts` (reconcile's), `touched` must hold every patient with a new
    alert: they are written to clinical_alerts here, each with its episode."""
    by_alert, stored = refresh_episodes(conn, now, source, alerts)
    if alerts != ALERTS:
        new = {a.alert_id for _, _, a in changes.new}
        insert_alerts(conn, changes.new, now, episode_of={aid: by_alert[aid].episode_id for aid in new})
        _move_alerts(conn, alerts, by_alert, new)
    rows: list[tuple[str, str, bytes, str]] = []  # (message_id, patient, value, severity)
    for pid, _, a in changes.new:
        ep = by_alert[a.alert_id]
        action = "raised" if ep.alert_ids[0] == a.alert_id else "repeated"
        value = alert_message(a.alert_id, now, ep.clinic_id, pid, alert_payload(ep, a, now, action))
        rows.append((a.alert_id, pid, value, ep.severity))
    for aid in changes.withdrawn:
        ep, a = by_alert[aid], stored[aid]
        mid = stable_id(aid, "withdrawn")
        value = alert_message(mid, now, ep.clinic_id, ep.patient_id, alert_payload(ep, a, a.raised_at, "withdrawn"))
        rows.append((mid, ep.patient_id, value, ep.severity))
    stage_messages(conn, rows, now, topic)
    return by_alert


def stage_messages(conn, rows: list[tuple[str, str, bytes, str]], now: datetime, topic: str) -> None:
    """Stage clinical.alert messages; urgent ones get the earliest created_at, so they are sent first."""
    rows = sorted(rows, key=lambda r: (SEVERITY_ORDER.index(r[3]), r[0]))
    outbox.stage_rows(conn, "alert", topic, [(mid, pid.encode(), value) for mid, pid, value, _ in rows], now, True)
