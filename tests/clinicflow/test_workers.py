"""Several ingest workers in one consumer group: separate processes, each in its own working
directory, sharing one lake (the PostgreSQL catalog in the integration suite) and the real broker.

Loops are bounded in count and time.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from pydantic import SecretStr

from core.settings import child_env
from stages.ingest import run_ingest
from tests.clinicflow.test_ingest_faults import _wait_committed, check_exactly_once, workload
from tests.kafka_helpers import read_all
from tests.stages.test_backup import tables
from warehouse.db import open_warehouse
from warehouse.leases import holders

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def worker_settings(s, tmp_path: Path, name: str):
    """Worker `name`: its own folder (local file, analysts' lake, suite results), the shared lake."""
    shared = {"warehouse_data_path": tmp_path / "lake-data"}
    if s.warehouse_catalog is None:  # the embedded catalog: one file both workers open
        shared["warehouse_catalog"] = SecretStr(f"sqlite:{tmp_path / 'lake-catalog.sqlite'}")
    home = tmp_path / name
    home.mkdir()
    return s.model_copy(
        update={
            **shared,
            "warehouse_path": home / "clinic.duckdb",
            "quality_dir": home / "gx",
            "batch_max_events": 200,
            "batch_max_ms": 200,
            "consumer_session_timeout_ms": 2_000,
        }
    )


def start(ws) -> subprocess.Popen:
    home = ws.warehouse_path.parent
    cmd = [sys.executable, "-m", "clinicflow", "ingest", "--follow", "--no-prefect"]
    with open(home / "ingest.log", "wb") as log:
        return subprocess.Popen(cmd, env=child_env(ws), cwd=home, stdout=log, stderr=subprocess.STDOUT)


def held_by(ws) -> Counter:
    """Partitions per worker, as the lake's leases say."""
    conn = open_warehouse(ws, read_only=True)
    try:
        return Counter(h["worker_id"] for h in holders(conn, ws.consumer_group))
    finally:
        conn.close()


def wait_for(what: str, check, timeout_s: float, logs: list[Path]):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception:  # the lake may not exist yet while the first worker starts
            pass
        time.sleep(0.5)
    tails = "\n".join(f"--- {p}:\n{p.read_text()[-1500:]}" for p in logs if p.exists())
    raise AssertionError(f"{what}: not within {timeout_s:.0f}s\n{tails}")


def stop(proc: subprocess.Popen) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(timeout=90)
        except subprocess.TimeoutExpired:
            proc.kill()
    return proc.wait(timeout=30)


def alerts_once(ws) -> None:
    """Every alert raised is on the alerts topic (read committed), under its one id, and sent once,
    even after a SIGKILL or a pause: the killed or paused publisher's open round is aborted when
    the next one opens, and what it committed but had not marked is found there, not sent again."""
    conn = open_warehouse(ws, read_only=True)
    try:
        raised = {a for (a,) in conn.execute("SELECT alert_id FROM clinical_alerts").fetchall()}
    finally:
        conn.close()
    sent = [json.loads(r.value)["event_id"] for r in read_all(ws, ws.topic_alerts, expect=len(raised))]
    assert raised <= set(sent), "every alert raised was published"
    twice = [a for a, n in Counter(sent).items() if n > 1]
    print(f"alerts {len(raised)}; sent again under the same id: {len(twice)}")
    assert not twice, f"published twice: {twice[:5]}"


class Feeder(threading.Thread):
    """Publishes `chunks` workloads of `size` messages, one every `every_s`: steady traffic while
    workers join, die and pause. valid/invalid: what it published."""

    def __init__(self, s, chunks: int, size: int, every_s: float, seed: int):
        super().__init__(daemon=True)
        self.s, self.chunks, self.size, self.every_s, self.seed = s, chunks, size, every_s, seed
        self.valid: set[str] = set()
        self.invalid = 0

    def run(self) -> None:
        for i in range(self.chunks):
            valid, invalid = workload(self.s, self.size, seed=self.seed * 1000 + i)
            self.valid |= valid
            self.invalid += invalid
            time.sleep(self.every_s)


def landed(ws) -> int:
    conn = open_warehouse(ws, read_only=True)
    try:
        return conn.execute("SELECT count(*) FROM raw_events").fetchone()[0]
    finally:
        conn.close()


def finish(s, ws, procs, valid: set[str], invalid: int, logs) -> None:
    """Wait until everything published is committed, stop the workers, check exactly once."""
    try:
        _wait_committed(s, len(valid) + invalid, timeout_s=180)
    finally:
        codes = [stop(p) for p in procs]
    assert codes == [0] * len(procs), "\n".join(p.read_text()[-1500:] for p in logs)
    check_exactly_once(ws, valid, invalid)
    alerts_once(ws)


def test_two_workers_split_the_partitions_and_one_takes_over_from_a_killed_one(kafka_settings, tmp_path):
    s = kafka_settings
    a, b = worker_settings(s, tmp_path, "a"), worker_settings(s, tmp_path, "b")
    logs = [tmp_path / "a" / "ingest.log", tmp_path / "b" / "ingest.log"]
    valid, invalid = workload(s, 6000, seed=7)
    pa = start(a)
    wait_for("worker a holds partitions", lambda: held_by(a), 120, logs)
    pb = start(b)
    try:
        wait_for("both workers hold partitions", lambda: len(held_by(a)) == 2, 120, logs)
        split = held_by(a)
        assert landed(a) < len(valid), "the kill must come mid-run; grow the workload"
        pa.send_signal(signal.SIGKILL)  # wherever it is: polling, landing, publishing
        pa.wait(timeout=30)
        more_valid, more_invalid = workload(s, 1500, seed=8)
        wait_for("worker b holds every partition", lambda: len(held_by(b)) == 1, 60, logs)
        assert sum(held_by(b).values()) == len(s.inbound_topics) * s.topic_partitions
    except BaseException:
        pb.kill()
        raise
    finally:
        pa.kill()
    assert sorted(split.values()) != [0, len(s.inbound_topics) * s.topic_partitions], split
    finish(s, b, [pb], valid | more_valid, invalid + more_invalid, logs)
    mine, alone = distinct(tables(b)), distinct(tables(solo(s, tmp_path)))
    assert mine == alone, "the care state is what one worker alone derives"


SESSION_KEYED = ("checkin_day1", "rems_form_due")  # task ids from (clinic, session id, kind)


def distinct(tables: dict[str, list]) -> dict[str, set[str]]:
    """Each table's distinct rows, without the session-keyed tasks: the fault workload gives every
    patient the session id "sess-1", so those tasks collide across patients, and which patient's
    row a collision keeps depends on how events fell into batches, not on who landed them."""
    out = {name: {repr(row) for row in rows} for name, rows in tables.items()}
    out["followup_tasks"] = {repr(r) for r in tables["followup_tasks"] if r[1] not in SESSION_KEYED}
    return out


def solo(s, tmp_path: Path):
    """The same topics drained by one worker of another group into a lake of its own."""
    alone = s.model_copy(
        update={
            "warehouse_path": tmp_path / "solo" / "clinic.duckdb",
            "warehouse_catalog": None,
            "warehouse_data_path": None,
            "consumer_group": f"{s.consumer_group}-solo",
        }
    )
    run_ingest(alone, "drain")
    return alone


def test_a_worker_paused_past_its_session_lands_and_publishes_nothing_twice(kafka_settings, tmp_path):
    s = kafka_settings
    a, b = worker_settings(s, tmp_path, "a"), worker_settings(s, tmp_path, "b")
    logs = [tmp_path / "a" / "ingest.log", tmp_path / "b" / "ingest.log"]
    procs = [start(a)]
    wait_for("worker a holds partitions", lambda: held_by(a), 120, logs)
    procs.append(start(b))
    feeder = Feeder(s, chunks=16, size=250, every_s=0.5, seed=9)
    try:
        wait_for("both workers hold partitions", lambda: len(held_by(a)) == 2, 120, logs)
        feeder.start()
        time.sleep(2)  # both busy landing
        procs[0].send_signal(signal.SIGSTOP)
        wait_for("worker b takes every partition over", lambda: len(held_by(b)) == 1, 60, logs)
        time.sleep(1)
        procs[0].send_signal(signal.SIGCONT)  # a resumes with whatever it had in hand
        wait_for("worker a rejoins the group", lambda: len(held_by(b)) == 2, 90, logs)
        feeder.join(timeout=120)
    except BaseException:
        for p in procs:
            p.kill()
        raise
    finish(s, b, procs, feeder.valid, feeder.invalid, logs)


def test_a_third_worker_joining_during_steady_publishing_loses_nothing(kafka_settings, tmp_path):
    s = kafka_settings
    ws = [worker_settings(s, tmp_path, n) for n in ("a", "b", "c")]
    logs = [w.warehouse_path.parent / "ingest.log" for w in ws]
    procs = [start(ws[0])]
    wait_for("worker a holds partitions", lambda: held_by(ws[0]), 120, logs)
    procs.append(start(ws[1]))
    feeder = Feeder(s, chunks=12, size=250, every_s=0.5, seed=10)
    try:
        wait_for("two workers hold partitions", lambda: len(held_by(ws[0])) == 2, 120, logs)
        feeder.start()
        time.sleep(2)
        procs.append(start(ws[2]))
        wait_for("three workers hold partitions", lambda: len(held_by(ws[0])) == 3, 90, logs)
        feeder.join(timeout=120)
    except BaseException:
        for p in procs:
            p.kill()
        raise
    finish(s, ws[0], procs, feeder.valid, feeder.invalid, logs)
