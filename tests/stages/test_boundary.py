"""Failures reach a CLI user as one line and exit 1 or 2, naming the stage, the cause and the fix.

Each scenario is real: an unreachable broker, a broker that refuses the password, a missing
topic, a damaged warehouse file, a read-only warehouse folder and a full disk (tmpfs mounts,
which need root; CI runs as root).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import SecretStr

from connectors.kafka import ensure_topics
from core.settings import child_env
from schemas.examples import event, raw
from tests.kafka_helpers import free_port, private_broker


def run(settings, *args: str) -> subprocess.CompletedProcess:
    env = child_env(settings, {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")})
    return subprocess.run(
        [sys.executable, "-m", "clinicflow", *args], env=env, capture_output=True, text=True, timeout=300
    )


def one_line(done: subprocess.CompletedProcess, code: int, *needles: str) -> str:
    assert done.returncode == code, (done.returncode, done.stderr[-2000:])
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in done.stderr, done.stderr[-2000:]
    for needle in needles:
        assert needle in errors[0], (needle, errors[0])
    return errors[0]


def history(tmp_path: Path, n: int = 3) -> Path:
    f = tmp_path / "h.jsonl"
    f.write_bytes(b"\n".join(raw(event("consent.updated", patient_id=f"P{i:05d}")) for i in range(n)) + b"\n")
    return f


@pytest.fixture()
def mount(tmp_path):
    """mount(options) -> a fresh tmpfs folder; unmounted after the test."""
    points = []

    def make(options: str) -> Path:
        point = tmp_path / f"mnt{len(points)}"
        point.mkdir()
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(point)], capture_output=True)
        if done.returncode != 0:
            if os.environ.get("CI"):
                pytest.fail(f"cannot mount a tmpfs (CI runs as root): {done.stderr.decode()}")
            pytest.skip("mounting a tmpfs needs root")
        points.append(point)
        return point

    yield make
    for point in points:
        subprocess.run(["umount", "-l", str(point)], capture_output=True)


def test_a_damaged_warehouse_file(settings, tmp_path):
    settings.warehouse_path.write_bytes(b"not a database " * 1000)
    one_line(run(settings, "load", str(history(tmp_path))), 1, "load:", "damaged", "restore it from a backup")


def test_a_read_only_warehouse_folder(settings, tmp_path, mount):
    folder = mount("ro,size=1m")
    s = settings.model_copy(update={"warehouse_path": folder / "clinic.duckdb"})
    one_line(run(s, "load", str(history(tmp_path))), 1, "load:", "must be writable")


def test_a_full_disk(settings, tmp_path, mount):
    folder = mount("size=4m")
    s = settings.model_copy(update={"warehouse_path": folder / "clinic.duckdb"})
    one_line(run(s, "load", str(history(tmp_path, 30_000))), 1, "load:", "free space")


@pytest.mark.integration
def test_an_unreachable_broker(settings, tmp_path):
    s = settings.model_copy(
        update={
            "kafka_bootstrap_servers": f"127.0.0.1:{free_port()}",
            "kafka_request_timeout_ms": 2000,
            "kafka_bootstrap_timeout_ms": 3000,
        }
    )
    one_line(run(s, "ingest", "--drain", "--no-prefect"), 1, "ingest:", "CLINICFLOW_KAFKA_BOOTSTRAP_SERVERS")


@pytest.mark.integration
def test_a_missing_topic(kafka_settings):
    s = kafka_settings.model_copy(update={"topic_sessions": "no.such.topic.v1"})
    one_line(run(s, "ingest", "--drain", "--no-prefect"), 1, "ingest:", "no.such.topic.v1", "topics create")


@pytest.mark.integration
@pytest.mark.slow
def test_a_wrong_sasl_password(settings, tmp_path):
    users = {"admin": "admin-secret", "clinicflow": "right-password"}
    with private_broker(tmp_path / "kafka", sasl_users=users) as broker:
        common = {
            "kafka_bootstrap_servers": broker.bootstrap,
            "kafka_security_protocol": "SASL_PLAINTEXT",
            "kafka_sasl_mechanism": "PLAIN",
            "kafka_sasl_username": "clinicflow",
        }
        good = settings.model_copy(update={**common, "kafka_sasl_password": SecretStr("right-password")})
        ensure_topics(good, good.all_topics)
        bad = settings.model_copy(
            update={**common, "kafka_sasl_password": SecretStr("wrong-password"), "kafka_bootstrap_timeout_ms": 3000}
        )
        # kafka-python reports a refused password during bootstrap as a timeout: the line names both causes.
        line = one_line(run(bad, "ingest", "--drain", "--no-prefect"), 1, "ingest:", "CLINICFLOW_KAFKA_SASL_PASSWORD")
        assert "wrong-password" not in line, "secrets are never printed"
        assert run(good, "ingest", "--drain", "--no-prefect").returncode == 0, "the right password works"
