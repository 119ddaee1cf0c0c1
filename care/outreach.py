"""The outreach flow's work, judged at its clock: expire stale tasks, dispatch due ones, raise overdue REMS forms.

Dispatch is recorded (task status, outreach_id, staged message) in one
transaction; delivery happens after the commit. A task is dispatched once:
its outreach_id is derived from the task, so a crash after delivery but before
the outbox is marked sent re-sends the same id, which consumers dedupe.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime

import duckdb
import pyarrow as pa

from care.channels import OutreachChannel, OutreachRequest
from care.lifecycle import AlertChanges, finish, insert_alerts
from care.planner import plan_pending, touch_ids
from care.policy import CarePolicy, as_policy
from care.rules import alert, stable_id
from schemas.produce import produced_event
from warehouse.db import retry_busy, transaction


@dataclass
class OutreachReport:
    expired: int = 0
    dispatched: int = 0
    blocked_no_consent: int = 0
    rems_overdue_alerts: int = 0
    delivered: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


def _expire(conn, as_of: datetime, days: int) -> int:
    return conn.execute(
        """UPDATE followup_tasks SET status = 'expired', expired_at = ?, updated_at = ?
                           WHERE audience = 'patient' AND status IN ('open', 'dispatched')
                             AND send_after + to_days(?) <= ?""",
        [as_of, as_of, days, as_of],
    ).fetchall()[0][0]


def _due(conn, as_of: datetime) -> list[OutreachRequest]:
    rows = conn.execute(
        """SELECT task_id, patient_id, clinic_id, channel, kind, send_after FROM followup_tasks
                           WHERE audience = 'patient' AND status = 'open' AND send_after <= ?
                           ORDER BY send_after, task_id""",
        [as_of],
    ).fetchall()
    out = []
    for task_id, pid, clinic, channel, kind, send_after in rows:
        oid = stable_id(task_id, "outreach")
        value = produced_event(
            "outreach.requested",
            oid,
            as_of,
            clinic,
            pid,
            {"outreach_id": oid, "channel": channel, "template": kind, "task_id": task_id, "send_after": send_after},
        )
        out.append(OutreachRequest(oid, task_id, pid, clinic, channel, kind, send_after, value))
    return out


def _mark_dispatched(conn, requests: list[OutreachRequest], as_of: datetime) -> None:
    """One UPDATE for all the requests: an UPDATE reads followup_tasks' data files, so one per
    task read the whole table once per task."""
    if not requests:
        return
    ids = {
        "task_id": pa.array([r.task_id for r in requests], pa.string()),
        "patient_id": pa.array([r.patient_id for r in requests], pa.string()),
        "outreach_id": pa.array([r.outreach_id for r in requests], pa.string()),
    }
    conn.register("dispatched", pa.table(ids))
    try:
        conn.execute(
            """UPDATE followup_tasks f SET status = 'dispatched', outreach_id = d.outreach_id, dispatched_at = ?,
                        updated_at = ? FROM dispatched d WHERE f.patient_id = d.patient_id AND f.task_id = d.task_id""",
            [as_of, as_of],
        )
    finally:
        conn.unregister("dispatched")


def _rems_overdue(conn, as_of: datetime, topic: str) -> int:
    # The alert's source is the session: its occurred_at orders the key's episodes.
    rows = conn.execute(
        """SELECT t.patient_id, t.clinic_id, t.source_event_id, s.occurred_at
           FROM (SELECT * FROM followup_tasks WHERE kind = 'rems_form_due' AND status = 'open' AND due_at < ?) t
           JOIN sessions_completed s ON s.event_id = t.source_event_id""",
        [as_of],
    ).fetchall()
    fresh = [(pid, clinic, alert(src, "rems_form_overdue", occ)) for pid, clinic, src, occ in rows]
    known = {
        aid
        for (aid,) in conn.execute("SELECT alert_id FROM clinical_alerts WHERE reason = 'rems_form_overdue'").fetchall()
    }
    changes = AlertChanges(new=[x for x in fresh if x[2].alert_id not in known])
    if changes:
        insert_alerts(conn, changes.new, as_of)
        touch_ids(conn, sorted({p for p, _, _ in changes.new}))
        finish(conn, changes, as_of, topic)
    return len(changes.new)


def run_outreach(
    conn: duckdb.DuckDBPyConnection, policy: CarePolicy, as_of: datetime, channel: OutreachChannel
) -> OutreachReport:
    """Expire, dispatch and raise overdue REMS alerts in one transaction, then deliver.

    Queued patients are re-planned first: a task is never dispatched from a stale plan.
    """
    policy = as_policy(policy)
    report = OutreachReport()
    plan_pending(conn, policy, as_of, all_=True)
    # Ingest workers write beside outreach: a DuckLake conflict with one of their batches retries.
    retry_busy(lambda: _dispatch(conn, policy, as_of, channel, report))
    report.delivered = channel.deliver(conn)
    return report


def _dispatch(conn, policy: CarePolicy, as_of: datetime, channel: OutreachChannel, report: OutreachReport) -> None:
    with transaction(conn):
        report.expired = _expire(conn, as_of, policy.expire_days)
        due = _due(conn, as_of)
        channel.stage(conn, due, as_of)
        _mark_dispatched(conn, due, as_of)
        report.dispatched = len(due)
        report.rems_overdue_alerts = _rems_overdue(conn, as_of, policy.alerts_topic)
        report.blocked_no_consent = conn.execute(
            "SELECT count(*) FROM followup_tasks WHERE status = 'blocked_no_consent'"
        ).fetchall()[0][0]
