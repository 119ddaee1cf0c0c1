"""`clinicflow sql`: one read-only query over the analysts' snapshot, in a sandbox.

The snapshot file holds only the pseudonymous analytics tables, but DuckDB
itself would let a query reach past it: ATTACH the writer's warehouse, read
`.env` with read_csv, COPY to any path, SET, INSTALL, LOAD. So the connection
runs with external access off and its configuration locked before the query
is parsed, and only one SELECT (or EXPLAIN) statement is accepted.
"""

from __future__ import annotations

import json

import duckdb
from rich.console import Console
from rich.table import Table

from core.errors import ClinicflowError
from core.settings import Settings
from warehouse.analytics import open_analytics
from warehouse.db import Lake

ALLOWED = {duckdb.StatementType.SELECT: "SELECT", duckdb.StatementType.EXPLAIN: "EXPLAIN"}
SANDBOX = (
    "SET autoinstall_known_extensions = false",
    "SET autoload_known_extensions = false",
    "SET enable_external_access = false",
    "SET lock_configuration = true",
)


class QueryRefusedError(ClinicflowError):
    """The query is not one read-only statement over the analytics tables."""


def sandboxed(conn: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """No files, no extensions, no settings: the connection sees the snapshot's tables and nothing else."""
    for stmt in SANDBOX:
        conn.execute(stmt)
    return conn


def one_statement(conn: duckdb.DuckDBPyConnection, query: str):
    """The query's single statement, if it is a SELECT or EXPLAIN; else a clear refusal."""
    try:
        statements = conn.extract_statements(query)
    except duckdb.Error as e:
        raise QueryRefusedError(f"the query does not parse: {e}") from e
    if len(statements) != 1:
        raise QueryRefusedError(
            f"the query holds {len(statements)} statements; `clinicflow sql` runs exactly one (send each on its own)"
        )
    stmt = statements[0]
    if stmt.type not in ALLOWED:
        raise QueryRefusedError(
            f"{stmt.type.name} statements are not allowed: `clinicflow sql` is read-only "
            "(SELECT, SHOW, DESCRIBE, SUMMARIZE or EXPLAIN over the analytics tables)"
        )
    return stmt


def run_query(settings: Settings, query: str, as_json: bool, limit: int, console: Console) -> None:
    conn = sandboxed(open_analytics(Lake.analysts(settings)))
    try:
        stmt = one_statement(conn, query)
        cur = conn.execute(stmt)
        cols = [d[0] for d in cur.description or []]
        rows = cur.fetchmany(limit)
    except duckdb.PermissionException as e:
        raise QueryRefusedError(
            f"the query was refused: {e}; `clinicflow sql` reads the analytics tables only "
            "(no files, ATTACH, settings or extensions)"
        ) from e
    except duckdb.Error as e:
        raise ClinicflowError(
            f"the query failed: {e}; the snapshot holds the analytics.* views as tables (try `SHOW TABLES`)"
        ) from e
    finally:
        conn.close()
    if as_json:
        for r in rows:
            print(json.dumps(dict(zip(cols, r)), default=str))
        return
    table = Table(*cols)
    for r in rows:
        table.add_row(*("" if v is None else str(v) for v in r))
    console.print(table)
