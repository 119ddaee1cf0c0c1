"""A warehouse of the release before the alert lifecycle, written by DuckDB 2.0.1 and exported
(tests/fixtures/export-duckdb-2.0.1-m012: 6 simulated patients, migrations 1-12), imported into
this release: every row kept, the later migrations applied with their fix-ups, episodes derived."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from core.settings import child_env
from stages.upgrade import run_import_stage
from warehouse.db import connect, open_warehouse
from warehouse.exceptions import WarehouseError

EXPORT = Path(__file__).resolve().parents[1] / "fixtures" / "export-duckdb-2.0.1-m012"


def exported(table: str) -> int:
    return duckdb.execute(f"SELECT count(*) FROM read_parquet('{EXPORT / table}.parquet')").fetchall()[0][0]


def test_an_older_releases_export_imports_whole_and_migrates_on(settings):
    report = run_import_stage(settings, EXPORT)
    for table in ("raw_events", "followup_tasks", "clinical_alerts", "quarantine", "patient_keys", "outcome_params"):
        assert report["rows"][table] == exported(table), table
    conn = open_warehouse(settings)
    try:
        assert conn.execute("SELECT name FROM schema_migrations ORDER BY number").fetchall() == [
            ("001_lake.sql",),
            ("002_care_history.sql",),
            ("003_partition_leases.sql",),
            ("004_outbox_positions.sql",),
        ]
        assert report["rows"]["care_history"] == exported("raw_events"), "the planner's history, derived"
        alerts = conn.execute("SELECT count(*), count(source_occurred_at), count(episode_id) FROM clinical_alerts")
        n, with_time, with_episode = alerts.fetchall()[0]
        assert n == exported("clinical_alerts") > 0 and with_time == with_episode == n
        assert report["alert_episodes"] > 0
        old_keys = duckdb.execute(f"SELECT * FROM read_parquet('{EXPORT}/patient_keys.parquet') ORDER BY 1").fetchall()
        assert conn.execute("SELECT * FROM patient_keys ORDER BY 1").fetchall() == old_keys, "pseudonyms unchanged"
    finally:
        conn.close()


def test_import_never_replaces_a_warehouse_and_refuses_what_is_no_export(settings, tmp_path):
    open_warehouse(settings).close()
    with pytest.raises(WarehouseError, match="exists"):
        run_import_stage(settings, EXPORT)
    other = settings.model_copy(update={"warehouse_path": tmp_path / "new" / "w.duckdb"})
    with pytest.raises(WarehouseError, match="EXPORT DATABASE"):
        run_import_stage(other, tmp_path / "empty")


def test_the_import_verb(settings, tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "clinicflow", "import", str(EXPORT)],
        env=child_env(settings),
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["rows"]["raw_events"] == exported("raw_events")


def test_a_previous_releases_warehouse_file_imports_as_is(settings, tmp_path):
    from warehouse.upgrade import _stage

    old_file = tmp_path / "old" / "clinic.duckdb"  # the file warehouse of the release before the lake
    old_file.parent.mkdir()
    _stage(EXPORT, old_file)
    report = run_import_stage(settings, old_file)
    for table in ("raw_events", "followup_tasks", "clinical_alerts", "quarantine", "patient_keys", "consumer_offsets"):
        assert report["rows"][table] == exported(table), table
    conn = open_warehouse(settings)
    try:
        offsets = conn.execute("SELECT count(*), count(batch_id) FROM consumer_offsets").fetchall()[0]
        assert offsets == (exported("consumer_offsets"), 0), "the offsets carried over, as the first log rows"
    finally:
        conn.close()


def test_a_writer_refuses_to_start_beside_the_previous_releases_file(settings, tmp_path):
    from warehouse.upgrade import _stage

    _stage(EXPORT, settings.warehouse_path)  # the old release's warehouse where the writer's file goes
    with pytest.raises(WarehouseError, match="clinicflow import"):
        connect(settings.warehouse_path)
    assert not (settings.warehouse_path.parent / "clinic.lake" / "catalog.sqlite").exists(), "no empty lake made"
