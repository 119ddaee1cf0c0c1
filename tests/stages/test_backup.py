"""Backup and restore on the real broker: land, back up, land more, lose the warehouse, restore,
resume from the stored offsets, and get the tables a run without the loss has."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timezone

import pytest

from clinicflow.simulate import simulate
from connectors.publish import publish_lines
from core.settings import child_env
from stages.backup import run_backup_stage, run_restore_stage
from stages.ingest import run_ingest
from warehouse.db import connect
from warehouse.exceptions import WarehouseError

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# What a history decides; columns stamped with the wall clock of landing (raised_at, received_at) left out.
TABLES = {
    "raw_events": "SELECT event_id, event_type, patient_id, occurred_at, event FROM raw_events",
    "checkins": "SELECT * FROM checkins",
    "sessions_completed": "SELECT * FROM sessions_completed",
    "followup_tasks": "SELECT task_id, kind, status, due_at, send_after, channel, completed_by FROM followup_tasks",
    "clinical_alerts": "SELECT alert_id, reason, status, episode_id FROM clinical_alerts",
    "alert_episodes": "SELECT episode_id, reason, occurrences, status FROM alert_episodes",
    "quarantine": 'SELECT topic, "partition", "offset", error_kind, raw FROM quarantine',
}


def tables(s) -> dict[str, list]:
    conn = connect(s.warehouse_path)
    try:
        return {name: sorted(conn.execute(sql).fetchall(), key=repr) for name, sql in TABLES.items()}
    finally:
        conn.close()


def test_backup_lose_restore_resume_gives_the_tables_of_a_run_without_the_loss(kafka_settings, tmp_path):
    s = kafka_settings
    history = list(simulate(30, seed=5, invalid_rate=0.02, end=datetime.now(timezone.utc)))
    first, second = history[: len(history) // 2], history[len(history) // 2 :]
    publish_lines(s, first)
    run_ingest(s, "drain")
    made = run_backup_stage(s, tmp_path / "backups")
    assert made["events"] > 100 and made["stored_offsets"]
    publish_lines(s, second)
    run_ingest(s, "drain")
    without_loss = tables(s)
    assert len(without_loss["raw_events"]) > 2 * made["events"] * 0.8

    s.warehouse_path.unlink()  # the disk is gone
    s.warehouse_path.with_name(s.warehouse_path.name + ".wal").unlink(missing_ok=True)
    restored = run_restore_stage(s, tmp_path / "backups")
    assert restored["sha256"] == made["sha256"]
    resumed = run_ingest(s, "drain")
    assert resumed.landed == len(without_loss["raw_events"]) - made["events"], "what the backup lacked, re-read"
    assert tables(s) == without_loss


def test_restore_never_overwrites_silently_and_refuses_a_damaged_backup(kafka_settings, tmp_path):
    s = kafka_settings
    publish_lines(s, list(simulate(3, seed=1, invalid_rate=0.0, end=datetime.now(timezone.utc))))
    run_ingest(s, "drain")
    made = run_backup_stage(s, tmp_path / "b")
    with pytest.raises(WarehouseError, match="--force"):
        run_restore_stage(s, tmp_path / "b")
    run_restore_stage(s, tmp_path / "b", force=True)
    assert list(s.warehouse_path.parent.glob(f"{s.warehouse_path.name}.replaced-*")), "the old one is kept"
    damaged = tmp_path / "b" / made["backup"].rsplit("/", 1)[-1] / "warehouse.duckdb"
    with open(damaged, "r+b") as f:
        f.seek(5000)
        f.write(b"\x00\xff" * 8)
    with pytest.raises(WarehouseError, match="checksum"):
        run_restore_stage(s, tmp_path / "b", force=True)


def test_backup_and_restore_verbs(kafka_settings, tmp_path):
    s = kafka_settings
    env = child_env(s)
    cli = [sys.executable, "-m", "clinicflow"]
    done = subprocess.run(
        [*cli, "backup", str(tmp_path / "b"), "--no-prefect"], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["backup"].startswith(str(tmp_path / "b"))
    refused = subprocess.run([*cli, "restore", str(tmp_path / "b")], env=env, capture_output=True, text=True)
    assert refused.returncode == 1 and "--force" in refused.stderr
    nothing = subprocess.run([*cli, "backup", "--no-prefect"], env=env, capture_output=True, text=True)
    assert nothing.returncode != 0 and "CLINICFLOW_BACKUP_DIR" in nothing.stderr
