"""Analysts query in a loop while `ingest --follow` lands thousands of events: no error, never torn."""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from datetime import datetime, timezone

import pytest

from clinicflow.simulate import simulate
from connectors.publish import publish_lines
from tests.clinicflow.test_ingest_faults import _wait_committed, env_for, ingest_cmd
from warehouse.analytics import open_snapshot
from warehouse.db import connect

pytestmark = [pytest.mark.integration, pytest.mark.slow]
END = datetime(2026, 11, 1, tzinfo=timezone.utc)


def read_once(path):
    conn = open_snapshot(path)
    try:
        return conn.execute("""SELECT (SELECT count(*) FROM sessions), (SELECT sum(sessions_completed) FROM patients),
                                      (SELECT count(*) FROM phq9_scores),
                                      (SELECT sum(planned) FROM outreach_funnel),
                                      (SELECT count(*) FROM followup_tasks WHERE audience = 'patient'),
                                      (SELECT data_as_of FROM snapshot_info)""").fetchall()[0]
    finally:
        conn.close()


def test_readers_never_fail_and_never_see_a_torn_snapshot(kafka_settings, tmp_path):
    s = kafka_settings.model_copy(
        update={"analytics_snapshot_path": tmp_path / "analytics.duckdb", "snapshot_interval_s": 0.2}
    )
    history = list(simulate(80, seed=21, invalid_rate=0.01, end=END))
    assert len(history) > 3000
    env = env_for(s)
    proc = subprocess.Popen(ingest_cmd("follow"), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    reads, errors, stop = [], [], threading.Event()

    def reader():
        while not stop.is_set():
            try:
                if s.analytics_snapshot_path.exists():
                    reads.append(read_once(s.analytics_snapshot_path))
            except Exception as e:  # the assertion below reports any
                errors.append(repr(e))
            time.sleep(0.02)

    t = threading.Thread(target=reader)
    t.start()
    try:
        chunk = len(history) // 6 + 1
        for i in range(0, len(history), chunk):
            publish_lines(s, history[i : i + chunk])
            time.sleep(1.0)
        _wait_committed(s, len(history), timeout_s=180)
        time.sleep(1.0)
    finally:
        stop.set()
        t.join(timeout=30)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err[-2000:]
    assert not errors, errors[:5]
    assert len(reads) >= 20, "the reader really ran alongside ingest"
    for sessions, per_patient, _, planned, patient_tasks, _ in reads:
        assert sessions == (per_patient or 0), "sessions and patients come from one consistent snapshot"
        assert (planned or 0) == patient_tasks
    stamps = [r[5] for r in reads if r[5] is not None]
    assert stamps == sorted(stamps), "a reader never goes back in time"
    assert len({r[0] for r in reads}) >= 3, "readers saw the data grow"
    conn = connect(s.warehouse_path)
    final = conn.execute("SELECT count(*) FROM analytics.sessions").fetchall()[0][0]
    conn.close()
    assert read_once(s.analytics_snapshot_path)[0] == final
