"""Why a warehouse cannot be opened, said with the fix."""

from __future__ import annotations

from pathlib import Path

import duckdb

from warehouse.db import _open_error, fix_for

# DuckDB 1.5.5's own words for a file written by DuckDB 2.x (this project's releases before issue 15).
NEWER = (
    "IO Error: Trying to read a database file with version number 999, but we can only read versions between 64 "
    "and 68.\nThe database file was created with an newer version of DuckDB."
)


def test_a_warehouse_from_a_newer_duckdb_says_how_to_carry_on():
    message = str(_open_error(Path("var/clinic.duckdb"), duckdb.IOException(NEWER)))
    assert "newer DuckDB" in message and "clinicflow import" in message and "var/clinic.duckdb" in message


def test_no_connection_fetches_extensions_from_the_network(tmp_path):
    from warehouse.db import connect

    conn = connect(tmp_path / "w.duckdb")
    [(value,)] = conn.execute(
        "SELECT value FROM duckdb_settings() WHERE name = 'autoinstall_known_extensions'"
    ).fetchall()
    assert value == "false"
    conn.close()


def test_a_full_buffer_pool_says_which_setting_to_raise():
    # DuckDB's own text when its buffer pool is exhausted (seen at 3.1 million events with 256 MiB).
    text = "Out of Memory Error: failed to allocate data of size 4.9 MiB (243.8 MiB/244.1 MiB used)"
    assert "CLINICFLOW_WAREHOUSE_MEMORY_LIMIT_MB" in fix_for(text)
    aborted = fix_for("TransactionContext Error: Current transaction is aborted (please ROLLBACK)")
    assert "earlier statement" in aborted and "free space" in aborted and "MEMORY_LIMIT_MB" in aborted
    assert fix_for("IO Error: something else") == "check the path, the free space and the permissions"
