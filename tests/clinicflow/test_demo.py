"""The main job end to end through a real local Prefect server: every flow run completes, twice,
and with default settings nothing in it phones home.

Run as the real CLI in a subprocess: a process that has talked to one Prefect
server keeps clients bound to it, so the demo must not share the test process. The first demo and
the server run under `strace -f -e trace=connect`, which records every connection attempt of the
CLI and of every process it starts; not one may go to a non-loopback address.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from clinicflow.prefect_server import PrefectServer
from core.settings import child_env
from tests.clinicflow.test_no_phone_home import reap, remote_addresses, strace, tracing
from tests.kafka_helpers import free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def demo(s, port: int, *extra: str, launcher: tuple[str, ...] = ()) -> tuple[dict, str]:
    # Default settings as a user would have them: no analytics switches in the environment.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    for name in ("DO_NOT_TRACK", "GX_ANALYTICS_ENABLED", "CI"):
        env.pop(name, None)
    done = subprocess.run(
        [
            *launcher,
            sys.executable,
            "-m",
            "clinicflow",
            "demo",
            "--patients",
            "25",
            "--prefect-port",
            str(port),
            *extra,
        ],
        env=child_env(s, env),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1]), done.stderr


def test_demo_runs_every_flow_through_prefect_twice_and_connects_to_loopback_only(kafka_settings, tmp_path):
    traced = tracing()
    port = free_port()
    # The Prefect server outlives the demo by design, so it is traced on its own: started here,
    # as the demo would start it, and stopped when both demos are done.
    server = PrefectServer(
        port=port,
        home=kafka_settings.warehouse_path.parent / "prefect",
        launcher=tuple(strace(tmp_path / "server.trace")) if traced else (),
    )
    try:
        server.start(timeout_s=180, progress=lambda _: None)
        first, text = demo(kafka_settings, port, launcher=tuple(strace(tmp_path / "demo.trace")) if traced else ())
        second, _ = demo(kafka_settings, port, "--workers", "2")
    finally:
        pid = int(server.pidfile.read_text())
        server.stop()
        reap(pid)
    if traced:
        demo_trace, server_trace = ((tmp_path / n).read_text() for n in ("demo.trace", "server.trace"))
        assert demo_trace.count("connect(") > 3, "strace saw the demo's connections"
        assert "killed by SIGTERM" in server_trace, "strace followed the server to its end"
        assert remote_addresses(demo_trace) == [] and remote_addresses(server_trace) == []
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
