"""`clinicflow postgres up|down|status`: a real PostgreSQL server from Debian's package, on loopback only."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from core.settings import child_env
from tests.kafka_helpers import free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def listening_addresses(port: int) -> set[str]:
    """Local addresses with a TCP socket listening on `port` (from /proc, IPv4 and IPv6)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for line in list(f)[1:]:
                local, state = line.split()[1], line.split()[3]
                addr, hexport = local.split(":")
                if state == "0A" and int(hexport, 16) == port:
                    found.add(addr)
    return found


def cli(s, *args) -> subprocess.CompletedProcess:
    """The CLI in a folder of its own: the project's .env must not supply what the test leaves out."""
    env = child_env(s, dict(os.environ))
    cwd = s.local_postgres_dir.parent
    return subprocess.run([sys.executable, "-m", "clinicflow", *args], env=env, capture_output=True, text=True,
                          timeout=180, cwd=cwd)  # fmt: skip


def test_up_is_idempotent_listens_on_loopback_only_and_down_stops_it(settings, tmp_path):
    port = free_port()
    s = settings.model_copy(
        update={
            "local_postgres_dir": tmp_path / "pg",
            "local_postgres_port": port,
            "postgres_password": "pw-" + "x" * 20,
        }
    )
    try:
        first = cli(s, "postgres", "up")
        assert first.returncode == 0, first.stderr[-2000:]
        assert "initialised a PostgreSQL cluster" in first.stderr
        again = cli(s, "postgres", "up")
        assert again.returncode == 0 and "initialised" not in again.stderr, "a second up changes nothing"
        st = json.loads(cli(s, "postgres", "status", "--json").stdout)
        assert st["ready"] and st["database"] == "clinicflow_lake" and st["address"] == f"127.0.0.1:{port}"
        assert listening_addresses(port) == {"0100007F"}, "127.0.0.1 only"
        assert "pw-xxxx" not in first.stderr + first.stdout, "the password is never printed"
    finally:
        down = cli(s, "postgres", "down")
    assert down.returncode == 0 and "stopped" in down.stderr
    after = cli(s, "postgres", "status")
    assert after.returncode == 1 and "not running" in after.stderr
    assert cli(s, "postgres", "down").stderr.strip().endswith("was not running")


def test_without_a_password_it_fails_with_the_fix(settings, tmp_path):
    s = settings.model_copy(update={"local_postgres_dir": tmp_path / "pg", "postgres_password": None})
    done = cli(s, "postgres", "up")
    assert done.returncode == 2 and "CLINICFLOW_POSTGRES_PASSWORD" in done.stderr
