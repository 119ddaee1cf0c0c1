"""Lake maintenance, as DuckLake recommends: inlined rows flushed to Parquet, small files merged,
old snapshots expired, files nobody references removed, and a check that no event id landed twice.

Every step is its own short transaction on one table (or one catalog-wide call), so a writer that
interleaves them with its batches (ingest does, between batches) never waits for more than one.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import duckdb

from warehouse.db import retry_busy
from warehouse.exceptions import WarehouseError

log = logging.getLogger("clinicflow.maintenance")
Step = tuple[str, Callable[[duckdb.DuckDBPyConnection], int]]
# Files written in the analysts' lake (merged Parquet) must stay readable by their group.
SHARED = {"analysts": 0o027}


@dataclass
class MaintenanceReport:
    steps: int = 0
    seconds: float = 0.0
    longest_step_s: float = 0.0
    files_merged: int = 0
    snapshots_expired: int = 0
    files_removed: int = 0
    positions_pruned: int = 0
    duplicate_event_ids: int = 0
    data_files_after: dict[str, int] = field(default_factory=dict)


def _tables(conn, alias: str) -> list[tuple[str, str]]:
    return conn.execute(
        "SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = ? ORDER BY 1, 2", [alias]
    ).fetchall()


def _rows(conn, sql: str, params=()) -> int:
    return len(conn.execute(sql, list(params)).fetchall())


def prune_positions(conn: duckdb.DuckDBPyConnection, alias: str) -> int:
    """Delete every outbox position but the furthest of each topic partition; how many went.

    Every publishing round appends one row per partition it wrote, and a publisher taking the
    role over reads only the furthest (warehouse/outbox.py), so the rest is history nobody reads:
    left alone, a follower under steady traffic adds hundreds of thousands of rows a day."""
    table = f"{alias}.main.outbox_positions"
    (n,) = conn.execute(
        f"""DELETE FROM {table} o WHERE next_offset < (
                SELECT max(i.next_offset) FROM {table} i WHERE i.topic = o.topic AND i."partition" = o."partition")"""
    ).fetchone()
    return n


def steps(conn: duckdb.DuckDBPyConnection, alias: str, retention_days: float) -> Iterator[Step]:
    """The maintenance of the lake attached as `alias`, step by step (a step runs when called)."""
    tables = _tables(conn, alias)
    if ("main", "outbox_positions") in tables:  # before the merges, which then fold its deletes in
        yield f"prune {alias}.main.outbox_positions", lambda c: prune_positions(c, alias)
    for schema, table in tables:
        name = f"{alias}.{schema}.{table}"
        yield (
            f"flush {name}",
            lambda c, s=schema, t=table: _rows(
                c, "CALL ducklake_flush_inlined_data(?, schema_name => ?, table_name => ?)", [alias, s, t]
            ),
        )
        if rewritten(alias, table):
            yield f"rewrite {name}", _rewrite(alias, schema, table)
        yield (
            f"merge {name}",
            lambda c, s=schema, t=table: _rows(
                c, "CALL ducklake_merge_adjacent_files(?, ?, schema => ?)", [alias, t, s]
            ),
        )
    older = f"now() - INTERVAL {float(retention_days) * 86400:.0f} SECOND"
    yield f"expire {alias}", lambda c: _rows(c, f"CALL ducklake_expire_snapshots(?, older_than => {older})", [alias])
    # Files unreferenced for a day: no reader's query lasts that long.
    yield (
        f"clean {alias}",
        lambda c: _rows(c, "CALL ducklake_cleanup_old_files(?, older_than => now() - INTERVAL 1 DAY)", [alias]),
    )
    yield (
        f"orphans {alias}",
        lambda c: _rows(c, "CALL ducklake_delete_orphaned_files(?, older_than => now() - INTERVAL 1 DAY)", [alias]),
    )


# Ingest-time merges take only files under this size: the recent, small ones. The daily round merges
# the rest up to DuckLake's target size, so a merge between two batches never rewrites the history.
COMPACT_BELOW = 16 * 1024 * 1024


# Lakes whose files with deleted rows are rewritten (see compaction_steps), and from what share of
# dead rows: half keeps a file's rewrite to about what was written into it since.
REWRITTEN = {"analysts"}
REWRITE_ABOVE = 0.5
# The warehouse's tables whose change feeds are followed: raw_events by the dedupe index
# (warehouse/dedupe.py), the rest by the analysts' refresh (warehouse/analytics.py; a test checks
# it reads no other). Their files are merged only; every other table's are rewritten too.
CHANGE_FED = frozenset(
    {
        "raw_events",
        "patient_keys",
        "followup_tasks",
        "clinical_alerts",
        "alert_episodes",
        "alert_escalations",
        "quarantine",
        "outcome_params",
    }
)


def rewritten(alias: str, table: str) -> bool:
    """Whether compaction rewrites the table's files with deleted rows (see compaction_steps)."""
    return alias in REWRITTEN or table not in CHANGE_FED


def _rewrite(alias: str, schema: str, table: str) -> Callable[[duckdb.DuckDBPyConnection], int]:
    return lambda c: _rows(
        c,
        "CALL ducklake_rewrite_data_files(?, ?, schema => ?, delete_threshold => ?)",
        [alias, table, schema, REWRITE_ABOVE],
    )


def compaction_steps(conn: duckdb.DuckDBPyConnection, alias: str) -> Iterator[Step]:
    """The light round, step by step: rewrites of files at least half deleted (where allowed, below),
    then merges of the small files of every table that has more than one.

    Files with deleted rows, which merging skips, are rewritten once half their rows are dead, except
    in the tables whose change feeds are followed (CHANGE_FED): DuckLake keeps a merged row's
    snapshot, so the dedupe index and the analysts' refresh do not see it again, while a rewrite
    re-reports a file's surviving rows as updated. Rewritten: the queues and leases of the
    warehouse's lake (care_plan_queue: a row deleted a minute after it came, and every batch reads
    the table), and the whole analysts' lake, where every refresh deletes the touched patients' old
    rows (left alone, its tables held as many dead rows as live ones 26 refreshes into a drain).
    """
    info = conn.execute("SELECT table_name, file_count, delete_file_count FROM ducklake_table_info(?)", [alias])
    counts = {table: (files, deletes) for table, files, deletes in info.fetchall()}
    for schema, table in _tables(conn, alias):
        files, deletes = counts.get(table, (0, 0))
        if deletes and rewritten(alias, table):
            yield f"rewrite {alias}.{schema}.{table}", _rewrite(alias, schema, table)
        if files > 1:
            yield (
                f"merge {alias}.{schema}.{table}",
                lambda c, s=schema, t=table: _rows(
                    c,
                    "CALL ducklake_merge_adjacent_files(?, ?, schema => ?, max_file_size => ?)",
                    [alias, t, s, COMPACT_BELOW],
                ),
            )


def duplicate_event_ids(conn: duckdb.DuckDBPyConnection) -> int:
    """Event ids held twice in raw_events: landing's index makes this 0; the daily check proves it."""
    return conn.execute(
        "SELECT count(*) FROM (SELECT event_id FROM raw_events GROUP BY event_id HAVING count(*) > 1)"
    ).fetchall()[0][0]


def run(conn: duckdb.DuckDBPyConnection, aliases: list[str], retention_days: float) -> MaintenanceReport:
    """Every step on every lake in `aliases`, then the duplicate check; what it did."""
    report, t0 = MaintenanceReport(), time.monotonic()
    for alias in aliases:
        for name, step in steps(conn, alias, retention_days):
            run_step(conn, alias, name, step, report)
    report.duplicate_event_ids = duplicate_event_ids(conn)
    if report.duplicate_event_ids:
        log.error("%d event ids are held twice in raw_events; this is a bug: report it", report.duplicate_event_ids)
    report.data_files_after = {a: data_files(conn, a) for a in aliases}
    report.seconds = round(time.monotonic() - t0, 3)
    return report


def run_step(conn, alias: str, name: str, step: Callable, report: MaintenanceReport, tries: int = 8) -> None:
    started = time.monotonic()
    old = os.umask(SHARED.get(alias, 0o077))
    try:
        n = retry_busy(lambda: step(conn), tries)  # a compaction that met an ingest worker's commit goes again
    except duckdb.Error as e:
        raise WarehouseError(f"lake maintenance step {name!r} failed: {e}; the lake is as it was before it") from e
    finally:
        os.umask(old)
    took = time.monotonic() - started
    report.steps += 1
    report.longest_step_s = round(max(report.longest_step_s, took), 3)
    kind = name.split(" ", 1)[0]
    if kind in ("merge", "rewrite"):
        report.files_merged += n
    elif kind == "expire":
        report.snapshots_expired += n
    elif kind in ("clean", "orphans"):
        report.files_removed += n
    elif kind == "prune":
        report.positions_pruned += n


def data_files(conn, alias: str) -> int:
    """How many Parquet data files the lake's current snapshot references."""
    return sum(
        conn.execute(f"SELECT count(*) FROM ducklake_list_files('{alias}', '{t}', schema => '{s}')").fetchall()[0][0]
        for s, t in _tables(conn, alias)
    )


class MaintenanceTimer:
    """For a writer that never lets go (ingest): rounds of steps between two batches, a round every
    interval_s; each gap runs steps until budget_s is spent (at least one). A `light` timer gives a
    step that meets other writers twice only, and on failure drops the round with a warning instead
    of stopping the ingest that runs it: the next round merges what this one left."""

    def __init__(
        self,
        rounds: Callable[[duckdb.DuckDBPyConnection], Iterator[tuple[str, Step]]],
        interval_s: float,
        budget_s: float = 0.0,
        light: bool = False,
    ):
        self.rounds, self.interval_s, self.budget_s, self.light = rounds, interval_s, budget_s, light
        self.pending: Iterator[tuple[str, Step]] | None = None
        self.last = time.monotonic()  # the first round a full interval after start
        self.report = MaintenanceReport()

    @classmethod
    def full(cls, aliases: list[str], retention_days: float, interval_s: float) -> MaintenanceTimer:
        """The daily round (every step of `steps`), one step a gap."""
        return cls(lambda c: ((a, s) for a in aliases for s in steps(c, a, retention_days)), interval_s)

    @classmethod
    def compaction(cls, alias: str, interval_s: float, budget_s: float = 0.1) -> MaintenanceTimer:
        """The light round (`compaction_steps`): steps until budget_s a gap."""
        return cls(lambda c: ((alias, s) for s in compaction_steps(c, alias)), interval_s, budget_s, light=True)

    def maybe(self, conn) -> bool:
        """Run the next steps when a round is under way or due; True when one ran."""
        started, ran = time.monotonic(), False
        while self._step(conn):
            ran = True
            if time.monotonic() - started >= self.budget_s:
                break
        return ran

    def _step(self, conn) -> bool:
        if self.pending is None:
            if time.monotonic() - self.last < self.interval_s:
                return False
            self.pending = self.rounds(conn)
            self.report, self.last = MaintenanceReport(), time.monotonic()
        nxt = next(self.pending, None)
        if nxt is None:
            self.pending = None
            log.info("lake maintenance round done: %s", self.report)
            return False
        alias, (name, step) = nxt
        try:
            run_step(conn, alias, name, step, self.report, tries=2 if self.light else 8)
        except WarehouseError as e:
            if not self.light:
                raise
            log.warning("%s; the round is dropped and the next one (in %.0f s) merges again", e, self.interval_s)
            self.pending = None
            return False
        return True
