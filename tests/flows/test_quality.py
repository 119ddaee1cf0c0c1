"""The data-quality flow catches each injected fault and passes on clean data."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from clinicflow.simulate import simulate
from flows.quality import quality_flow
from stages.ingest import run_load
from stages.quality import run_quality
from tests.factories import event, raw
from warehouse.db import open_warehouse

END = datetime(2026, 11, 1, tzinfo=timezone.utc)


@pytest.fixture()
def clean(settings, tmp_path):
    s = settings.model_copy(update={"quality_dir": tmp_path / "gx"})
    f = tmp_path / "h.jsonl"
    f.write_bytes(b"\n".join(simulate(12, seed=8, invalid_rate=0.0, end=END)) + b"\n")
    run_load(s, f, END)
    return s


def now():
    return datetime.now(timezone.utc)


def test_clean_warehouse_passes_and_builds_data_docs(clean):
    report = run_quality(clean, now())
    assert report["success"], report
    index = Path(report["data_docs"].removeprefix("file://"))
    assert index.is_file() and "referential_sessions" in index.read_text()
    conn = open_warehouse(clean)
    history = conn.execute("SELECT suite, success FROM quality_runs ORDER BY suite").fetchall()
    conn.close()
    assert len(history) == 5 and all(ok for _, ok in history)


def test_orphan_session_is_caught(clean, tmp_path):
    f = tmp_path / "orphan.jsonl"
    f.write_bytes(raw(event("session.completed", patient_id="PNOBODY1")) + b"\n")
    run_load(clean, f, END)
    report = run_quality(clean, now())
    assert report["suites"]["referential_sessions"] is False and not report["success"]


def tamper(settings, sql: str) -> None:
    """Inject a fault straight into the warehouse, as a bug or a bad hand edit would."""
    conn = open_warehouse(settings)
    try:
        conn.execute(sql)
    finally:
        conn.close()


def test_task_without_source_event_is_caught(clean):
    tamper(
        clean,
        "UPDATE followup_tasks SET source_event_id = 'gone' WHERE task_id = (SELECT min(task_id) FROM followup_tasks)",
    )
    assert run_quality(clean, now())["suites"]["referential_tasks"] is False


def test_stale_warehouse_is_caught(clean):
    report = run_quality(clean, now() + timedelta(hours=clean.quality_max_stale_hours + 1))
    assert report["suites"]["freshness"] is False


def test_unbalanced_reconciliation_is_caught(clean):
    tamper(
        clean,
        "UPDATE partition_ledger SET n_landed = n_landed - 1 WHERE batch_id = "
        "(SELECT min(batch_id) FROM partition_ledger)",
    )
    assert run_quality(clean, now())["suites"]["reconciliation"] is False


def test_impossible_value_is_caught(clean):
    tamper(
        clean,
        "UPDATE sessions_completed SET ended_at = started_at + INTERVAL 13 HOUR WHERE event_id = "
        "(SELECT min(event_id) FROM sessions_completed)",
    )
    assert run_quality(clean, now())["suites"]["ranges"] is False


@pytest.mark.prefect
def test_quality_flow_fails_visibly_under_prefect(prefect_harness, clean):
    tamper(clean, "UPDATE partition_ledger SET n_landed = n_landed + 1")
    state = quality_flow(None, clean, return_state=True)
    assert state.is_failed() and "reconciliation" in state.message
