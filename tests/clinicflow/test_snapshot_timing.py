"""Analysts see their lake from the start of ingest, and status reads the warehouse (and lag from
Kafka's committed offsets) while ingest writes it."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import pytest

from core.settings import child_env
from stages.ingest import StopFlag, run_ingest
from tests.clinicflow.test_ingest_faults import _wait_committed
from tests.factories import event, raw
from tests.kafka_helpers import produce
from warehouse.db import Lake


@pytest.mark.integration
def test_follow_refreshes_the_analysts_lake_at_start_and_status_reads_beside_it(kafka_settings):
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
        while not Lake.analysts(s).exists() and time.monotonic() < deadline and t.is_alive():
            time.sleep(0.2)
        assert Lake.analysts(s).exists(), f"no analysts' lake while ingest runs ({failure})"
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
        assert report["warehouse"]["available"], "readers attach the lake beside the writer"
        assert report["warehouse"]["landed_total"] >= len(events), report["warehouse"]
        assert report["lag_source"] == "warehouse offsets", "the offsets stored with the batches, read beside ingest"
        assert sum(report["consumer_lag"].values()) == 0, report["consumer_lag"]
    finally:
        stop.set()
        t.join(timeout=60)
    assert not failure, failure
