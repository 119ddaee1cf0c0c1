"""Quarantine replay: re-validate quarantined messages at a later clock (after a publisher's clock skew has
passed, or once the pipeline knows a new schema version). What passes lands through the normal path, under
the source `replay:<topic>` so the original topic's reconciliation is untouched; what still fails stays
open with its new errors. Event ids keep it exactly once.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import duckdb

from schemas.messages import Message
from schemas.public import public_errors_json
from schemas.validate import Clock, Rejection, validate_event
from warehouse.db import retry_busy, transaction
from warehouse.landing import LandingConfig
from warehouse.poison import land_isolating


@dataclass
class ReplayReport:
    examined: int = 0
    landed: int = 0
    duplicates: int = 0
    still_failing: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


def _open_rows(conn, limit: int):
    return conn.execute(
        """SELECT topic, "partition", "offset", "key", raw FROM quarantine WHERE status = 'open'
                           ORDER BY received_at, topic, "partition", "offset" LIMIT ?""",
        [limit],
    ).fetchall()


def replay_quarantine(
    conn: duckdb.DuckDBPyConnection, clock: Clock, cfg: LandingConfig, limit: int = 100_000
) -> ReplayReport:
    report = ReplayReport()
    passing: list[tuple[tuple, Message]] = []
    failing: list[tuple[tuple, Rejection]] = []
    for topic, part, off, key, raw in _open_rows(conn, limit):
        raw = bytes(raw)
        result = validate_event(raw, clock, cfg.families.get(topic), cfg.max_bytes)
        pos = (topic, part, off)
        if isinstance(result, Rejection):
            failing.append((pos, result))
        else:
            passing.append((pos, Message(f"replay:{topic}", part, off, bytes(key) if key else None, raw)))
    report.examined = len(passing) + len(failing)
    if passing:
        result = land_isolating(conn, [m for _, m in passing], clock, cfg)
        report.landed, report.duplicates = result.landed, result.duplicates
    _mark(conn, passing, failing)
    report.still_failing = len(failing)
    return report


def _mark(conn, passing, failing) -> None:
    retry_busy(lambda: _mark_once(conn, passing, failing))  # beside ingest workers: a conflict retries


def _mark_once(conn, passing, failing) -> None:
    with transaction(conn):
        for (topic, part, off), _ in passing:
            conn.execute(
                """UPDATE quarantine SET status = 'replayed' WHERE topic = ? AND "partition" = ?
                            AND "offset" = ?""",
                [topic, part, off],
            )
        for (topic, part, off), rej in failing:
            conn.execute(
                """UPDATE quarantine SET error_kind = ?, errors = ?, public_errors = ? WHERE topic = ?
                            AND "partition" = ? AND "offset" = ?""",
                [
                    rej.error_kind,
                    rej.errors_json(),
                    public_errors_json(rej.errors, rej.codes, rej.error_kind),
                    topic,
                    part,
                    off,
                ],
            )
