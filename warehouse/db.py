"""Open the DuckDB warehouse and bring its schema up to date."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator, Sequence
from importlib import resources
from pathlib import Path

import duckdb

from warehouse.exceptions import WarehouseError, WarehouseLockedError


@contextlib.contextmanager
def transaction(conn: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """BEGIN, then COMMIT if the body ends normally; ROLLBACK on any exception, which propagates.

    Callers translate duckdb.Error into their own error, saying what was rolled back.
    """
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


def records(conn: duckdb.DuckDBPyConnection, sql: str, params: Sequence = ()) -> list[dict]:
    """A query's rows as dicts keyed by column name."""
    cur = conn.execute(sql, list(params))
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, row)) for row in cur.fetchall()]


def migrations() -> list[tuple[int, str, str]]:
    """(number, name, sql) of every numbered migration, in order."""
    files = sorted(p for p in resources.files("warehouse.migrations").iterdir() if p.name.endswith(".sql"))
    return [(int(p.name.split("_", 1)[0]), p.name, p.read_text()) for p in files]


def connect(
    path: Path, read_only: bool = False, memory_limit_mb: int | None = None, checkpoint_mb: int | None = None
) -> duckdb.DuckDBPyConnection:
    """A connection with every migration applied (writers) or checked (readers).

    memory_limit_mb bounds DuckDB's buffer pool, which otherwise grows with the
    warehouse (up to 80% of the machine) and makes a long ingest's memory grow
    with the number of events.
    """
    try:
        if not read_only:
            private_folder(path.parent)
        conn = duckdb.connect(str(path), read_only=read_only)
    except (duckdb.Error, OSError) as e:
        raise _open_error(path, e) from e
    conn.execute("SET TimeZone = 'UTC'")
    # Nothing phones home: an extension DuckDB does not ship built in is never fetched from the network.
    conn.execute("SET autoinstall_known_extensions = false")
    if memory_limit_mb:
        conn.execute(f"SET memory_limit = '{int(memory_limit_mb)}MB'")
    if checkpoint_mb:
        conn.execute(f"SET checkpoint_threshold = '{int(checkpoint_mb)}MB'")
    if not read_only:
        path.chmod(0o600)
        migrate(conn)
        apply_views(conn)
        _ensure_pepper(conn)
    return conn


def apply_views(conn: duckdb.DuckDBPyConnection) -> None:
    """(Re)create every view from warehouse/views.sql: migrations change tables only."""
    sql = resources.files("warehouse").joinpath("views.sql").read_text()
    try:
        with transaction(conn):
            conn.execute(sql)
    except duckdb.Error as e:
        raise WarehouseError(f"applying warehouse/views.sql failed: {e}; the views are unchanged") from e


def _open_error(path: Path, e: Exception) -> WarehouseError:
    """Why the warehouse cannot be opened, and what to do about it."""
    text = " ".join(str(e).split())
    if isinstance(e, duckdb.ConnectionException) or "lock" in text.lower():
        return WarehouseLockedError(
            f"the warehouse {path} is open for writing by another process; DuckDB "
            "allows one writer: wait for it, or read through a snapshot"
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
    return "check the path, the free space and the permissions"


def private_folder(folder: Path) -> None:
    """The writer's folder: only its owner reads it; others may pass through to a shared file in it.

    The warehouse holds patient_id and the pepper: its file and write-ahead log (created later by
    DuckDB, hence the umask) are the owner's alone. 0710 lets the analysts' group reach their
    snapshot by name without listing or reading anything else here.
    """
    os.umask(0o077)
    folder.mkdir(parents=True, exist_ok=True)
    st = folder.stat()
    if st.st_uid == os.getuid():
        # Others' pass-through (execute only) is kept when something put it there: the local
        # PostgreSQL server runs as its own user and reaches its folder below this one.
        folder.chmod(0o710 | (st.st_mode & 0o001))


def _ensure_pepper(conn: duckdb.DuckDBPyConnection) -> None:
    if not conn.execute("SELECT count(*) FROM pepper").fetchall()[0][0]:
        conn.execute("INSERT INTO pepper VALUES (?)", [secrets.token_hex(32)])


def migrate(conn: duckdb.DuckDBPyConnection, only: set[int] | None = None) -> list[str]:
    """Apply the migrations not yet applied (of `only`, when given), each in its own transaction;
    returns their names."""
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (number INTEGER PRIMARY KEY, name VARCHAR NOT NULL, "
        "applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
    )
    done = {n for (n,) in conn.execute("SELECT number FROM schema_migrations").fetchall()}
    applied = []
    for number, name, sql in migrations():
        if number in done or (only is not None and number not in only):
            continue
        try:
            with transaction(conn):
                conn.execute(sql)
                conn.execute("INSERT INTO schema_migrations (number, name) VALUES (?, ?)", [number, name])
        except duckdb.Error as e:
            raise WarehouseError(f"migration {name} failed: {e}; the warehouse is unchanged by it") from e
        applied.append(name)
    return applied
