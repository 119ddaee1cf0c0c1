"""Backup and restore of the lake on the real broker: land, back up, land more, lose the lake,
restore, resume from the stored offsets, and get the tables a run without the loss has; backups
copy each immutable data file once."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from datetime import datetime, timezone

import pytest

from clinicflow.simulate import simulate
from connectors.publish import publish_lines
from core.settings import child_env
from stages.backup import run_backup_stage, run_restore_stage
from stages.ingest import run_ingest
from warehouse.backup import CATALOG
from warehouse.db import Lake, open_warehouse
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
    conn = open_warehouse(s)
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

    shutil.rmtree(Lake.of(s).data_path.parent)  # the disk is gone: data files (and an embedded catalog)
    s.warehouse_path.unlink(missing_ok=True)  # a file only the release before the lake wrote
    _drop_catalog(s)
    restored = run_restore_stage(s, tmp_path / "backups")
    assert restored["catalog_sha256"] == made["catalog_sha256"] and restored["events"] == made["events"]
    resumed = run_ingest(s, "drain")
    assert resumed.landed == len(without_loss["raw_events"]) - made["events"], "what the backup lacked, re-read"
    assert tables(s) == without_loss


def _drop_catalog(s) -> None:
    """A PostgreSQL catalog lost with its server: an empty database in its place."""
    lake = Lake.of(s)
    if lake.kind == "postgres":
        conn = __import__("duckdb").connect()
        from warehouse.lake import load_extensions

        load_extensions(conn, "postgres_scanner")
        conn.execute(f"ATTACH '{lake.catalog.split(':', 1)[1]}' AS pg (TYPE postgres)")
        tables = "SELECT table_name FROM duckdb_tables() WHERE database_name = 'pg' AND schema_name = 'public'"
        for (table,) in conn.execute(tables).fetchall():
            conn.execute(f'DROP TABLE pg.public."{table}"')
        conn.close()


def test_restore_never_overwrites_silently_and_refuses_a_damaged_backup(kafka_settings, tmp_path):
    s = kafka_settings
    publish_lines(s, list(simulate(3, seed=1, invalid_rate=0.0, end=datetime.now(timezone.utc))))
    run_ingest(s, "drain")
    made = run_backup_stage(s, tmp_path / "b")
    with pytest.raises(WarehouseError, match="--force"):
        run_restore_stage(s, tmp_path / "b")
    run_restore_stage(s, tmp_path / "b", force=True)
    lake = Lake.of(s)
    assert list(lake.data_path.parent.glob("data.replaced-*")), "the old data files are kept"
    if lake.catalog_file is not None:
        assert list(lake.catalog_file.parent.glob("catalog.sqlite.replaced-*")), "and the old catalog"
    folder = tmp_path / "b" / made["backup"].rsplit("/", 1)[-1]
    data_file = next(p for p in (tmp_path / "b" / "data").rglob("*.parquet"))
    for damaged in (folder / CATALOG[lake.kind], data_file):
        original = damaged.read_bytes()
        with open(damaged, "r+b") as f:
            f.seek(len(original) // 2)
            f.write(b"\x00\xff" * 8)
        with pytest.raises(WarehouseError, match="checksum"):
            run_restore_stage(s, tmp_path / "b", force=True)
        damaged.write_bytes(original)


def test_backups_are_incremental_for_the_immutable_data_files(kafka_settings, tmp_path):
    s = kafka_settings
    history = list(simulate(40, seed=8, invalid_rate=0.0, end=datetime.now(timezone.utc)))
    publish_lines(s, history[: len(history) // 2])
    run_ingest(s, "drain")
    first = run_backup_stage(s, tmp_path / "b")
    again = run_backup_stage(s, tmp_path / "b")
    assert first["copied_files"] == first["data_files"] > 0
    assert again["copied_files"] == 0, "nothing new: no data file copied twice"
    publish_lines(s, history[len(history) // 2 :])
    run_ingest(s, "drain")
    later = run_backup_stage(s, tmp_path / "b")
    assert 0 < later["copied_files"] < later["data_files"], "only the files written since"


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
