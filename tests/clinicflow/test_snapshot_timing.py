"""Analysts see a snapshot from the start of ingest, leftovers of a killed snapshot are cleaned, and
status measures lag from Kafka's committed offsets while ingest holds the warehouse."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import pytest

from core.settings import child_env
from stages.ingest import StopFlag, run_ingest, writer
from tests.clinicflow.test_ingest_faults import _wait_committed
from tests.factories import event, raw
from tests.kafka_helpers import produce


def test_leftovers_of_a_killed_snapshot_are_removed_when_a_writer_opens(settings):
    versions = settings.analytics_snapshot_path.with_name("analytics.snapshots")
    versions.mkdir(parents=True)
    left = [
        versions / ".123.duckdb.tmp",
        versions / ".123.duckdb.tmp.wal",
        settings.analytics_snapshot_path.with_name(".analytics.duckdb.999.link"),
    ]
    for p in left:
        p.write_bytes(b"x" * 1000)
    keep = versions / "124.duckdb"
    keep.write_bytes(b"published")
    with writer(settings, publish_snapshot=False):
        pass
    assert not any(p.exists() for p in left) and keep.exists()


@pytest.mark.integration
def test_follow_publishes_a_snapshot_at_start_and_status_reads_lag_from_kafka_meanwhile(kafka_settings):
    s = kafka_settings
    stop, failure = StopFlag(), []

    def follow():
        try:
            run_ingest(s, "follow", stop=stop)
        except Exception as e:  # reported by the assertion below
            failure.append(e)

    t = threading.Thread(target=follow)
    t.start()
    try:
        deadline = time.monotonic() + 60
        while not s.analytics_snapshot_path.exists() and time.monotonic() < deadline and t.is_alive():
            time.sleep(0.2)
        assert s.analytics_snapshot_path.exists(), f"no snapshot while ingest runs ({failure})"
        events = [event("consent.updated", patient_id=f"P{i:04d}") for i in range(300)]
        produce(s, s.topic_intake, [(e["patient_id"].encode(), raw(e)) for e in events])
        _wait_committed(s, len(events), timeout_s=60)
        status = subprocess.run(
            [sys.executable, "-m", "clinicflow", "status", "--json"],
            env=child_env(s),
            capture_output=True,
            text=True,
            timeout=60,
        )
        report = json.loads(status.stdout)
        assert not report["warehouse"]["available"], "ingest holds the warehouse"
        assert report["lag_source"].startswith("Kafka committed offsets")
        assert sum(report["consumer_lag"].values()) == 0, report["consumer_lag"]
    finally:
        stop.set()
        t.join(timeout=60)
    assert not failure, failure
