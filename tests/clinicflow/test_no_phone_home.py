"""Nothing phones home: the main job, with default settings, connects to loopback only.

The demo (broker, a local Prefect server, ingest, outreach and data quality flows, the
report) runs under `strace -f -e trace=connect`, which records every connection attempt
of the CLI and of every process it starts; not one may go to a non-loopback address.
"""

from __future__ import annotations

import ipaddress
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from clinicflow.prefect_server import PrefectServer
from core.settings import child_env
from tests.kafka_helpers import free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]
INET = re.compile(r'inet_addr\("([^"]+)"\)|inet_pton\(AF_INET6, "([^"]+)"')


def remote_addresses(trace: str) -> list[str]:
    """Addresses of connect() calls that are not loopback (AF_UNIX and netlink are local by nature)."""
    out = []
    for line in trace.splitlines():
        if "connect(" not in line:
            continue
        for v4, v6 in INET.findall(line):
            ip = ipaddress.ip_address(v4 or v6)
            mapped = getattr(ip, "ipv4_mapped", None)
            if not (ip.is_loopback or (mapped is not None and mapped.is_loopback)):
                out.append(line.strip())
    return out


def test_remote_addresses_are_recognised():
    trace = """123 connect(3, {sa_family=AF_INET, sin_port=htons(443), sin_addr=inet_addr("104.16.1.1")}, 16) = -1
124 connect(4, {sa_family=AF_INET, sin_port=htons(19092), sin_addr=inet_addr("127.0.0.1")}, 16) = 0
125 connect(5, {sa_family=AF_INET6, sin6_port=htons(4200), inet_pton(AF_INET6, "::1", &sin6_addr)}, 28) = 0
126 connect(6, {sa_family=AF_INET6, sin6_port=htons(53), inet_pton(AF_INET6, "2001:db8::1", &sin6_addr)}, 28) = 0
127 connect(7, {sa_family=AF_UNIX, sun_path="/run/x"}, 110) = 0"""
    assert [line.split()[0] for line in remote_addresses(trace)] == ["123", "126"]


def reap(pid: int, timeout_s: float = 30) -> None:
    """Wait (bounded) for the traced server's strace to exit, so its trace is complete."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if os.waitpid(pid, os.WNOHANG) != (0, 0):
            return
        time.sleep(0.2)


def strace(trace: Path) -> list[str]:
    # seccomp-bpf stops the traced processes on connect() only, not on every system call.
    return ["strace", "-f", "--seccomp-bpf", "-qq", "-e", "trace=connect", "-o", str(trace)]


def test_the_main_job_connects_to_loopback_only(kafka_settings, tmp_path):
    if shutil.which("strace") is None:
        if os.environ.get("CI"):
            pytest.fail("strace is missing: .ci/run installs it (Debian package strace)")
        pytest.skip("strace is not installed here (apt-get install strace; CI installs it)")
    port = free_port()
    # The Prefect server outlives the demo by design, so it is traced on its own: started here,
    # as the demo would start it, and stopped when the demo is done.
    server = PrefectServer(
        port=port,
        home=kafka_settings.warehouse_path.parent / "prefect",
        launcher=tuple(strace(tmp_path / "server.trace")),
    )
    # Default settings as a user would have them: no analytics switches in the environment.
    base = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    for name in ("DO_NOT_TRACK", "GX_ANALYTICS_ENABLED", "CI"):
        base.pop(name, None)
    cmd = [
        *strace(tmp_path / "demo.trace"),
        sys.executable,
        "-m",
        "clinicflow",
        "demo",
        "--patients",
        "10",
        "--prefect-port",
        str(port),
    ]
    try:
        server.start(timeout_s=180, progress=lambda _: None)
        done = subprocess.run(cmd, env=child_env(kafka_settings, base), capture_output=True, text=True, timeout=900)
    finally:
        pid = int(server.pidfile.read_text())
        server.stop()
        reap(pid)
    assert done.returncode == 0, done.stderr[-3000:]
    demo_trace, server_trace = ((tmp_path / n).read_text() for n in ("demo.trace", "server.trace"))
    assert demo_trace.count("connect(") > 3, "strace saw the demo's connections"
    assert "killed by SIGTERM" in server_trace, "strace followed the server to its end"
    assert remote_addresses(demo_trace) == [] and remote_addresses(server_trace) == []
