"""Carry a warehouse across DuckDB versions: import the EXPORT DATABASE folder of an older release.

A file written by DuckDB 2.x cannot be opened by the 1.5.5 this release pins for the lake. The
older release exports it (Parquet per table, plus the schema); this rebuilds a warehouse from
the export: the migrations the old one had, its rows table by table (by column name), then the
migrations it lacked, with their data fix-ups. Views are not imported: they are this release's.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from warehouse.db import connect, migrate
from warehouse.exceptions import WarehouseError

EXPORT_COMMAND = (
    "with the previous release's Python: python -c \"import duckdb; duckdb.connect('var/clinic.duckdb', "
    'read_only=True).execute(\\"EXPORT DATABASE \'var/export\' (FORMAT parquet)\\")"'
)


def _applied(export: Path) -> set[int]:
    path = export / "schema_migrations.parquet"
    if not path.is_file():
        raise WarehouseError(
            f"{export} is not an export of a clinicflow warehouse (no schema_migrations); {EXPORT_COMMAND}"
        )
    rows = duckdb.execute(f"SELECT number FROM read_parquet('{path}')").fetchall()
    return {n for (n,) in rows}


def import_export(export: Path, target: Path) -> dict[str, int]:
    """Build the warehouse at `target` (which must not exist) from `export`; rows per table."""
    if target.exists():
        raise WarehouseError(f"{target} exists; import into a new path (CLINICFLOW_WAREHOUSE_PATH or --warehouse)")
    applied = _applied(export)
    target.parent.mkdir(parents=True, exist_ok=True)
    conn = duckdb.connect(str(target))
    try:
        conn.execute("SET TimeZone = 'UTC'")
        migrate(conn, only=applied)
        counts = _copy_tables(conn, export)
    except duckdb.Error as e:
        conn.close()
        target.unlink(missing_ok=True)
        raise WarehouseError(f"importing {export} failed: {e}; nothing was kept at {target}") from e
    conn.close()
    connect(target).close()  # the migrations the old warehouse lacked, this release's views
    return counts


def _copy_tables(conn, export: Path) -> dict[str, int]:
    tables = {
        t for (t,) in conn.execute("SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main'").fetchall()
    }
    counts = {}
    conn.execute("BEGIN")
    for file in sorted(export.glob("*.parquet")):
        table = file.stem
        if table == "schema_migrations":
            continue
        if table not in tables:
            raise WarehouseError(f"{file.name} has no table in this release's schema; is {export} a clinicflow export?")
        conn.execute(f"DELETE FROM {table}")  # rows a migration seeded (outcome_params) give way to the old ones
        conn.execute(f"INSERT INTO {table} BY NAME SELECT * FROM read_parquet('{file}')")
        counts[table] = conn.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]
    conn.execute("COMMIT")
    return counts
