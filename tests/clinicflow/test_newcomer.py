"""What a new user meets first, tried as they would: the real CLI in a subprocess, in a fresh folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from schemas.examples import NOW, event, racemic_session, raw
from schemas.validate import Clock, validate_event

SECRET = "newcomer-secret-newcomer-secret-0123456789"


def cli(tmp_path, *args: str, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLINICFLOW_", "PREFECT_"))}
    env.update({"CLINICFLOW_PSEUDONYM_SECRET": SECRET, "PYTHONPATH": os.getcwd(), **(env_extra or {})})
    return subprocess.run(
        [sys.executable, "-m", "clinicflow", *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )


@pytest.fixture()
def history(tmp_path):
    f = tmp_path / "history.jsonl"
    f.write_bytes(b"\n".join(raw(event(t)) for t in ("patient.registered", "session.completed")) + b"\n")
    return f


def test_load_without_a_prefect_server_runs_the_stage_and_says_so(tmp_path, history):
    done = cli(tmp_path, "load", str(history))
    assert done.returncode == 0, done.stderr
    assert "running without Prefect" in done.stderr
    assert "telemetry" not in done.stderr.lower() and "temporary server" not in done.stderr.lower()
    assert json.loads(done.stdout)["landed"] == 2


def test_a_scratch_backfill_never_replaces_what_analysts_see(tmp_path, history):
    assert cli(tmp_path, "load", str(history)).returncode == 0
    default = tmp_path / "var" / "analytics.lake" / "catalog.sqlite"
    before = default.read_bytes()
    scratch = tmp_path / "scratch" / "backfill.duckdb"
    assert cli(tmp_path, "load", str(history), "--warehouse", str(scratch)).returncode == 0
    assert default.read_bytes() == before, "the default analysts' lake is untouched by the scratch load"
    assert (tmp_path / "scratch" / "backfill.analytics.lake" / "catalog.sqlite").exists(), "the scratch has its own"
    assert (tmp_path / "scratch" / "backfill.lake" / "catalog.sqlite").exists(), "and its own warehouse lake"


def test_load_exits_1_when_it_quarantined_lines(tmp_path):
    f = tmp_path / "mixed.jsonl"
    f.write_bytes(raw(event("patient.registered")) + b"\n{not json\n")
    done = cli(tmp_path, "load", str(f))
    assert done.returncode == 1, done.stderr
    assert json.loads(done.stdout)["quarantined_total"] == 1
    assert "clinicflow validate" in done.stderr


def test_a_misspelt_setting_in_dotenv_is_an_error(tmp_path, history):
    (tmp_path / ".env").write_text(f"CLINICFLOW_PSEUDONYM_SECRET={SECRET}\nCLINICFLOW_BATCH_MAX_EVNTS=5\n")
    done = cli(tmp_path, "load", str(history))
    assert done.returncode == 2, done.stderr
    assert "CLINICFLOW_BATCH_MAX_EVNTS" in done.stderr and ".env" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_byte_order_mark_at_the_start_of_a_file_is_not_line_1s_error(tmp_path):
    f = tmp_path / "bom.jsonl"
    f.write_bytes(b"\xef\xbb\xbf" + raw(event("patient.registered")) + b"\n" + raw(event("consent.updated")) + b"\n")
    done = cli(tmp_path, "validate", str(f))
    assert done.returncode == 0, done.stdout
    assert [json.loads(line)["valid"] for line in done.stdout.splitlines()] == [True, True]
    # On Kafka a message is not a file: a BOM there is rejected, and the error says so.
    rejected = validate_event(b"\xef\xbb\xbf" + raw(event("consent.updated")), Clock(NOW))
    assert "byte-order mark" in rejected.errors[0]["msg"]


@pytest.mark.parametrize("token", [b"NaN", b"Infinity", b"-Infinity"])
def test_a_non_finite_number_is_named_as_such(token):
    e = event("session.completed", body=racemic_session())
    data = raw(e).replace(b'"weight_kg": 80.5', b'"weight_kg": ' + token)
    [error] = validate_event(data, Clock(NOW)).errors
    assert error == {"loc": "payload.weight_kg", "msg": "Input should be a finite number"}
