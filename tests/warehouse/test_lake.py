"""DuckLake from the pinned packages' files: SQLite and PostgreSQL catalogs, snapshots, time travel,
and no download of anything."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import duckdb
import pytest

from tests.kafka_helpers import free_port
from warehouse import lake
from warehouse.exceptions import WarehouseError
from warehouse.lake import VERIFIED_ONCE, attach_lake, extension_file, load_extensions
from warehouse.local_postgres import DATABASE, ROLE, LocalPostgres


def test_extensions_come_from_the_installed_packages_for_this_duckdb():
    for name in ("ducklake", "sqlite_scanner", "postgres_scanner"):
        path = extension_file(name)
        assert path.is_file() and f"v{duckdb.__version__}" in str(path)
    conn = duckdb.connect()
    load_extensions(conn, "ducklake")
    settings = dict(
        conn.execute("SELECT name, value FROM duckdb_settings() WHERE name LIKE 'auto%extensions'").fetchall()
    )
    assert settings == {"autoinstall_known_extensions": "false", "autoload_known_extensions": "false"}


def test_a_pipeline_connection_loads_only_an_extension_whose_signature_was_checked(tmp_path, monkeypatch):
    """The pipeline's connections allow unsigned files so that DuckDB checks each file once per
    process, not per connection; a file whose signature does not check out is still refused."""
    good = extension_file("ducklake")
    with duckdb.connect(config=VERIFIED_ONCE) as conn:
        load_extensions(conn, "ducklake")
    assert good in lake._verified, "checked once, remembered for this process"
    forged = tmp_path / "ducklake.duckdb_extension"
    data = bytearray(good.read_bytes())
    data[-1] ^= 0xFF  # the signature is the file's last 256 bytes
    forged.write_bytes(bytes(data))
    monkeypatch.setattr(lake, "extension_file", lambda name: forged)
    with duckdb.connect(config=VERIFIED_ONCE) as conn, pytest.raises(duckdb.Error, match="(?i)signature"):
        load_extensions(conn, "ducklake")
    assert forged not in lake._verified


def test_a_sqlite_catalog_lake_keeps_snapshots_that_queries_can_name(tmp_path):
    conn = duckdb.connect()
    attach_lake(conn, f"sqlite:{tmp_path / 'catalog.sqlite'}", tmp_path / "data")
    conn.execute("CREATE TABLE lake.events (event_id VARCHAR, n INTEGER)")
    conn.execute("INSERT INTO lake.events SELECT 'e' || range, range FROM range(1000)")
    [(v1,)] = conn.execute("SELECT max(snapshot_id) FROM lake.snapshots()").fetchall()
    conn.execute("INSERT INTO lake.events SELECT 'f' || range, range FROM range(500)")
    assert conn.execute("SELECT count(*) FROM lake.events").fetchall() == [(1500,)]
    assert conn.execute(f"SELECT count(*) FROM lake.events AT (VERSION => {v1})").fetchall() == [(1000,)]
    conn.close()
    # Another process reads the same lake read-only.
    code = textwrap.dedent(f"""
        import duckdb, pathlib
        from warehouse.lake import attach_lake
        c = duckdb.connect()
        attach_lake(c, "sqlite:{tmp_path / "catalog.sqlite"}", pathlib.Path("{tmp_path / "data"}"), read_only=True)
        print(c.execute("SELECT count(*) FROM lake.events").fetchall()[0][0])
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == "1500", done.stderr


def test_an_unknown_catalog_kind_is_refused_with_the_fix(tmp_path):
    with pytest.raises(WarehouseError, match="sqlite:<file> or postgres:<dsn>"):
        attach_lake(duckdb.connect(), f"mysql:{tmp_path}", tmp_path / "data")


@pytest.mark.integration
def test_a_postgres_catalog_lake_from_two_processes(tmp_path):
    server = LocalPostgres(tmp_path / "pg", free_port(), "pw-" + "y" * 20)
    server.up(progress=lambda _: None)
    dsn = f"postgres:dbname={DATABASE} host=127.0.0.1 port={server.port} user={ROLE} password={server.password}"
    try:
        conn = duckdb.connect()
        attach_lake(conn, dsn, tmp_path / "data")
        conn.execute("CREATE TABLE lake.events (event_id VARCHAR)")
        code = textwrap.dedent(f"""
            import duckdb, pathlib
            from warehouse.lake import attach_lake
            c = duckdb.connect()
            attach_lake(c, "{dsn}", pathlib.Path("{tmp_path / "data"}"))
            c.execute("INSERT INTO lake.events SELECT 'b' || range FROM range(5000)")
        """)
        other = subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, text=True)
        conn.execute("INSERT INTO lake.events SELECT 'a' || range FROM range(5000)")
        assert other.wait(timeout=60) == 0, other.stderr.read()
        assert conn.execute("SELECT count(DISTINCT event_id) FROM lake.events").fetchall() == [(10_000,)]
        with pytest.raises(WarehouseError) as failed:
            attach_lake(duckdb.connect(), dsn.replace(server.password, "wrong-password"), tmp_path / "data", "x")
        assert server.password not in str(failed.value), "a connection string never reaches a message"
    finally:
        server.down()
