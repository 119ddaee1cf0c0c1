"""DuckLake: tables as Parquet files under a data path, with their catalog in SQLite or PostgreSQL.

The ducklake, sqlite_scanner and postgres_scanner extensions come from the pinned
`duckdb-extension-*` packages and are loaded from their installed files, with DuckDB's
own installing and auto-loading switched off: nothing is downloaded at run time.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import duckdb

from warehouse.exceptions import WarehouseError

CATALOG_EXTENSION = {"sqlite": "sqlite_scanner", "postgres": "postgres_scanner"}


def extension_file(name: str) -> Path:
    """The installed file of the `duckdb-extension-<name>` package for this DuckDB version."""
    spec = importlib.util.find_spec(f"duckdb_extension_{name}")
    if spec is None or spec.origin is None:
        raise WarehouseError(
            f"the DuckDB extension package duckdb-extension-{name.replace('_', '-')} is not installed; "
            "run `make setup` (it is pinned in pyproject.toml)"
        )
    path = Path(spec.origin).parent / "extensions" / f"v{duckdb.__version__}" / f"{name}.duckdb_extension"
    if not path.exists():
        raise WarehouseError(
            f"{path} is missing: the {name} extension package does not match DuckDB {duckdb.__version__}; "
            "reinstall with `make setup`, which pins both"
        )
    return path


def load_extensions(conn: duckdb.DuckDBPyConnection, *names: str) -> None:
    """Load extensions from their package files; never install or auto-load from the network."""
    conn.execute("SET autoinstall_known_extensions = false")
    conn.execute("SET autoload_known_extensions = false")
    for name in names:
        conn.execute(f"LOAD '{extension_file(name)}'")


def attach_lake(
    conn: duckdb.DuckDBPyConnection, catalog: str, data_path: Path, alias: str = "lake", read_only: bool = False
) -> None:
    """ATTACH a DuckLake. `catalog` is `sqlite:<file>` or `postgres:<libpq connection string>`."""
    kind = catalog.split(":", 1)[0]
    if kind not in CATALOG_EXTENSION:
        raise WarehouseError(f"lake catalog {kind!r} is not one of sqlite:<file> or postgres:<dsn>; fix the setting")
    load_extensions(conn, "ducklake", CATALOG_EXTENSION[kind])
    options = [f"DATA_PATH '{data_path.resolve()}/'"] + (["READ_ONLY"] if read_only else [])
    try:
        conn.execute(f"ATTACH 'ducklake:{catalog}' AS {alias} ({', '.join(options)})")
    except duckdb.Error as e:
        where = catalog.split(":", 1)[0]  # never the connection string: it may hold a password
        raise WarehouseError(f"attaching the lake ({where} catalog, data in {data_path}) failed: {e}") from e
