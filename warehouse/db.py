"""Open the DuckDB warehouse and bring its schema up to date."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
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
        conn.execute("ROLLBACK")
        raise


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
    except duckdb.Error as e:
        if "lock" in str(e).lower() or isinstance(e, duckdb.ConnectionException):
            raise WarehouseLockedError(
                f"the warehouse {path} is open for writing by another process; DuckDB "
                "allows one writer: wait for it, or read through a snapshot"
            ) from e
        raise WarehouseError(f"cannot open the warehouse {path}: {e}; check the path and permissions") from e
    conn.execute("SET TimeZone = 'UTC'")
    if memory_limit_mb:
        conn.execute(f"SET memory_limit = '{int(memory_limit_mb)}MB'")
    if checkpoint_mb:
        conn.execute(f"SET checkpoint_threshold = '{int(checkpoint_mb)}MB'")
    if not read_only:
        path.chmod(0o600)
        migrate(conn)
        _ensure_pepper(conn)
    return conn


def private_folder(folder: Path) -> None:
    """The writer's folder: only its owner reads it; others may pass through to a shared file in it.

    The warehouse holds patient_id and the pepper: its file and write-ahead log (created later by
    DuckDB, hence the umask) are the owner's alone. 0710 lets the analysts' group reach their
    snapshot by name without listing or reading anything else here.
    """
    os.umask(0o077)
    folder.mkdir(parents=True, exist_ok=True)
    if folder.stat().st_uid == os.getuid():
        folder.chmod(0o710)


def _ensure_pepper(conn: duckdb.DuckDBPyConnection) -> None:
    if not conn.execute("SELECT count(*) FROM pepper").fetchall()[0][0]:
        conn.execute("INSERT INTO pepper VALUES (?)", [secrets.token_hex(32)])


def migrate(conn: duckdb.DuckDBPyConnection) -> list[str]:
    """Apply the migrations not yet applied, each in its own transaction; returns their names."""
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (number INTEGER PRIMARY KEY, name VARCHAR NOT NULL, "
        "applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
    )
    done = {n for (n,) in conn.execute("SELECT number FROM schema_migrations").fetchall()}
    applied = []
    for number, name, sql in migrations():
        if number in done:
            continue
        try:
            with transaction(conn):
                conn.execute(sql)
                conn.execute("INSERT INTO schema_migrations (number, name) VALUES (?, ?)", [number, name])
        except duckdb.Error as e:
            raise WarehouseError(f"migration {name} failed: {e}; the warehouse is unchanged by it") from e
        applied.append(name)
    return applied
