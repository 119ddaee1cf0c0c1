"""Lake maintenance: many small files merged, old snapshots expired and their files removed, every
table's contents unchanged, the analysts' files still readable by their group; the verb."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from datetime import datetime, timezone

from clinicflow.simulate import simulate
from core.settings import child_env
from stages.ingest import run_load
from stages.maintenance import run_maintenance_stage
from warehouse.db import Lake, open_warehouse
from warehouse.outbox import positions

END = datetime(2026, 11, 1, tzinfo=timezone.utc)
TABLES = ("raw_events", "sessions_completed", "followup_tasks", "clinical_alerts", "consumer_offsets", "outbox")


def contents(s) -> dict[str, list]:
    conn = open_warehouse(s, read_only=True)
    try:
        return {t: sorted(map(repr, conn.execute(f"SELECT * FROM {t}").fetchall())) for t in TABLES}
    finally:
        conn.close()


def test_maintenance_merges_expires_and_cleans_without_changing_a_row(settings, tmp_path):
    s = settings.model_copy(update={"batch_max_events": 150, "lake_snapshot_retention_days": 0})
    f = tmp_path / "h.jsonl"
    f.write_bytes(b"\n".join(simulate(30, seed=2, end=END)) + b"\n")
    run_load(s, f, END)  # small batches: many small files
    before = contents(s)
    report = run_maintenance_stage(s)
    assert report["data_files_after"]["lake"] < report["data_files_before"]["lake"], report
    assert report["files_merged"] > 0 and report["snapshots_expired"] > 0
    assert report["duplicate_event_ids"] == 0
    assert report["longest_step_s"] < report["seconds"], "short steps, not one long lock"
    assert contents(s) == before, "maintenance changes files, never rows"
    for p in Lake.analysts(s).data_path.rglob("*.parquet"):
        assert stat.S_IMODE(p.stat().st_mode) & 0o040, f"{p} stays readable by the analysts' group"


def test_the_maintain_verb(settings, tmp_path):
    f = tmp_path / "h.jsonl"
    f.write_bytes(b"\n".join(simulate(5, seed=1, end=END)) + b"\n")
    run_load(settings, f, END)
    done = subprocess.run(
        [sys.executable, "-m", "clinicflow", "maintain", "--no-prefect"],
        env=child_env(settings),
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["steps"] > 10 and "maintained the lakes" in done.stderr


def test_maintenance_keeps_only_the_furthest_outbox_position_of_each_partition(settings):
    conn = open_warehouse(settings)
    try:
        rows = [("alerts", 0, 5), ("alerts", 0, 9), ("alerts", 0, 7), ("alerts", 1, 3), ("outreach", 0, 4)]
        for topic, partition, offset in rows:
            conn.execute("INSERT INTO outbox_positions VALUES (?, ?, ?, now())", [topic, partition, offset])
        before = positions(conn)
    finally:
        conn.close()
    report = run_maintenance_stage(settings)
    conn = open_warehouse(settings, read_only=True)
    try:
        kept = sorted(conn.execute('SELECT topic, "partition", next_offset FROM outbox_positions').fetchall())
        after = positions(conn)
    finally:
        conn.close()
    assert report["positions_pruned"] == 2, report
    assert kept == [("alerts", 0, 9), ("alerts", 1, 3), ("outreach", 0, 4)]
    assert after == before, "a publisher taking over reads the same positions as before the prune"
