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


# Config for the pipeline's own connections (never an analyst's): DuckDB checks an extension's
# signature at every LOAD, about 85 ms for each of these 35 MB files, on every connection. With
# this, load_extensions has DuckDB check each file once per process, in a connection of its own,
# and loads that same, unchanged file without the check afterwards.
VERIFIED_ONCE = {"allow_unsigned_extensions": "true"}
_verified: dict[Path, tuple[int, int, int, int]] = {}


def _identity(path: Path) -> tuple[int, int, int, int]:
    st = path.stat()
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns


def _verify(path: Path) -> None:
    """DuckDB's signature check of an extension file, once per process while the file is unchanged."""
    before = _identity(path)
    if _verified.get(path) == before:
        return
    with duckdb.connect() as checker:  # default config: unsigned files are refused
        checker.execute(f"LOAD '{path}'")
    if _identity(path) != before:
        raise WarehouseError(f"{path} changed while it was being checked; reinstall it with `make setup`")
    _verified[path] = before


def load_extensions(conn: duckdb.DuckDBPyConnection, *names: str) -> None:
    """Load extensions from their package files, each signature checked; never install or auto-load
    from the network."""
    conn.execute("SET autoinstall_known_extensions = false")
    conn.execute("SET autoload_known_extensions = false")
    for name in names:
        path = extension_file(name)
        _verify(path)
        conn.execute(f"LOAD '{path}'")
        if _verified.get(path) != _identity(path):
            raise WarehouseError(f"{path} changed after its signature was checked; reinstall it with `make setup`")


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
