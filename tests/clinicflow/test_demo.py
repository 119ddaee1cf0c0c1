"""The main job end to end through a real local Prefect server: every flow run completes, twice.

Run as the real CLI in a subprocess: a process that has talked to one Prefect
server keeps clients bound to it, so the demo must not share the test process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from clinicflow.prefect_server import PrefectServer
from core.settings import child_env
from tests.kafka_helpers import free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def demo(s, port: int, *extra: str) -> tuple[dict, str]:
    env = child_env(s, {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")})
    done = subprocess.run(
        [sys.executable, "-m", "clinicflow", "demo", "--patients", "25", "--prefect-port", str(port), *extra],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1]), done.stderr


def test_demo_runs_every_flow_through_prefect_and_twice_is_fine(kafka_settings):
    port = free_port()
    try:
        first, text = demo(kafka_settings, port)
        second, _ = demo(kafka_settings, port, "--workers", "2")
    finally:
        PrefectServer(port=port, home=kafka_settings.warehouse_path.parent / "prefect").stop()
    assert {r["flow"] for r in first["flow_runs"]} == {"ingest", "outreach", "escalation", "data-quality"}
    assert all(r["state"] == "Completed" for r in first["flow_runs"] + second["flow_runs"])
    assert first["ingest"]["landed"] > 500 and second["ingest"]["landed"] == 0
    assert second["ingest"]["duplicates"] == first["ingest"]["landed"]
    # The second run's two workers shared the partitions of one consumer group between them.
    shares = second["ingest"]["workers"]
    s = kafka_settings
    assert len(shares) == 2 and sum(w["read"] for w in shares) == second["ingest"]["read"]
    assert len(set().union(*(w["partitions"] for w in shares))) == len(s.inbound_topics) * s.topic_partitions
    queue, episodes = first["queue_before"], first["figures"]["episodes"]
    assert 0 < queue["open_episodes"] < queue["open_alerts"], "episodes gather repeats into one queue item"
    assert first["oncall"]["answers"] > 0 and episodes.get("resolved", 0) > 0
    assert sum(first["figures"]["escalations"].values()) > 0, "some episodes were left unanswered"
    assert first["figures"]["queue_after"]["open_episodes"] < queue["open_episodes"]
    for needle in (
        "What happened",
        "response rate, ",
        "alert episodes by status",
        "escalations (nobody acknowledged in time)",
        "Where to look next",
        f"127.0.0.1:{port}",
        "data docs",
    ):
        assert needle in text, needle
    assert first["figures"]["outcomes"] and first["quality"]["success"]
