"""The analytics views: contract columns and types, pseudonymity, outcomes by hand, the analysts' lake."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from clinicflow.simulate import simulate
from stages.ingest import run_load
from tests.care.test_tasks import T0, completed, enrolled, register
from tests.factories import event
from warehouse.analytics import compact_analysts, open_analytics, refresh_analytics
from warehouse.db import Lake, open_warehouse
from warehouse.dictionary import VIEWS, markdown, view_columns
from warehouse.exceptions import WarehouseError
from warehouse.landing import patient_key

END = datetime(2026, 11, 1, tzinfo=timezone.utc)
TSZ = "TIMESTAMP WITH TIME ZONE"
CONTRACT = {  # contract/WAREHOUSE.md: view -> columns at least
    "patients": [
        "patient_key",
        "clinic_id",
        "registered_at",
        "birth_year",
        "first_session_at",
        "latest_modality",
        "sessions_completed",
        "baseline_phq9",
        "latest_phq9",
        "responder",
        "remitter",
    ],
    "sessions": [
        "session_id",
        "patient_key",
        "modality",
        "phase",
        "started_at",
        "ended_at",
        "monitoring_minutes",
        "dose_mg",
        "dose_mg_per_kg",
        "bp_pre_systolic",
        "bp_pre_diastolic",
        "adverse_event_count",
        "rems_form_submitted",
    ],
    "phq9_scores": ["patient_key", "measured_at", "source", "total", "item9", "severity"],
    "followup_tasks": [
        "task_id",
        "patient_key",
        "kind",
        "due_at",
        "send_after",
        "status",
        "source_event_id",
        "completed_at",
    ],
    "alerts": ["alert_id", "patient_key", "severity", "reason", "source_event_id", "raised_at"],
    "outcomes_by_modality": [
        "modality",
        "patients_with_baseline",
        "responders",
        "response_rate",
        "remitters",
        "remission_rate",
    ],
    "quarantine": ["topic", "partition", "offset", "received_at", "error_kind", "errors", "event_id"],
}
TIMESTAMPS = {
    "registered_at",
    "first_session_at",
    "started_at",
    "ended_at",
    "measured_at",
    "due_at",
    "send_after",
    "completed_at",
    "raised_at",
    "received_at",
}


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    """A warehouse loaded from a realistic history."""
    from core.settings import Settings

    d = tmp_path_factory.mktemp("analytics")
    s = Settings(
        warehouse_path=d / "w.duckdb",
        pseudonym_secret="analytics-secret-analytics-secret-!!",
        kafka_bootstrap_servers="127.0.0.1:1",
    )
    f = d / "h.jsonl"
    f.write_bytes(b"\n".join(simulate(30, seed=5, end=END)) + b"\n")
    run_load(s, f, END)
    conn = open_warehouse(s)
    yield s, conn
    conn.close()


def test_every_contract_view_has_its_columns_and_timestamps_are_timestamptz(loaded):
    _, conn = loaded
    cols = view_columns(conn)
    for view, required in CONTRACT.items():
        have = dict(cols[view])
        assert set(required) <= set(have), (view, set(required) - set(have))
        for c in required:
            if c in TIMESTAMPS:
                assert have[c] == TSZ, (view, c, have[c])


def test_no_analytics_view_exposes_patient_id_in_any_column(loaded):
    s, conn = loaded
    ids = {r[0] for r in conn.execute("SELECT DISTINCT patient_id FROM raw_events").fetchall()}
    assert len(ids) >= 30
    for view, cols in view_columns(conn).items():
        assert all("patient_id" not in c for c, _ in cols), view
        for col, _ in cols:
            values = {str(v) for (v,) in conn.execute(f'SELECT DISTINCT "{col}" FROM analytics.{view}').fetchall()}
            leaked = {v for v in values for pid in ids if pid in v}
            assert not leaked, (view, col, sorted(leaked)[:3])


def test_patient_key_is_the_hmac_of_patient_id(loaded):
    s, conn = loaded
    pid, key = conn.execute("SELECT patient_id, patient_key FROM patient_keys LIMIT 1").fetchall()[0]
    assert key == patient_key(s.pseudonym_key(), pid) and len(key) == 64


def test_data_dictionary_documents_every_column_and_is_current(loaded):
    _, conn = loaded
    cols = view_columns(conn)
    assert set(cols) == set(VIEWS), "every analytics view is in the dictionary, and nothing else"
    for view, columns in cols.items():
        assert [c for c, _ in columns if c not in VIEWS[view][1]] == [], view
        assert set(VIEWS[view][1]) == {c for c, _ in columns}, f"{view}: dictionary lists columns the view lacks"
    assert Path("docs/DATA_DICTIONARY.md").read_text() == markdown(conn), (
        "docs/DATA_DICTIONARY.md is stale: regenerate it with warehouse.dictionary.markdown"
    )


def _phq(total: int) -> list[int]:
    items = [0] * 9
    for i in range(total):
        items[i % 8] += 1
    return items


@pytest.fixture()
def clinic(settings):
    from tests.care.conftest import Clinic

    c = Clinic(settings, quality=False)
    yield c
    c.conn.close()


def test_outcomes_match_a_hand_computed_case(clinic):
    def patient(pid, baseline, latest, modalities):
        evs = [
            register(pid),
            enrolled(pid),
            event("intake.assessed", pid, at=T0 - timedelta(days=1), phq9_items=_phq(baseline)),
        ]
        for n, m in enumerate(modalities):
            evs.append(completed(pid, sid=f"{pid}-S{n}", start=T0 + timedelta(days=3 * n), esk=m == "e"))
        if latest is not None:
            evs.append(event("checkin.completed", pid, at=T0 + timedelta(days=40), phq9_items=_phq(latest)))
        return evs

    clinic.land(
        *patient("PA01", 20, 9, "ee"),  # esketamine: responder (9 <= 10), not remitter
        *patient("PB02", 12, 4, "e"),  # esketamine: responder and remitter
        *patient("PC03", 15, 10, "r"),  # racemic: neither
        *patient("PD04", 8, 2, "e"),  # baseline under 10: not counted
        *patient("PE05", 18, 18, "er"),  # latest session racemic: counted there, neither
        *patient("PF06", 14, None, ""),  # never treated: left out
        *patient("PG07", 10, 5, "r"),
    )  # racemic: 5 <= 5 responder, 5 is not below 5
    rows = clinic.conn.execute(
        "SELECT modality, patients_with_baseline, responders, response_rate, remitters, "
        "remission_rate, patients_treated FROM analytics.outcomes_by_modality "
        "ORDER BY modality"
    ).fetchall()
    assert rows == [("esketamine_nasal", 2, 2, 1.0, 1, 0.5, 3), ("racemic_iv", 3, 1, 0.3333, 0, 0.0, 3)]
    p = dict(
        clinic.conn.execute(
            "SELECT baseline_phq9, latest_phq9 FROM analytics.patients WHERE baseline_phq9 = 20"
        ).fetchall()
    )
    assert p == {20: 9}


def analysts(tmp_path) -> Lake:
    return Lake(f"sqlite:{tmp_path / 'a' / 'catalog.sqlite'}", tmp_path / "a" / "data")


def test_analysts_lake_holds_only_analytics_and_no_patient_id(loaded, tmp_path):
    s, conn = loaded
    refresh_analytics(conn, analysts(tmp_path))
    snap = open_analytics(analysts(tmp_path))
    tables = {
        r[0]
        for r in snap.execute(
            "SELECT table_schema || '.' || table_name FROM information_schema.tables WHERE table_catalog = 'analysts'"
        ).fetchall()
    }
    assert tables == {f"analytics.{v}" for v in VIEWS} | {"analytics.snapshot_info"}
    cols = snap.execute("SELECT column_name FROM information_schema.columns WHERE table_catalog = 'analysts'")
    assert all("patient_id" not in c for (c,) in cols.fetchall())
    n = snap.execute("SELECT count(*) FROM patients").fetchall()[0][0]
    assert n == conn.execute("SELECT count(*) FROM analytics.patients").fetchall()[0][0] >= 30
    snap.close()


def _same_as_views(conn, reader) -> None:
    for view in VIEWS:
        want = sorted(conn.execute(f"SELECT * FROM analytics.{view}").fetchall(), key=repr)
        assert sorted(reader.execute(f"SELECT * FROM {view}").fetchall(), key=repr) == want, view


def test_the_analysts_lake_is_refreshed_incrementally_and_equals_the_views(tmp_path):
    from core.settings import Settings

    s = Settings(
        warehouse_path=tmp_path / "w.duckdb",
        pseudonym_secret="analytics-secret-analytics-secret-!!",
        kafka_bootstrap_servers="127.0.0.1:1",
    )
    history = list(simulate(20, seed=9, invalid_rate=0.05, end=END))
    first, later = tmp_path / "1.jsonl", tmp_path / "2.jsonl"
    first.write_bytes(b"\n".join(history[:-40]) + b"\n")
    later.write_bytes(b"\n".join(history[-40:]) + b"\n")  # the last events touch a few patients
    run_load(s, first, END)
    conn = open_warehouse(s)
    try:
        lake = analysts(tmp_path)
        refresh_analytics(conn, lake)
        conn.close()
        run_load(s, later, END)
        conn = open_warehouse(s)
        touched = conn.execute(
            "SELECT count(DISTINCT patient_id) FROM raw_events WHERE batch_id IN "
            "(SELECT batch_id FROM batches ORDER BY committed_at DESC LIMIT 1)"
        ).fetchall()[0][0]
        refresh_analytics(conn, lake)
        reader = open_analytics(lake)
        _same_as_views(conn, reader)
        version = reader.execute("SELECT max(snapshot_id) FROM ducklake_snapshots('analysts')").fetchall()[0][0]
        rewritten = reader.execute(
            f"SELECT count(*) FROM ducklake_table_insertions('analysts', 'analytics', 'patients', {version}, {version})"
        ).fetchall()[0][0]
        total = reader.execute("SELECT count(*) FROM patients").fetchall()[0][0]
        assert 0 < rewritten <= touched < total, "only the patients the new events touched were rewritten"
        reader.close()
    finally:
        conn.close()


def _mostly_dead_files(conn) -> dict[str, int]:
    """Data files of the analysts' lake with at least half their rows deleted, by table."""
    return dict(
        conn.execute(
            "SELECT t.table_name, count(*) FROM __ducklake_metadata_analysts.ducklake_data_file d "
            "JOIN __ducklake_metadata_analysts.ducklake_delete_file x USING (data_file_id) "
            "JOIN __ducklake_metadata_analysts.ducklake_table t ON t.table_id = d.table_id "
            "WHERE d.end_snapshot IS NULL AND x.end_snapshot IS NULL AND t.end_snapshot IS NULL "
            "AND x.delete_count * 2 >= d.record_count GROUP BY ALL"
        ).fetchall()
    )


def test_the_analysts_files_with_mostly_dead_rows_are_rewritten_and_no_row_changes(tmp_path):
    """Every refresh deletes the touched patients' rows of the analysts' lake, and merging skips
    files with deletes: left alone, dead rows piled up as fast as live ones."""
    from core.settings import Settings

    s = Settings(
        warehouse_path=tmp_path / "w.duckdb",
        pseudonym_secret="analytics-secret-analytics-secret-!!",
        kafka_bootstrap_servers="127.0.0.1:1",
    )
    history = list(simulate(20, seed=9, invalid_rate=0.0, end=END))
    lake, half, conn = analysts(tmp_path), len(history) // 2, None
    for part in (history[:half], history[half:]):  # the second half touches most patients again
        if conn is not None:
            conn.close()
        f = tmp_path / "part.jsonl"
        f.write_bytes(b"\n".join(part) + b"\n")
        run_load(s, f, END)
        conn = open_warehouse(s)
        refresh_analytics(conn, lake)
    try:
        dead = _mostly_dead_files(conn)
        assert dead.get("patients", 0) > 0 and dead.get("phq9_scores", 0) > 0, dead
        assert compact_analysts(conn, lake) > 0
        assert _mostly_dead_files(conn) == {}, "every file at least half dead was rewritten"
        reader = open_analytics(lake)
        _same_as_views(conn, reader)
        reader.close()
    finally:
        conn.close()


def test_a_query_can_name_the_snapshot_it_read(loaded, tmp_path):
    s, conn = loaded
    lake = analysts(tmp_path)
    refresh_analytics(conn, lake)
    reader = open_analytics(lake)
    version = reader.execute("SELECT max(snapshot_id) FROM ducklake_snapshots('analysts')").fetchall()[0][0]
    before = reader.execute("SELECT count(*) FROM alerts").fetchall()[0][0]
    conn.execute("CREATE TEMP TABLE saved AS SELECT * FROM clinical_alerts")
    conn.execute("DELETE FROM clinical_alerts")
    try:
        refresh_analytics(conn, lake)
        assert reader.execute("SELECT count(*) FROM alerts").fetchall()[0][0] == 0, "a new query sees the refresh"
        at = reader.execute(f"SELECT count(*) FROM alerts AT (VERSION => {version})").fetchall()[0][0]
        assert at == before > 0, "and time travel sees the instant it names"
    finally:
        conn.execute("INSERT INTO clinical_alerts SELECT * FROM saved")
        reader.close()


def test_missing_analysts_lake_says_what_to_do(tmp_path):
    with pytest.raises(WarehouseError, match="clinicflow ingest --drain"):
        open_analytics(analysts(tmp_path))


def test_sql_verb_reads_the_analysts_lake(loaded, monkeypatch, tmp_path):
    from typer.testing import CliRunner

    from clinicflow.cli import app
    from core import settings as settings_mod

    s, conn = loaded
    lake = analysts(tmp_path)
    refresh_analytics(conn, lake)
    monkeypatch.setenv("CLINICFLOW_ANALYTICS_CATALOG", lake.catalog)
    monkeypatch.setenv("CLINICFLOW_ANALYTICS_DATA_PATH", str(lake.data_path))
    settings_mod.get_settings.cache_clear()
    try:
        result = CliRunner().invoke(
            app, ["sql", "SELECT modality, response_rate FROM outcomes_by_modality ORDER BY modality", "--json"]
        )
    finally:
        settings_mod.get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["modality"] for r in rows] == ["esketamine_nasal", "racemic_iv"]
    bad = CliRunner().invoke(app, ["sql", "SELECT * FROM no_such_view"])
    assert bad.exit_code == 1


def test_snapshot_staleness_stays_within_the_interval_and_snapshots_take_at_most_half_the_time(tmp_path):
    from warehouse.analytics import SnapshotPublisher

    p = SnapshotPublisher(analysts(tmp_path), interval_s=15)
    p.last, p.cost = 100.0, 2.0  # started at 100, its data as of 100, visible at 102
    assert not p.due(111.9) and p.due(112.0)  # starts by 112, visible by 114: data at most 14 s behind
    p.cost = 9.0  # snapshots dearer than half the interval: back to back, half the time
    assert not p.due(117.9) and p.due(118.0)
    p.last = float("-inf")
    assert p.due(0.0), "the first snapshot of a run is due at once"


def test_a_due_refresh_runs_on_its_own_thread_and_a_failure_is_logged_not_raised(loaded, tmp_path, monkeypatch, caplog):
    import duckdb

    import warehouse.analytics as analytics_mod
    from warehouse.analytics import SnapshotPublisher

    s, conn = loaded
    lake = analysts(tmp_path)
    p = SnapshotPublisher(lake, interval_s=0)
    p.maybe(conn, force=True)
    conn.execute("CREATE OR REPLACE TEMP TABLE kept AS SELECT * FROM clinical_alerts")
    conn.execute("DELETE FROM clinical_alerts")
    try:
        p.last = float("-inf")
        assert p.maybe(conn), "due: started in the background"
        p.wait()
        reader = open_analytics(lake)
        assert reader.execute("SELECT count(*) FROM alerts").fetchall()[0][0] == 0
        reader.close()

        def broken(_conn):
            raise duckdb.IOException("disk gone")

        monkeypatch.setattr(analytics_mod, "_refresh", broken)
        conn.execute("INSERT INTO clinical_alerts SELECT * FROM kept")
        p.last = float("-inf")
        assert p.maybe(conn)
        p.wait()  # the writer goes on; the failure is reported
        assert "refreshing the analysts' lake failed" in caplog.text and "disk gone" in caplog.text
    finally:
        if not conn.execute("SELECT count(*) FROM clinical_alerts").fetchall()[0][0]:
            conn.execute("INSERT INTO clinical_alerts SELECT * FROM kept")
