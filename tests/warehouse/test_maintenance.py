"""Ingest-time compaction: the small files of each table merged between batches, no row changed, and
no change feed (the dedupe index's, the analysts' lake's) shown a merged row a second time."""

from __future__ import annotations

from datetime import datetime, timezone

import duckdb
import pytest

from clinicflow.simulate import simulate
from stages.ingest import run_load
from warehouse.db import open_warehouse
from warehouse.exceptions import WarehouseError
from warehouse.maintenance import CHANGE_FED, MaintenanceTimer, rewritten

END = datetime(2026, 11, 1, tzinfo=timezone.utc)
FEEDS = ("raw_events", "followup_tasks", "clinical_alerts", "alert_episodes", "patient_keys")


def _files(conn) -> dict[str, int]:
    return dict(conn.execute("SELECT table_name, file_count FROM ducklake_table_info('lake')").fetchall())


def _deletes(conn) -> dict[str, int]:
    return dict(conn.execute("SELECT table_name, delete_file_count FROM ducklake_table_info('lake')").fetchall())


def _rows(conn) -> dict[str, list]:
    return {t: sorted(map(repr, conn.execute(f"SELECT * FROM {t}").fetchall())) for t in FEEDS}


def _snapshot(conn) -> int:
    return conn.execute("SELECT id FROM lake.current_snapshot()").fetchall()[0][0]


def test_compaction_merges_small_files_without_changing_a_row_or_a_change_feed(settings, tmp_path):
    f = tmp_path / "h.jsonl"
    f.write_bytes(b"\n".join(simulate(30, seed=4, end=END)) + b"\n")
    run_load(settings.model_copy(update={"batch_max_events": 150}), f, END)  # a file per table a batch
    conn = open_warehouse(settings)
    try:
        before, files, since = _rows(conn), _files(conn), _snapshot(conn)
        timer = MaintenanceTimer.compaction("lake", interval_s=0, budget_s=3600)
        assert timer.maybe(conn) and timer.pending is None, "one call runs the whole round within its budget"
        after = _files(conn)
        assert files["raw_events"] > 5 and after["raw_events"] == 1, (files, after)
        assert all(after[t] <= max(files[t], 1) for t in files), "no table gains files"
        assert _rows(conn) == before, "compaction changes files, never rows"
        now = _snapshot(conn)
        assert now > since, "the merges are lake snapshots of their own"
        for t in FEEDS:  # what the dedupe index and the analysts' refresh read after a merge
            n = conn.execute(
                f"SELECT count(*) FROM ducklake_table_changes('lake', 'main', '{t}', {since + 1}, {now})"
            ).fetchall()[0][0]
            assert n == 0, f"{t}: a merge showed {n} rows to the change feed as new"
    finally:
        conn.close()


def test_a_round_runs_one_step_a_gap_without_budget_and_starts_only_when_due(settings, tmp_path):
    f = tmp_path / "h.jsonl"
    f.write_bytes(b"\n".join(simulate(10, seed=5, end=END)) + b"\n")
    run_load(settings.model_copy(update={"batch_max_events": 100}), f, END)
    conn = open_warehouse(settings)
    try:
        assert not MaintenanceTimer.compaction("lake", interval_s=3600).maybe(conn), "not due: nothing runs"
        timer = MaintenanceTimer.compaction("lake", interval_s=0, budget_s=0)
        tables = sum(1 for n in _files(conn).values() if n > 1) + sum(
            1 for t, n in _deletes(conn).items() if n and rewritten("lake", t)
        )
        steps = 0
        while timer.maybe(conn):
            steps += 1
            assert timer.report.steps == steps, "one step a gap"
        assert steps == tables > 3, (steps, tables)
    finally:
        conn.close()


def test_a_light_round_that_fails_is_dropped_with_a_warning_not_raised(settings, caplog):
    def conflicting(c):
        raise duckdb.TransactionException("Transaction conflict: another writer merged the same files")

    ran = []
    rounds = lambda c: iter([("lake", ("merge a", conflicting)), ("lake", ("merge b", lambda c: ran.append(1) or 0))])  # noqa: E731
    conn = open_warehouse(settings)
    try:
        light = MaintenanceTimer(rounds, interval_s=0, budget_s=3600, light=True)
        assert not light.maybe(conn) and light.pending is None and not ran, "the round ends at the failure"
        assert "merge a" in caplog.text and "next one" in caplog.text
        with pytest.raises(WarehouseError, match="merge a"):
            MaintenanceTimer(rounds, interval_s=0).maybe(conn)  # the daily round says so loudly
    finally:
        conn.close()


def test_dead_rows_are_rewritten_away_only_where_no_change_feed_follows(settings):
    """care_plan_queue's rows are deleted a minute after they come and every batch reads it: its
    files with dead rows are rewritten. followup_tasks' feed is the analysts' refresh's, and a
    rewrite would show it every surviving row again: merged only."""
    conn = open_warehouse(settings)
    try:
        conn.execute("INSERT INTO care_plan_queue SELECT 'P' || range, now() FROM range(5000)")
        conn.execute("CALL ducklake_flush_inlined_data('lake')")
        conn.execute("DELETE FROM care_plan_queue WHERE patient_id <> 'P7'")
        conn.execute("CALL ducklake_flush_inlined_data('lake')")
        assert _deletes(conn)["care_plan_queue"] > 0
        timer = MaintenanceTimer.compaction("lake", interval_s=0, budget_s=3600)
        timer.maybe(conn)
        assert _deletes(conn)["care_plan_queue"] == 0, "the dead rows' file was rewritten"
        assert conn.execute("SELECT patient_id FROM care_plan_queue").fetchall() == [("P7",)]
        assert not rewritten("lake", "followup_tasks") and rewritten("analysts", "patients")
    finally:
        conn.close()


def test_every_change_feed_the_pipeline_follows_is_kept_from_rewrites():
    """The refresh and the dedupe index read these tables' feeds; a table added to them and not to
    CHANGE_FED would have its surviving rows reported again after every rewrite."""
    import inspect
    import re

    from warehouse import analytics, dedupe

    source = inspect.getsource(analytics)
    feeds = re.findall(r"(?<!\w)_change[sd]\((?:conn, )?['\"](\w+)['\"]", source)
    followed = set(analytics.PATIENT_TABLES) | set(feeds)
    followed.add(inspect.signature(dedupe.EventIndex).parameters["table"].default)
    assert {"alert_escalations", "quarantine", "outcome_params", "raw_events"} <= followed, followed
    assert followed <= CHANGE_FED, followed - CHANGE_FED
