"""An analyst's process queries the analysts' lake in a loop while `ingest --follow` lands events
published at 2,000 a second: no error, never a torn state, never back in time, and never more
than 15 seconds behind."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone

import pytest

from clinicflow.simulate import simulate
from connectors.kafka import make_producer
from connectors.publish import route
from tests.clinicflow.test_ingest_faults import _wait_committed, ingest_cmd
from warehouse.analytics import open_analytics
from warehouse.db import Lake, open_warehouse

pytestmark = [pytest.mark.integration, pytest.mark.slow]
END = datetime(2026, 11, 1, tzinfo=timezone.utc)
RATE = 2000

QUERY = """SELECT (SELECT count(*) FROM sessions), (SELECT sum(sessions_completed) FROM patients),
                  (SELECT sum(planned) FROM outreach_funnel),
                  (SELECT count(*) FROM followup_tasks WHERE audience = 'patient'),
                  (SELECT epoch(data_as_of) FROM snapshot_info), epoch(now())"""

# The analyst: its own process, its own DuckDB, the analysts' lake attached read-only.
READER = f"""
import json, sys, time
from warehouse.analytics import open_analytics
from warehouse.db import Lake
from pathlib import Path
lake, until = Lake(sys.argv[1], Path(sys.argv[2])), time.time() + float(sys.argv[3])
done = Path(sys.argv[4])  # the test creates it once ingest has landed everything
conn = open_analytics(lake)  # one session, like an analyst's: each query reads the newest snapshot
while time.time() < until and not done.exists():
    try:
        row = conn.execute('''{QUERY}''').fetchall()[0]
        print(json.dumps(["ok", *row]), flush=True)
    except Exception as e:
        print(json.dumps(["error", repr(e)]), flush=True)
    time.sleep(0.1)
conn.close()
"""


def publish_at_rate(s, lines: list[bytes], rate: int) -> float:
    """Publish keyed by patient like a publisher, paced at `rate` per second; returns when it started."""
    producer = make_producer(s)
    started = time.time()
    for n, line in enumerate(lines):
        topic, key = route(line, s)
        producer.send(topic, key=key, value=line)
        ahead = started + n / rate - time.time()
        if ahead > 0:
            time.sleep(ahead)
    producer.flush()
    return started


def test_an_analysts_process_reads_during_a_long_ingest_without_error_and_within_15s(kafka_settings, tmp_path):
    s = kafka_settings
    history = list(simulate(1300, seed=21, invalid_rate=0.0, end=END))[:40_000]
    assert len(history) == 40_000  # 20 s at 2,000 a second
    lake = Lake.analysts(s)
    ingest = subprocess.Popen(ingest_cmd("follow"), env=_env(s), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _wait_published(lake, ingest)  # the analysts' lake is there from ingest's start on
    seconds = len(history) / RATE + 30
    reader = subprocess.Popen(
        [sys.executable, "-c", READER, lake.catalog, str(lake.data_path), str(seconds), str(tmp_path / "done")],
        env=_env(s),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        started = publish_at_rate(s, history, RATE)
        published = time.time()
        _wait_committed(s, len(history), timeout_s=120)
        (tmp_path / "done").touch()
        out, err = reader.communicate(timeout=seconds + 60)
    finally:
        reader.kill()
        ingest.send_signal(signal.SIGTERM)
        _, ingest_err = ingest.communicate(timeout=60)
    assert ingest.returncode == 0, ingest_err[-2000:]
    rows = [json.loads(line) for line in out.splitlines()]
    errors = [r for r in rows if r[0] == "error"]
    reads = [r[1:] for r in rows if r[0] == "ok"]
    assert not errors, errors[:5]
    assert len(reads) >= 50, (len(reads), err[-2000:])
    for sessions, per_patient, planned, patient_tasks, _, _ in reads:
        assert sessions == (per_patient or 0), "sessions and patients come from one consistent snapshot"
        assert (planned or 0) == patient_tasks
    stamps = [r[4] for r in reads if r[4] is not None]
    assert stamps == sorted(stamps), "a reader never goes back in time"
    # Staleness while events kept arriving: how old the newest batch the analyst saw was.
    during = [now - as_of for *_, as_of, now in reads if as_of and as_of >= started and now <= published]
    assert len(during) >= 20 and max(during) < 15, (len(during), max(during, default=None))
    print(f"staleness at {RATE}/s over {len(during)} reads: max {max(during):.1f} s")
    conn = open_warehouse(s, read_only=True)
    final = conn.execute("SELECT count(*) FROM analytics.sessions").fetchall()[0][0]
    conn.close()
    check = open_analytics(lake)
    assert check.execute("SELECT count(*) FROM sessions").fetchall()[0][0] == final > 0
    check.close()


def _wait_published(lake: Lake, ingest: subprocess.Popen) -> None:
    from warehouse.exceptions import WarehouseError

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and ingest.poll() is None:
        try:
            open_analytics(lake).close()
            return
        except WarehouseError:
            time.sleep(0.2)
    raise AssertionError("ingest did not publish the analysts' lake within 60 s")


def _env(s) -> dict:
    from core.settings import child_env

    return child_env(s)
