"""Open the DuckDB warehouse and bring its schema up to date."""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import os
import secrets
import shutil
import sqlite3
import tempfile
import time
import weakref
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import duckdb

from warehouse import care_history
from warehouse.exceptions import WarehouseError, WarehouseLockedError
from warehouse.lake import VERIFIED_ONCE, attach_lake

# Writers of an embedded (SQLite) lake take turns for their write transactions (connection -> lock
# file). SQLite commits one writer at a time and refuses a commit from a snapshot another writer
# has moved past: two workers landing side by side would each redo most of their batches.
_TURNS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _turn(conn: duckdb.DuckDBPyConnection):
    return _locked(_TURNS.get(conn))


def lake_turn(lake: Lake, mode: int = 0o600):
    """This process's turn to write an embedded lake (a no-op for a PostgreSQL catalog); mode: the
    lock file's (the analysts' lake is group-readable, every file in it too)."""
    return _locked(None if lake.catalog_file is None else lake.catalog_file.with_name(".write.lock"), mode)


@contextlib.contextmanager
def _locked(path: Path | None, mode: int = 0o600) -> Iterator[None]:
    if path is None:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)  # before the lake's first attach creates it
    with open(path, "a") as lock:
        if os.fstat(lock.fileno()).st_uid == os.getuid():
            os.fchmod(lock.fileno(), mode)
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@contextlib.contextmanager
def transaction(conn: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """BEGIN, then COMMIT if the body ends normally; ROLLBACK on any exception, which propagates.

    Callers translate duckdb.Error into their own error, saying what was rolled back.
    """
    with _turn(conn):
        yield from _transaction(conn)


def _transaction(conn: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    conn.execute("BEGIN")
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        # A COMMIT that failed (a full disk, say) has already ended the transaction: the ROLLBACK's
        # own "no transaction is active" must not hide the cause.
        with contextlib.suppress(duckdb.TransactionException):
            conn.execute("ROLLBACK")
        raise


BUSY = ("database is locked", "database is busy", "transaction conflict")


def retry_busy(attempt, tries: int = 8, first_wait_s: float = 0.05):
    """attempt() again while the lake's catalog is busy: another process committing to the same
    SQLite catalog ("database is locked"), or a DuckLake commit that raced another writer's. Each
    attempt is a whole transaction, rolled back before the next; other errors pass at once."""
    for n in range(tries):
        try:
            return attempt()
        except duckdb.Error as e:
            if n == tries - 1 or not any(b in str(e).lower() for b in BUSY):
                raise
            time.sleep(min(first_wait_s * 2**n, 2.0))
    raise AssertionError("unreachable")


def records(conn: duckdb.DuckDBPyConnection, sql: str, params: Sequence = ()) -> list[dict]:
    """A query's rows as dicts keyed by column name."""
    cur = conn.execute(sql, list(params))
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, row)) for row in cur.fetchall()]


LAKE_MIGRATIONS = "warehouse.migrations"
# The file warehouse's migrations (DuckDB 2.x releases): `clinicflow import` replays them on an export.
LEGACY_MIGRATIONS = "warehouse.legacy_migrations"
# Lake migrations whose rows are derived in Python: run in the migration's own transaction.
_DERIVE = {2: care_history.backfill}


def migrations(package: str = LAKE_MIGRATIONS) -> list[tuple[int, str, str]]:
    """(number, name, sql) of every numbered migration, in order."""
    files = sorted(p for p in resources.files(package).iterdir() if p.name.endswith(".sql"))
    return [(int(p.name.split("_", 1)[0]), p.name, p.read_text()) for p in files]


@dataclass(frozen=True)
class Lake:
    """Where the warehouse's tables live: a DuckLake catalog and the folder of its Parquet files."""

    catalog: str  # sqlite:<file> or postgres:<libpq connection string>
    data_path: Path

    @classmethod
    def beside(cls, path: Path) -> Lake:
        """The embedded default: `<stem>.lake/catalog.sqlite` and `<stem>.lake/data/` next to `path`."""
        home = path.with_name(path.stem + ".lake")
        return cls(f"sqlite:{home / 'catalog.sqlite'}", home / "data")

    @classmethod
    def of(cls, settings) -> Lake:
        """The lake the settings name (warehouse_catalog, warehouse_data_path, else beside warehouse_path)."""
        return cls(*settings.lake_location())

    @classmethod
    def analysts(cls, settings) -> Lake:
        """The analysts' lake the settings name (analytics_catalog, analytics_data_path, else the default)."""
        return cls(*settings.analytics_location())

    @property
    def kind(self) -> str:
        return self.catalog.split(":", 1)[0]

    @property
    def catalog_file(self) -> Path | None:
        """The SQLite catalog's file; None for a PostgreSQL catalog."""
        return Path(self.catalog.split(":", 1)[1]) if self.kind == "sqlite" else None

    def exists(self) -> bool:
        """False only when an embedded catalog has not been created yet."""
        return self.catalog_file is None or self.catalog_file.exists()


def connect(
    path: Path,
    read_only: bool = False,
    memory_limit_mb: int | None = None,
    lake: Lake | None = None,
    threads: int = 1,
) -> duckdb.DuckDBPyConnection:
    """A connection whose default database is the lake, every migration applied (writers) or checked.

    Nothing local holds rows: the connection is in memory, and a writer spills to a folder of its
    own process under `<path stem>.writers/`, which also tells `restore` that it is running.
    Several writers may run at once, on one host or many: the lake's transactions, the workers'
    partition leases and the `warehouse-writer` slot of the flows that need one keep them apart
    (docs/DECISIONS.md, "Several workers"). memory_limit_mb bounds DuckDB's buffer pool, which
    otherwise grows with the warehouse (up to 80% of the machine). threads: DuckDB's, for the
    pipeline's many small statements (CLINICFLOW_WAREHOUSE_THREADS).
    """
    lake = lake or Lake.beside(path)
    if read_only and not lake.exists():
        raise WarehouseError(f"the warehouse {lake.catalog_file} does not exist yet; run an ingest first")
    try:
        if read_only:
            conn = duckdb.connect(":memory:", config={**VERIFIED_ONCE, "threads": threads})
        else:
            private_folder(path.parent)
            _refuse_file_warehouse(path)
            conn = duckdb.connect(
                ":memory:", config={**VERIFIED_ONCE, "threads": threads, "temp_directory": str(_spill_folder(path))}
            )
    except (duckdb.Error, OSError) as e:
        raise _open_error(path, e) from e
    conn.execute("SET TimeZone = 'UTC'")
    if memory_limit_mb:
        conn.execute(f"SET memory_limit = '{int(memory_limit_mb)}MB'")
    if read_only:
        _attach(conn, lake, read_only)
        return conn
    with setting_up(lake):
        _attach(conn, lake, read_only)
        if lake.catalog_file is not None:
            _TURNS[conn] = lake.catalog_file.with_name(".write.lock")  # as lake_turn(lake)
        migrate(conn)
        apply_views(conn)
        _ensure_pepper(conn)
    return conn


def setting_up(lake: Lake, mode: int = 0o600):
    """One process at a time creates, migrates and peppers an embedded lake: workers started
    together would otherwise copy the template over each other and draw two peppers. (A new
    PostgreSQL catalog has no shared file to lock: its migrations retry, and its pepper
    converges, below.) mode: the lock file's, as for lake_turn."""
    return _locked(None if lake.catalog_file is None else lake.catalog_file.with_name(".setup.lock"), mode)


def _writers_folder(path: Path) -> Path:
    return path.parent / f"{path.stem}.writers"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _spill_folder(path: Path) -> Path:
    """This process's folder for DuckDB's spilled temp tables; folders of exited processes go."""
    root = _writers_folder(path)
    root.mkdir(mode=0o700, exist_ok=True)
    for other in root.iterdir():
        if other.name.isdigit() and int(other.name) != os.getpid() and not _alive(int(other.name)):
            shutil.rmtree(other, ignore_errors=True)
    mine = root / str(os.getpid())
    mine.mkdir(mode=0o700, exist_ok=True)
    return mine


def other_writers(path: Path) -> list[int]:
    """Process ids of the writers running beside this process on this host (restore refuses them)."""
    root = _writers_folder(path)
    if not root.is_dir():
        return []
    pids = [int(p.name) for p in root.iterdir() if p.name.isdigit()]
    return sorted(p for p in pids if p != os.getpid() and _alive(p))


def _refuse_file_warehouse(path: Path) -> None:
    """The release before the lake kept every table in this file: starting on an empty lake beside it
    would look like a clinic without history. Say how to carry it over instead."""
    if not path.is_file() or path.stat().st_size == 0:
        return
    with contextlib.closing(duckdb.connect(str(path), read_only=True)) as old:
        own = old.execute("SELECT count(*) FROM duckdb_tables() WHERE database_name = current_database()")
        if own.fetchall()[0][0]:
            raise WarehouseError(
                f"{path} is a file warehouse of an earlier release (its tables are in the file); move it aside "
                f"(mv {path} {path}.old) and carry it into the lake with `clinicflow import {path}.old`"
            )


def open_warehouse(settings, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """`connect` to the lake the settings name, with their memory bound."""
    return connect(
        settings.warehouse_path,
        read_only,
        settings.warehouse_memory_limit_mb,
        lake=Lake.of(settings),
        threads=settings.warehouse_threads,
    )


def _attach(conn: duckdb.DuckDBPyConnection, lake: Lake, read_only: bool) -> None:
    if not read_only:
        if lake.catalog_file is not None:
            private_folder(lake.catalog_file.parent)
        lake.data_path.mkdir(parents=True, exist_ok=True)
        lake.data_path.chmod(0o700)
        if lake.catalog_file is not None and not lake.catalog_file.exists():
            _from_template(lake)
    # Connections to one file in one process share its database, and so its attached lake.
    if not conn.execute("SELECT count(*) FROM duckdb_databases() WHERE database_name = 'lake'").fetchall()[0][0]:
        try:
            attach_lake(conn, lake.catalog, lake.data_path, alias="lake", read_only=read_only)
        except WarehouseError:
            conn.close()
            raise
    conn.execute("USE lake")
    if not read_only and lake.catalog_file is not None:
        lake.catalog_file.chmod(0o600)


def apply_views(conn: duckdb.DuckDBPyConnection) -> None:
    """(Re)create every view from warehouse/views.sql when its text changed: migrations change tables only."""
    sql = resources.files("warehouse").joinpath("views.sql").read_text()
    digest = hashlib.sha256(sql.encode()).hexdigest()
    current = conn.execute("SELECT arg_max(sha256, applied_at) FROM view_versions").fetchall()[0][0]
    if current == digest:
        return
    try:
        with transaction(conn):
            conn.execute(sql)
            conn.execute("INSERT INTO view_versions VALUES (?, now())", [digest])
    except duckdb.Error as e:
        raise WarehouseError(f"applying warehouse/views.sql failed: {e}; the views are unchanged") from e


def _open_error(path: Path, e: Exception) -> WarehouseError:
    """Why the warehouse cannot be opened, and what to do about it."""
    text = " ".join(str(e).split())
    if isinstance(e, duckdb.ConnectionException) or "lock" in text.lower():
        return WarehouseLockedError(
            f"the file {path} is held by another process (a writer of the release before the lake?); "
            "stop it, then carry the file into the lake with `clinicflow import`"
        )
    if "newer version of DuckDB" in text:
        return WarehouseError(
            f"the warehouse {path} was written by a newer DuckDB (2.x) than this release's 1.5.5, which the "
            "lake's extensions need; keep it, export it with the previous release and `clinicflow import` the "
            'export into a new path (README, "Upgrading from DuckDB 2.x")'
        )
    if "not a valid DuckDB database" in text:
        return WarehouseError(
            f"the warehouse {path} is damaged or not a DuckDB file ({text}); restore it from a backup, or move "
            "it aside and replay the topics into a new one"
        )
    return WarehouseError(f"cannot open the warehouse {path}: {text}; {fix_for(text)}")


def fix_for(text: str) -> str:
    """The usual cure for a failure of the disk under the warehouse."""
    lowered = text.lower()
    if "no space left" in lowered or "disk full" in lowered:
        return "free space on the disk that holds CLINICFLOW_WAREHOUSE_PATH; nothing of the failed batch was kept"
    if "read-only" in lowered or "permission denied" in lowered:
        return "the warehouse's folder must be writable by this user: check its permissions and mount"
    if "out of memory" in lowered:
        return (
            "DuckDB's buffer pool is full: raise CLINICFLOW_WAREHOUSE_MEMORY_LIMIT_MB (or lower "
            "CLINICFLOW_BATCH_MAX_EVENTS) and start again; nothing of the failed batch was kept"
        )
    general = "check the path, the free space and the permissions"
    if "transaction is aborted" in lowered:
        # A full disk or a full buffer pool fails a statement first; the abort is what follows.
        return (
            f"an earlier statement of the same transaction failed (the log line before this one names it): {general}, "
            "or raise CLINICFLOW_WAREHOUSE_MEMORY_LIMIT_MB if it ran out of memory"
        )
    return general


def private_folder(folder: Path) -> None:
    """The writer's folder: only its owner reads it; others may pass through to a shared file in it.

    The lake holds patient_id and the pepper: its catalog, its data files and their journals
    (created later, hence the umask) are the owner's alone. 0710 lets the analysts' group reach
    their lake by name without listing or reading anything else here.
    """
    os.umask(0o077)
    folder.mkdir(parents=True, exist_ok=True)
    st = folder.stat()
    if st.st_uid == os.getuid():
        # Others' pass-through (execute only) is kept when something put it there: the local
        # PostgreSQL server runs as its own user and reaches its folder below this one.
        folder.chmod(0o710 | (st.st_mode & 0o001))


def _template() -> Path:
    """This release's empty, migrated SQLite catalog (no pepper, no rows), built once per machine.

    Kept in the temporary folder under a name that changes with the migrations, the views and
    DuckDB's version; built beside and renamed into place, so concurrent processes never see half.
    """
    parts = [duckdb.__version__, *(sql for _, _, sql in migrations())]
    parts.append(resources.files("warehouse").joinpath("views.sql").read_text())
    digest = hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]
    ready = Path(tempfile.gettempdir()) / f"clinicflow-lake-template-{os.getuid()}-{digest}.sqlite"
    # Only a file this user made, nobody else can write: never a catalog someone planted there.
    if ready.exists() and ready.stat().st_uid == os.getuid() and not ready.stat().st_mode & 0o022:
        return ready
    home = Path(tempfile.mkdtemp(prefix="clinicflow-lake-template-"))
    conn = duckdb.connect()
    try:
        attach_lake(conn, f"sqlite:{home / 'catalog.sqlite'}", home / "data", alias="lake")
        conn.execute("USE lake")
        migrate(conn)
        apply_views(conn)
    finally:
        conn.close()
    os.replace(home / "catalog.sqlite", ready)
    shutil.rmtree(home, ignore_errors=True)
    return ready


def _from_template(lake: Lake) -> None:
    """A new embedded lake starts as a copy of the empty, migrated catalog, its data path set.

    Creating the schema costs a DuckLake snapshot per table (most of a second); a copy, a few
    milliseconds. The pepper is not in the template: every lake draws its own.
    """
    partial = lake.catalog_file.with_name(f".{lake.catalog_file.name}.{os.getpid()}.new")
    shutil.copyfile(_template(), partial)
    point_at(partial, lake.data_path)
    # Write-ahead logging: readers (status, the analysts' refresh) never block the writer's commit.
    with contextlib.closing(sqlite3.connect(partial)) as db:
        db.execute("PRAGMA journal_mode=WAL")
    try:
        os.link(partial, lake.catalog_file)  # never over a catalog another process created meanwhile
    except FileExistsError:
        pass
    finally:
        partial.unlink()


def point_at(catalog: Path, data_path: Path) -> None:
    """Set an SQLite catalog's data path (a copied template, a restored backup on another disk)."""
    with contextlib.closing(sqlite3.connect(catalog)) as db, db:
        db.execute("UPDATE ducklake_metadata SET value = ? WHERE key = 'data_path'", [f"{data_path.resolve()}/"])


def _ensure_pepper(conn: duckdb.DuckDBPyConnection) -> None:
    """One pepper per lake: drawn by its first writer; if two first writers raced (a new PostgreSQL
    catalog opened by two hosts at once), the smaller one is kept before anything uses it."""
    n = conn.execute("SELECT count(*) FROM pepper").fetchall()[0][0]
    if not n:
        conn.execute("INSERT INTO pepper VALUES (?)", [secrets.token_hex(32)])
    if n > 1:
        retry_busy(lambda: conn.execute("DELETE FROM pepper WHERE value > (SELECT min(value) FROM pepper)"))


def migrate(conn: duckdb.DuckDBPyConnection, only: set[int] | None = None, package: str = LAKE_MIGRATIONS) -> list[str]:
    """Apply the migrations not yet applied (of `only`, when given), each in its own transaction;
    returns their names."""
    retry_busy(
        lambda: conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (number INTEGER NOT NULL, name VARCHAR NOT NULL, "
            "applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
        )
    )
    done = {n for (n,) in conn.execute("SELECT number FROM schema_migrations").fetchall()}
    applied = []
    for number, name, sql in migrations(package):
        if number in done or (only is not None and number not in only):
            continue
        try:
            # Two writers migrating one catalog at once conflict: the later one retries and skips.
            if retry_busy(functools.partial(_apply, conn, number, name, sql, package)):
                applied.append(name)
        except duckdb.Error as e:
            raise WarehouseError(f"migration {name} failed: {e}; the warehouse is unchanged by it") from e
    return applied


def _apply(conn: duckdb.DuckDBPyConnection, number: int, name: str, sql: str, package: str) -> bool:
    """Apply one migration unless another writer has meanwhile; whether this call did."""
    with transaction(conn):
        if conn.execute("SELECT count(*) FROM schema_migrations WHERE number = ?", [number]).fetchall()[0][0]:
            return False
        conn.execute(sql)
        if package == LAKE_MIGRATIONS and number in _DERIVE:
            _DERIVE[number](conn)
        conn.execute("INSERT INTO schema_migrations (number, name) VALUES (?, ?)", [number, name])
    return True
