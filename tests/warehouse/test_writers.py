"""Several writing processes on one warehouse path (ingest workers, outreach beside them), and what
`restore` learns from their spill folders."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from stages.backup import run_restore_stage
from warehouse.db import connect, other_writers
from warehouse.exceptions import WarehouseError

CHILD = """
import sys, time
from pathlib import Path
from warehouse.db import connect
conn = connect(Path(sys.argv[1]))
conn.execute("INSERT INTO pepper SELECT * FROM pepper WHERE false")
print("open", flush=True)
time.sleep(60)
"""


@pytest.fixture()
def child_writer(tmp_path):
    path = tmp_path / "var" / "clinic.duckdb"
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(path)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "open", "the child writer did not open the warehouse"
        yield path, proc
    finally:
        proc.kill()
        proc.wait(timeout=30)


def test_two_processes_write_one_warehouse_path_at_once(child_writer):
    path, proc = child_writer
    conn = connect(path)  # before issue 16 this waited for (or failed on) the child's lock
    try:
        conn.execute("CREATE TEMP TABLE t AS SELECT 1 AS x")
        assert other_writers(path) == [proc.pid]
    finally:
        conn.close()


def test_restore_refuses_while_another_writer_runs_and_names_it(child_writer, settings):
    path, proc = child_writer
    s = settings.model_copy(update={"warehouse_path": path})
    with pytest.raises(WarehouseError, match=rf"{proc.pid}.*stop ingest"):
        run_restore_stage(s, path.parent / "no-backup")
    proc.kill()
    proc.wait(timeout=30)
    deadline = time.monotonic() + 10
    while other_writers(path) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert other_writers(path) == []
    connect(path).close()  # a later writer clears the spill folder the killed one left
    left = {p.name for p in (path.parent / "clinic.writers").iterdir()}
    assert str(proc.pid) not in left, "the killed writer's spill folder is cleared by the next writer"


def test_two_peppers_drawn_by_racing_first_writers_converge_to_one(tmp_path):
    """A new PostgreSQL catalog opened by two hosts at once has no lock to share: both may draw a
    pepper. The next writer keeps the smaller, so every pseudonym is computed from one."""
    path = tmp_path / "var" / "clinic.duckdb"
    conn = connect(path)
    (first,) = conn.execute("SELECT value FROM pepper").fetchone()
    conn.execute("INSERT INTO pepper VALUES ('0' || ?)", [first])  # sorts before the first
    conn.close()
    conn = connect(path)
    try:
        assert conn.execute("SELECT value FROM pepper").fetchall() == [("0" + first,)]
        assert conn.execute("SELECT pseudo('P1')").fetchone()[0]  # the macro's subquery has one row again
    finally:
        conn.close()
