"""The analysts' side of the warehouse: outcome parameters and the published snapshot.

DuckDB allows one writing process per file, and a reader that opens the
writer's file fails while ingest holds it. So the writer publishes a snapshot:
every `analytics` view materialised into a new file, then atomically renamed
over `var/analytics.duckdb`. A reader keeps the file it opened (the old inode)
until it reconnects, so it never sees a torn state, and never blocks the
writer. The snapshot holds only the analytics tables: the file analysts open
contains no patient_id at all.
"""

from __future__ import annotations

import grp
import os
import time
from pathlib import Path

import duckdb

from warehouse.exceptions import WarehouseError


def apply_params(conn: duckdb.DuckDBPyConnection, policy) -> None:
    """The clinical thresholds the views use, from the same policy the care rules use."""
    conn.execute(
        "UPDATE outcome_params SET min_baseline = ?, remission_below = ?, rems_monitoring_minutes = ?, "
        "rems_form_days = ?",
        [policy.outcome_min_baseline, policy.remission_below, policy.rems_monitoring_minutes, policy.rems_form_days],
    )


def analytics_views(conn: duckdb.DuckDBPyConnection) -> list[str]:
    return [
        r[0]
        for r in conn.execute(
            "SELECT view_name FROM duckdb_views() WHERE schema_name = 'analytics' AND NOT internal ORDER BY view_name"
        ).fetchall()
    ]


KEEP = 3


def _versions_dir(path: Path) -> Path:
    return path.with_name(f"{path.stem}.snapshots")


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


def publish_snapshot(conn: duckdb.DuckDBPyConnection, path: Path, group: str | None = None) -> float:
    """Materialise the analytics views into a new file and point `path` at it, atomically.

    `path` is a symlink to the newest version: every version has its own file
    name, so no process (DuckDB caches open databases by name) can confuse an
    old snapshot with a new one. Older versions are removed; a reader that
    still has one open keeps reading it.
    """
    t0 = time.monotonic()
    versions = _versions_dir(path)
    versions.mkdir(parents=True, exist_ok=True)
    shared_with_group(versions, 0o750, group)
    target = versions / f"{time.time_ns()}.duckdb"
    tmp = versions / f".{target.name}.tmp"
    try:
        conn.execute(f"ATTACH '{tmp}' AS snap")
        try:
            conn.execute("CREATE SCHEMA snap.analytics")
            for view in analytics_views(conn):
                conn.execute(f"CREATE TABLE snap.analytics.{view} AS SELECT * FROM analytics.{view}")
            conn.execute(
                "CREATE TABLE snap.analytics.snapshot_info AS SELECT now() AS published_at, "
                "(SELECT max(committed_at) FROM main.batches) AS data_as_of"
            )
        finally:
            conn.execute("DETACH snap")
        shared_with_group(tmp, 0o640, group)
        os.replace(tmp, target)
        link = path.with_name(f".{path.name}.{os.getpid()}.link")
        link.unlink(missing_ok=True)
        link.symlink_to(target.relative_to(path.parent))
        os.replace(link, path)
    except (duckdb.Error, OSError) as e:
        tmp.unlink(missing_ok=True)
        raise WarehouseError(
            f"publishing the analytics snapshot to {path} failed: {e}; the previous snapshot "
            "stays in place; check disk space and permissions"
        ) from e
    for old in sorted(versions.glob("*.duckdb"), key=lambda p: int(p.stem))[:-KEEP]:
        old.unlink(missing_ok=True)
    return time.monotonic() - t0


class SnapshotPublisher:
    """Publish after a batch when due, at the start of a run and always at its end.

    Staleness (how far the snapshot's data is behind the warehouse) stays within
    interval_s: a snapshot starts interval_s minus its own cost (and a batch of margin)
    after the previous one started. When a snapshot costs more than half the interval
    (a very large warehouse), they run back to back at half the writer's time at most,
    and staleness is twice their cost.
    """

    MARGIN_S = 1.0  # one follow-mode batch (batch_max_ms 500) lands between two checks

    def __init__(self, path: Path, interval_s: float, group: str | None = None):
        self.path = path
        self.group = group
        self.interval_s = interval_s
        self.last = float("-inf")  # when the last snapshot started
        self.cost = 0.0

    def due(self, now: float) -> bool:
        return now - self.last >= max(self.interval_s - self.cost - self.MARGIN_S, 2 * self.cost)

    def maybe(self, conn, force: bool = False) -> bool:
        started = time.monotonic()
        if not force and not self.due(started):
            return False
        self.cost = publish_snapshot(conn, self.path, self.group)
        self.last = started
        return True


def remove_leftovers(path: Path) -> int:
    """Files a snapshot killed mid-write left behind (`.*.tmp`, their `.wal`, stray links); how many.

    Only the single writer publishes snapshots, so when it starts nothing else is writing them.
    """
    versions = _versions_dir(path)
    leftovers = [*versions.glob(".*.tmp"), *versions.glob(".*.tmp.wal"), *path.parent.glob(f".{path.name}.*.link")]
    for p in leftovers:
        p.unlink(missing_ok=True)
    return len(leftovers)


def open_snapshot(path: Path) -> duckdb.DuckDBPyConnection:
    """A read-only connection to the analysts' snapshot."""
    if not path.exists():
        raise WarehouseError(
            f"no analytics snapshot at {path} yet; run `clinicflow ingest --drain` or `clinicflow load FILE` first"
        )
    for attempt in range(3):
        target = path.resolve()
        try:
            conn = duckdb.connect(str(target), read_only=True)
            break
        except duckdb.Error as e:
            # The version we resolved was retired between resolve() and connect(): take the newer one.
            if attempt == 2 or target.exists():
                raise WarehouseError(f"cannot open the analytics snapshot {path}: {e}") from e
    conn.execute("SET TimeZone = 'UTC'")
    conn.execute("SET autoinstall_known_extensions = false")  # nothing is fetched from the network
    conn.execute("USE analytics")
    return conn
