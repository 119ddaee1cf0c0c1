"""Figures for `clinicflow status`, read from the warehouse."""

from __future__ import annotations

import duckdb

from warehouse.db import records
from warehouse.leases import holders
from warehouse.reconcile import reconciliation


def _scalar(conn, sql: str, params=()):
    return conn.execute(sql, list(params)).fetchall()[0][0]


def warehouse_figures(conn: duckdb.DuckDBPyConnection, group_id: str) -> dict:
    """Landed and quarantined in the last hour and day, offsets, reconciliation, last batch."""
    windows = {"last_hour": "INTERVAL 1 HOUR", "last_day": "INTERVAL 1 DAY"}
    figures = {
        "landed": {
            k: _scalar(conn, f"SELECT count(*) FROM raw_events WHERE received_at > now() - {v}")
            for k, v in windows.items()
        },
        "quarantined": {
            k: _scalar(conn, f"SELECT count(*) FROM quarantine WHERE received_at > now() - {v}")
            for k, v in windows.items()
        },
        "landed_total": _scalar(conn, "SELECT count(*) FROM raw_events"),
        "quarantined_open": _scalar(conn, "SELECT count(*) FROM quarantine WHERE status = 'open'"),
        "outbox_unsent": _scalar(conn, "SELECT count(*) FROM outbox WHERE sent_at IS NULL AND parked_at IS NULL"),
        "outbox_parked": records(
            conn,
            """SELECT message_id, kind, topic, octet_length(value) AS bytes, park_error AS error, parked_at
               FROM outbox WHERE parked_at IS NOT NULL ORDER BY parked_at LIMIT 50""",
        ),
        "patients_parked": records(
            conn,
            """SELECT patient_id, error, attempts, parked_at FROM care_plan_parked
                                          ORDER BY parked_at LIMIT 50""",
        ),
        "last_batch_at": _scalar(conn, "SELECT max(committed_at) FROM batches"),
        "gx_failed_batches_last_day": _scalar(
            conn, "SELECT count(*) FROM batches WHERE gx_success = false AND committed_at > now() - INTERVAL 1 DAY"
        ),
        "stored_offsets": {
            f"{t}/{p}": o
            for t, p, o in conn.execute(
                'SELECT topic, "partition", max(next_offset) FROM consumer_offsets WHERE group_id = ? GROUP BY ALL '
                "ORDER BY 1, 2",
                [group_id],
            ).fetchall()
        },
        "partition_holders": holders(conn, group_id),
        "reconciliation": reconciliation(conn),
        "open_tasks_by_kind": dict(
            conn.execute(
                "SELECT kind, count(*) FROM followup_tasks WHERE status IN ('open', 'dispatched') GROUP BY 1 ORDER BY 1"
            ).fetchall()
        ),
        "blocked_tasks": _scalar(conn, "SELECT count(*) FROM followup_tasks WHERE status = 'blocked_no_consent'"),
        "patients_queued_for_planning": _scalar(conn, "SELECT count(*) FROM care_plan_queue"),
        "open_alerts_by_severity": dict(
            conn.execute(
                "SELECT severity, count(*) FROM clinical_alerts WHERE status = 'open' GROUP BY 1 ORDER BY 1"
            ).fetchall()
        ),
        # The on-call queue's items: episodes still needing a person, and how many were escalated.
        "open_episodes_by_severity": {
            sev: {"open": n, "escalated": esc}
            for sev, n, esc in conn.execute(
                """SELECT severity, count(*),
                          count(*) FILTER (WHERE episode_id IN (SELECT episode_id FROM alert_escalations))
                   FROM alert_episodes WHERE status IN ('open', 'acknowledged') GROUP BY 1 ORDER BY 1"""
            ).fetchall()
        },
        "unacknowledged_episodes": _scalar(conn, "SELECT count(*) FROM alert_episodes WHERE status = 'open'"),
        "alert_actions_waiting": _scalar(
            conn,
            """SELECT count(*) FROM (SELECT alert_id, patient_id FROM alert_acknowledgements
                                     UNION ALL SELECT alert_id, patient_id FROM alert_resolutions) x
               WHERE NOT EXISTS (SELECT 1 FROM clinical_alerts a
                                 WHERE a.alert_id = x.alert_id AND a.patient_id = x.patient_id)""",
        ),
    }
    figures["reconciliation_balanced"] = all(r["balanced"] for r in figures["reconciliation"])
    return figures
