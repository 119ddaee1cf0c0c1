"""The main job end to end through a real local Prefect server: every flow run completes."""

from __future__ import annotations

import socket

import pytest

from clinicflow.demo import run_demo
from clinicflow.prefect_server import PrefectServer

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_demo_runs_every_flow_through_prefect_and_twice_is_fine(kafka_settings, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = PrefectServer(port=port, home=tmp_path / "prefect")
    lines: list[str] = []
    try:
        first = run_demo(kafka_settings, 25, lines.append, server)
        second = run_demo(kafka_settings, 25, lines.append, server)
    finally:
        server.stop()
    assert {r["flow"] for r in first["flow_runs"]} == {"ingest", "outreach", "data-quality"}
    assert all(r["state"] == "Completed" for r in first["flow_runs"] + second["flow_runs"])
    assert first["ingest"]["landed"] > 500 and second["ingest"]["landed"] == 0
    assert second["ingest"]["duplicates"] == first["ingest"]["landed"]
    text = "\n".join(lines)
    for needle in ("What happened", "response rate, ", "Where to look next", f"127.0.0.1:{port}", "data docs"):
        assert needle in text, needle
    assert first["figures"]["outcomes"] and first["quality"]["success"]
