"""The analysts' side of the warehouse: outcome parameters and the analysts' lake.

Analysts never read the writer's lake (it holds patient_id and the pepper). They read their
own DuckLake, with its own catalog and data path: every `analytics` view of the warehouse
as a table, keyed by patient_key. The writer refreshes it after batches, incrementally: it
asks the warehouse lake which rows changed since the snapshot it last carried over
(`ducklake_table_changes`), and rewrites only the rows of the patients (or quarantine
positions) those changes touch. Those rows are computed by the warehouse's own view definitions
(warehouse/views.sql) over the touched patients' rows only, so a refresh costs what changed, not
the history: the views are applied a second time in an in-memory database (`analysts_scope`)
whose tables are the warehouse's, narrowed to the patients in a temporary table. The aggregate
views are re-aggregated from the analysts' own per-patient tables the same way (`analysts_sums`),
not re-derived from the events.
Each refresh is one snapshot of the analysts' lake, so a query can name the instant it read
(`AT (VERSION => n)`); `analytics.snapshot_info` says which warehouse snapshot it carries.
Analysts attach it read-only from this host or another one; it never blocks the writer.
"""

from __future__ import annotations

import contextlib
import grp
import logging
import os
import threading
import time
import weakref
from importlib import resources
from pathlib import Path

import duckdb

from warehouse.db import Lake, lake_turn, retry_busy, setting_up
from warehouse.exceptions import WarehouseError
from warehouse.lake import attach_lake
from warehouse.maintenance import compaction_steps


def apply_params(conn: duckdb.DuckDBPyConnection, policy) -> None:
    """The clinical thresholds the views use, from the same policy the care rules use (written only
    when they changed: every write is a lake snapshot, and a change re-derives the analysts' lake)."""
    values = [
        policy.outcome_min_baseline,
        policy.remission_below,
        policy.rems_monitoring_minutes,
        policy.rems_form_days,
    ]
    stored = conn.execute(
        "SELECT min_baseline, remission_below, rems_monitoring_minutes, rems_form_days FROM outcome_params"
    ).fetchall()
    if stored != [tuple(values)]:
        conn.execute("DELETE FROM outcome_params")
        conn.execute("INSERT INTO outcome_params VALUES (?, ?, ?, ?)", values)


def analytics_views(conn: duckdb.DuckDBPyConnection) -> list[str]:
    return [
        r[0]
        for r in conn.execute(
            "SELECT view_name FROM duckdb_views() WHERE database_name = 'lake' AND schema_name = 'analytics' "
            "AND NOT internal ORDER BY view_name"
        ).fetchall()
    ]


log = logging.getLogger("clinicflow.analytics")
ALIAS = "analysts"
# Views with one row per patient's thing (patient_key): refreshed for the patients whose rows changed.
PER_PATIENT = ("patients", "phq9_scores", "sessions", "followup_tasks", "alerts", "alert_episodes", "rems_compliance")
# Warehouse tables whose changed rows name the patients to refresh (typed rows land with raw_events).
PATIENT_TABLES = ("raw_events", "patient_keys", "followup_tasks", "clinical_alerts", "alert_episodes")


def shared_with_group(path: Path, mode: int, group: str | None) -> None:
    """Readable by the analysts' group (see the analytics_group setting), nobody else."""
    if group is not None:
        try:
            os.chown(path, -1, grp.getgrnam(group).gr_gid)
        except KeyError as e:
            raise WarehouseError(
                f"the analysts' group {group!r} does not exist; create it or fix CLINICFLOW_ANALYTICS_GROUP"
            ) from e
    path.chmod(mode)


@contextlib.contextmanager
def _group_readable():
    """Files the refresh creates (Parquet, catalog journal) are readable by the group; the writer's
    own lake stays private through its 0700 folder."""
    old = os.umask(0o027)
    try:
        yield
    finally:
        os.umask(old)


def attach_analysts(conn: duckdb.DuckDBPyConnection, lake: Lake, group: str | None = None) -> None:
    """Attach the analysts' lake for writing as `analysts` (once per connection), creating it if need be."""
    if _ATTACHED.get(conn) == lake:
        return
    if conn in _ATTACHED:
        conn.execute(f"DETACH {ALIAS}")
        del _ATTACHED[conn]
    with _group_readable():
        for folder in {lake.data_path, *([lake.catalog_file.parent] if lake.catalog_file else [])}:
            folder.mkdir(parents=True, exist_ok=True)
            shared_with_group(folder, 0o750, group)
        with setting_up(lake, mode=0o640):  # two workers' first refreshes would create its catalog together
            attach_lake(conn, lake.catalog, lake.data_path, alias=ALIAS)
            conn.execute(f"CREATE SCHEMA IF NOT EXISTS {ALIAS}.analytics")
    _ATTACHED[conn] = lake
    if lake.catalog_file is not None:
        shared_with_group(lake.catalog_file, 0o640, group)


_ATTACHED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # connection -> the analysts' lake it has


def share_files(lake: Lake, group: str | None) -> int:
    """The analysts' group may read every file of their lake (DuckDB writes them under the writer's
    private umask, which stays as it is: other threads write the writer's own lake meanwhile)."""
    changed = 0
    for folder, dirs, files in os.walk(lake.data_path):
        for name in dirs:
            path = Path(folder) / name
            if path.stat().st_mode & 0o050 != 0o050:
                shared_with_group(path, 0o750, group)
                changed += 1
        for name in files:
            path = Path(folder) / name
            if not path.stat().st_mode & 0o040:
                shared_with_group(path, 0o640, group)
                changed += 1
    return changed


def refresh_analytics(
    conn: duckdb.DuckDBPyConnection, lake: Lake, group: str | None = None, attach: bool = True
) -> float:
    """Carry the warehouse's changes since the last refresh into the analysts' lake; seconds taken.

    attach=False: `conn` is a cursor of a connection that attached the analysts' lake already.
    """
    t0 = time.monotonic()
    try:
        # Writers of an embedded analysts' lake take turns (two workers' start and end refreshes
        # would meet; its rollback journal locks out even an ATTACH while one commits).
        with lake_turn(lake, mode=0o640):
            if attach:
                attach_analysts(conn, lake, group)
            prepare_scopes(conn)
            retry_busy(lambda: _refresh_once(conn))
        share_files(lake, group)
    except (duckdb.Error, OSError) as e:
        raise WarehouseError(
            f"refreshing the analysts' lake failed: {e}; it stays at its previous snapshot; check the disk "
            "space and permissions of its catalog and data path"
        ) from e
    return time.monotonic() - t0


def _refresh_once(conn) -> None:
    conn.execute("BEGIN")
    try:
        _refresh(conn)
        conn.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(duckdb.Error):
            conn.execute("ROLLBACK")
        raise


def _refresh(conn) -> None:
    current = conn.execute("SELECT id FROM lake.current_snapshot()").fetchall()[0][0]
    since = _carried(conn)
    if since == current and _same_history(conn, since):
        return
    # Rebuilt whole the first time, when the thresholds changed, and when the snapshot it carried is
    # gone (expired by maintenance, or another history: the warehouse was restored from a backup).
    whole = not _same_history(conn, since) or _changed(conn, "outcome_params", since, current)
    if not whole:
        _touched(conn, since, current)
    sums = not whole and _summed(conn)
    # The aggregates last: they are summed from the per-patient tables this refresh has just rewritten.
    for view in sorted(analytics_views(conn), key=lambda v: v not in PER_PATIENT and v != "quarantine"):
        if whole or not _same_columns(conn, view):
            _replace(conn, view)
        elif view in PER_PATIENT:
            _rewrite(conn, view, "patient_key IN (SELECT patient_key FROM analysts_touched)", source=SCOPE)
        elif view == "quarantine":
            _rewrite(conn, view, '(topic, "partition", "offset") IN (SELECT * FROM analysts_positions)')
        else:  # an aggregate: a few rows, rewritten whole
            _rewrite(conn, view, "true", source=SUMS if sums else "lake")
    conn.execute(f"DELETE FROM {ALIAS}.analytics.snapshot_info")
    conn.execute(
        f"INSERT INTO {ALIAS}.analytics.snapshot_info SELECT now(), (SELECT max(committed_at) FROM lake.main.batches), "
        "?, (SELECT snapshot_time FROM ducklake_snapshots('lake') WHERE snapshot_id = ?)",
        [current, current],
    )


def _carried(conn) -> int | None:
    """The warehouse snapshot the analysts' lake holds, None before its first refresh."""
    conn.execute(
        f"CREATE TABLE IF NOT EXISTS {ALIAS}.analytics.snapshot_info "
        "(published_at TIMESTAMPTZ, data_as_of TIMESTAMPTZ, warehouse_snapshot BIGINT, "
        "warehouse_snapshot_time TIMESTAMPTZ)"
    )
    return conn.execute(f"SELECT max(warehouse_snapshot) FROM {ALIAS}.analytics.snapshot_info").fetchall()[0][0]


def _same_history(conn, since: int | None) -> bool:
    """True when the warehouse still has the snapshot the analysts' lake carries, taken at the same time."""
    if since is None:
        return False
    return bool(
        conn.execute(
            f"SELECT count(*) FROM ducklake_snapshots('lake') s JOIN {ALIAS}.analytics.snapshot_info i "
            "ON s.snapshot_id = i.warehouse_snapshot AND s.snapshot_time = i.warehouse_snapshot_time"
        ).fetchall()[0][0]
    )


def _changes(table: str, since: int, current: int) -> str:
    return f"ducklake_table_changes('lake', 'main', '{table}', {int(since) + 1}, {int(current)})"


def _changed(conn, table: str, since: int, current: int) -> bool:
    return bool(conn.execute(f"SELECT count(*) FROM {_changes(table, since, current)}").fetchall()[0][0])


def _touched(conn, since: int, current: int) -> None:
    """analysts_touched_ids (patient_id), analysts_touched (patient_key) and analysts_positions
    (quarantine rows) changed since `since`."""
    patients = " UNION ".join(f"SELECT patient_id FROM {_changes(t, since, current)}" for t in PATIENT_TABLES)
    escalated = (
        f"SELECT e.patient_id FROM {_changes('alert_escalations', since, current)} x "
        "JOIN lake.main.alert_episodes e USING (episode_id)"
    )
    conn.execute(f"CREATE OR REPLACE TEMP TABLE analysts_touched_ids AS {patients} UNION {escalated}")
    conn.execute(
        "CREATE OR REPLACE TEMP TABLE analysts_touched AS SELECT DISTINCT patient_key FROM lake.main.patient_keys "
        "WHERE patient_id IN (SELECT patient_id FROM analysts_touched_ids)"
    )
    conn.execute(
        'CREATE OR REPLACE TEMP TABLE analysts_positions AS SELECT DISTINCT topic, "partition", "offset" '
        f"FROM {_changes('quarantine', since, current)}"
    )


def _columns(conn, database: str, name: str) -> list[tuple[str, str]]:
    return conn.execute(
        "SELECT column_name, data_type FROM duckdb_columns() WHERE database_name = ? AND schema_name = 'analytics' "
        "AND table_name = ? ORDER BY column_index",
        [database, name],
    ).fetchall()


def _same_columns(conn, view: str) -> bool:
    return _columns(conn, ALIAS, view) == _columns(conn, "lake", view)


def _replace(conn, view: str) -> None:
    conn.execute(f"CREATE OR REPLACE TABLE {ALIAS}.analytics.{view} AS SELECT * FROM lake.analytics.{view}")


def _rewrite(conn, view: str, where: str, source: str = "lake") -> None:
    conn.execute(f"DELETE FROM {ALIAS}.analytics.{view} WHERE {where}")
    conn.execute(f"INSERT INTO {ALIAS}.analytics.{view} SELECT * FROM {source}.analytics.{view} WHERE {where}")


# In-memory databases holding the warehouse's views over other tables (see the module's docstring).
SCOPE, SUMS = "analysts_scope", "analysts_sums"
# The per-patient views read these without a patient_id of their own: narrowed through their parent.
SCOPED_BY = {
    "alert_escalations": "episode_id IN (SELECT episode_id FROM lake.main.alert_episodes "
    "WHERE patient_id IN (SELECT patient_id FROM temp.main.analysts_touched_ids))",
}
# Stand-ins in SUMS for the per-patient helper views the aggregates read: the analysts' tables,
# keyed by patient_key where the warehouse has patient_id (the aggregates only count patients).
SUMMED_FROM = {
    "patient_outcomes": f"SELECT patient_key AS patient_id, * FROM {ALIAS}.analytics.patients",
    "phq9_measurements": "SELECT patient_key AS patient_id, NULL::VARCHAR AS event_id, measured_at AS occurred_at, "
    f"source, total, item9 FROM {ALIAS}.analytics.phq9_scores",
}


def prepare_scopes(conn) -> None:
    """Create SCOPE and SUMS on this connection's database (once), and its temporary id table.

    Outside any transaction: an ATTACH and the views' DDL cannot share one with the lakes' writes."""
    conn.execute("CREATE TEMP TABLE IF NOT EXISTS analysts_touched_ids (patient_id VARCHAR)")
    attached = {r[0] for r in conn.execute("SELECT database_name FROM duckdb_databases()").fetchall()}
    for db in (SCOPE, SUMS):
        if db not in attached:
            try:
                _create_scope(conn, db)
            except duckdb.Error:
                conn.execute(f"DETACH DATABASE IF EXISTS {db}")  # half made: the next refresh makes it again
                raise
    # The stand-ins bind to the analysts' tables, which the first (whole) refresh creates.
    if not _summed(conn) and {"patients", "phq9_scores"} <= _analysts_tables(conn):
        for name, sql in SUMMED_FROM.items():
            conn.execute(f"CREATE OR REPLACE VIEW {SUMS}.main.{name} AS {sql}")


def _create_scope(conn, db: str) -> None:
    conn.execute(f"ATTACH ':memory:' AS {db}")
    narrow = "patient_id IN (SELECT patient_id FROM temp.main.analysts_touched_ids)"
    tables = conn.execute(
        "SELECT t.table_name, list_contains(list(c.column_name), 'patient_id') FROM duckdb_tables() t "
        "JOIN duckdb_columns() c USING (database_name, schema_name, table_name) "
        "WHERE t.database_name = 'lake' AND t.schema_name = 'main' GROUP BY ALL"
    ).fetchall()
    for table, keyed in tables:
        where = (narrow if keyed else SCOPED_BY.get(table)) if db == SCOPE else None
        conn.execute(
            f"CREATE VIEW {db}.main.{table} AS SELECT * FROM lake.main.{table}" + (f" WHERE {where}" if where else "")
        )
    pepper = conn.execute(
        "SELECT macro_definition FROM duckdb_functions() WHERE database_name = 'lake' AND function_name = 'pseudo'"
    ).fetchall()[0][0]
    conn.execute(f"CREATE MACRO {db}.main.pseudo(x) AS {pepper}")
    conn.execute(f"CREATE SCHEMA {db}.analytics")
    conn.execute(f"USE {db}")
    try:
        conn.execute(resources.files("warehouse").joinpath("views.sql").read_text())
    finally:
        conn.execute("USE lake")


def _summed(conn) -> bool:
    """True when SUMS re-aggregates the analysts' own tables (its stand-ins are in place)."""
    return bool(
        conn.execute(
            "SELECT count(*) FROM duckdb_views() WHERE database_name = ? AND view_name = 'patient_outcomes' "
            "AND contains(sql, ?)",
            [SUMS, f"{ALIAS}.analytics.patients"],
        ).fetchall()[0][0]
    )


def _analysts_tables(conn) -> set[str]:
    return {
        r[0]
        for r in conn.execute(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = ? AND schema_name = 'analytics'", [ALIAS]
        ).fetchall()
    }


def compact_analysts(conn, lake: Lake, group: str | None = None) -> int:
    """Rewrite and merge the analysts' lake's files (warehouse.maintenance.compaction_steps); how many.

    Run by the refresh thread between refreshes. Not under run_step's umask: that is the whole
    process's, and the writer's thread creates its own lake's private files meanwhile; the new
    files are made group-readable afterwards, as a refresh's are."""
    done = 0
    try:
        with lake_turn(lake, mode=0o640):
            for _name, step in list(compaction_steps(conn, ALIAS)):
                done += retry_busy(lambda step=step: step(conn), 2)
        share_files(lake, group)
    except (duckdb.Error, OSError) as e:
        log.warning("compacting the analysts' lake failed: %s; its next round tries again", e)
    return done


class SnapshotPublisher:
    """Refresh the analysts' lake after a batch when due, at the start of a run and always at its end.

    A due refresh runs on its own thread and cursor (the writer's next batches land meanwhile; the
    refresh reads the warehouse at its snapshot and writes only the analysts' lake); a forced one
    runs in the caller, after any refresh under way and raises what fails. A background refresh
    that fails is logged as an error and retried when next due: the analysts' lake must never stop
    the clinical path (status shows its staleness). Staleness (how far the analysts' lake is
    behind the warehouse) stays within interval_s: a refresh starts interval_s minus its own
    cost (and a batch of margin) after the previous one started; when a refresh costs more than
    half the interval they run back to back.
    """

    MARGIN_S = 1.0  # one follow-mode batch (batch_max_ms 500) lands between two checks

    def __init__(self, lake: Lake, interval_s: float, group: str | None = None, compact_interval_s: float = 600.0):
        self.lake = lake
        self.group = group
        self.interval_s = interval_s
        self.last = float("-inf")  # when the last refresh started
        self.cost = 0.0
        # The refresh thread, the analysts' lake's only writer between daily rounds, compacts it.
        self.compact_interval_s = compact_interval_s
        self.compacted = time.monotonic()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def due(self, now: float) -> bool:
        return now - self.last >= max(self.interval_s - self.cost - self.MARGIN_S, 2 * self.cost)

    def maybe(self, conn, force: bool = False) -> bool:
        started = time.monotonic()
        if force:
            self.wait()
            self.cost = refresh_analytics(conn, self.lake, self.group)
            self.last = started
            return True
        self._reap()
        if self._thread is not None or not self.due(started):
            return False
        self.last = started
        self._thread = threading.Thread(target=self._run, args=(conn.cursor(),), name="analysts-refresh", daemon=True)
        self._thread.start()
        return True

    def _run(self, cursor) -> None:
        try:
            cursor.execute("USE lake")
            self.cost = refresh_analytics(cursor, self.lake, self.group, attach=False)
            if time.monotonic() - self.compacted >= self.compact_interval_s:
                self.compacted = time.monotonic()
                compact_analysts(cursor, self.lake, self.group)
        except BaseException as e:  # noqa: BLE001 - handed to the writer's thread by _reap
            self._error = e
        finally:
            cursor.close()

    @property
    def busy(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _reap(self) -> None:
        if self._thread is not None and not self._thread.is_alive():
            self._thread = None
        if self._error is not None:
            error, self._error = self._error, None
            log.error("%s; retried at the next refresh", error)

    def wait(self) -> None:
        """Let a refresh under way finish (before the connection closes)."""
        if self._thread is not None:
            self._thread.join()
        self._reap()


def open_analytics(lake: Lake) -> duckdb.DuckDBPyConnection:
    """A read-only connection to the analysts' lake, its `analytics` schema the default."""
    if not lake.exists():
        raise WarehouseError(
            f"no analysts' lake at {lake.catalog_file} yet; run `clinicflow ingest --drain` or "
            "`clinicflow load FILE` first"
        )
    conn = duckdb.connect()
    conn.execute("SET TimeZone = 'UTC'")
    try:
        attach_lake(conn, lake.catalog, lake.data_path, alias=ALIAS, read_only=True)
        conn.execute(f"USE {ALIAS}.analytics")
        published = conn.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE database_name = ? AND table_name = 'snapshot_info'", [ALIAS]
        ).fetchall()[0][0]
    except (WarehouseError, duckdb.Error) as e:
        conn.close()
        raise WarehouseError(f"cannot open the analysts' lake: {e}") from e
    if not published:  # created, its first refresh not committed yet
        conn.close()
        raise WarehouseError(
            f"the analysts' lake at {lake.catalog_file or 'its catalog'} is being created; retry shortly"
        )
    return conn
