"""Carry a file warehouse into the lake: an older release's DuckDB file, or its EXPORT DATABASE folder.

Releases before the lake kept the warehouse in one DuckDB file. A file written by DuckDB 1.5.x
is read directly; one written by DuckDB 2.x cannot be opened by the 1.5.5 this release pins,
so the older release exports it (Parquet per table) first. Either way the rows go through a
scratch file that replays the file warehouse's own migrations (warehouse/legacy_migrations:
those it lacked, with their data fix-ups), then into a new lake, table by table, by column
name. The pepper comes along, so analysts' pseudonyms stay what they were.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import duckdb

from warehouse import care_history
from warehouse.db import LEGACY_MIGRATIONS, Lake, connect, migrate
from warehouse.exceptions import WarehouseError

EXPORT_COMMAND = (
    "with the previous release's Python: python -c \"import duckdb; duckdb.connect('var/clinic.duckdb', "
    'read_only=True).execute(\\"EXPORT DATABASE \'var/export\' (FORMAT parquet)\\")"'
)


def _applied(export: Path) -> set[int]:
    path = export / "schema_migrations.parquet"
    if not path.is_file():
        raise WarehouseError(
            f"{export} is neither a DuckDB warehouse file nor an export of one (no schema_migrations); {EXPORT_COMMAND}"
        )
    rows = duckdb.execute(f"SELECT number FROM read_parquet('{path}')").fetchall()
    return {n for (n,) in rows}


def import_warehouse(source: Path, target: Path, lake: Lake) -> dict[str, int]:
    """Build a new lake from `source` (a file warehouse or its export); rows per table."""
    if lake.exists() and lake.catalog_file is not None:
        raise WarehouseError(f"{lake.catalog_file} exists; import into a new lake (CLINICFLOW_WAREHOUSE_PATH)")
    with tempfile.TemporaryDirectory(prefix="clinicflow-import-") as scratch:
        staged = Path(scratch) / "old.duckdb"
        _stage(source, staged)
        conn = connect(target, lake=lake)
        try:
            return _copy_into_lake(conn, staged)
        except duckdb.Error as e:
            raise WarehouseError(
                f"importing {source} failed: {e}; remove {lake.data_path} and its catalog, then retry"
            ) from e
        finally:
            conn.close()


def _stage(source: Path, staged: Path) -> None:
    """The old warehouse as a DuckDB 1.5 file at `staged`, every legacy migration applied."""
    if source.is_file():
        shutil.copyfile(source, staged)
        conn = _open_old(staged)
    else:
        applied = _applied(source)
        conn = _open_old(staged)
        migrate(conn, only=applied, package=LEGACY_MIGRATIONS)
        _copy_export(conn, source)
    try:
        migrate(conn, package=LEGACY_MIGRATIONS)
    finally:
        conn.close()


def _open_old(path: Path) -> duckdb.DuckDBPyConnection:
    try:
        conn = duckdb.connect(str(path))
    except duckdb.Error as e:
        hint = EXPORT_COMMAND if "newer version" in str(e) else "is it a clinicflow warehouse file?"
        raise WarehouseError(f"cannot read the old warehouse: {' '.join(str(e).split())}; {hint}") from e
    conn.execute("SET TimeZone = 'UTC'")
    return conn


def _copy_export(conn, export: Path) -> None:
    tables = _tables(conn, conn.execute("SELECT current_database()").fetchall()[0][0])
    conn.execute("BEGIN")
    for file in sorted(export.glob("*.parquet")):
        table = file.stem
        if table == "schema_migrations":
            continue
        if table not in tables:
            raise WarehouseError(f"{file.name} has no table in this release's schema; is {export} a clinicflow export?")
        conn.execute(f"DELETE FROM {table}")  # rows a migration seeded (outcome_params) give way to the old ones
        conn.execute(f"INSERT INTO {table} BY NAME SELECT * FROM read_parquet('{file}')")
    conn.execute("COMMIT")


def _tables(conn, database: str) -> set[str]:
    rows = conn.execute(
        "SELECT table_name FROM duckdb_tables() WHERE database_name = ? AND schema_name = 'main'", [database]
    ).fetchall()
    return {t for (t,) in rows}


def _copy_into_lake(conn, staged: Path) -> dict[str, int]:
    conn.execute(f"ATTACH '{staged}' AS old (READ_ONLY)")
    counts = {}
    try:
        conn.execute("BEGIN")
        for table in sorted(_tables(conn, "old") & _tables(conn, "lake") - {"schema_migrations"}):
            conn.execute(f"DELETE FROM lake.main.{table}")  # the seeded outcome_params, the new pepper
            conn.execute(f"INSERT INTO lake.main.{table} BY NAME SELECT * FROM old.main.{table}")
            counts[table] = conn.execute(f"SELECT count(*) FROM lake.main.{table}").fetchall()[0][0]
        care_history.backfill(conn)  # the file warehouse had no care_history: derived from what came
        counts["care_history"] = conn.execute("SELECT count(*) FROM lake.main.care_history").fetchall()[0][0]
        conn.execute("COMMIT")
    finally:
        conn.execute("DETACH old")
    return counts
