"""Fault injection against the real broker: SIGKILLed ingest, a broker that goes away, SIGTERM in follow mode.

Loops are bounded in count and time.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import threading
import time

import pytest
from kafka import KafkaConsumer, TopicPartition

from connectors.kafka import client_config, ensure_topics
from stages.ingest import run_ingest
from tests.factories import event, raw
from tests.kafka_helpers import private_broker, produce, read_all
from warehouse.db import open_warehouse
from warehouse.reconcile import reconciliation

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def workload(s, n: int, seed: int = 1):
    """n messages over the three inbound topics, about 5% invalid; returns (valid ids, invalid count)."""
    rnd = random.Random(seed)
    valid, invalid = set(), 0
    per_topic = {s.topic_intake: [], s.topic_sessions: [], s.topic_followups: []}
    kinds = [
        ("consent.updated", s.topic_intake),
        ("session.completed", s.topic_sessions),
        ("checkin.completed", s.topic_followups),
    ]
    for i in range(n):
        etype, topic = rnd.choice(kinds)
        pid = f"P{rnd.randrange(500):04d}"
        if rnd.random() < 0.05:
            per_topic[topic].append((pid.encode(), b'{"broken": ' + str(i).encode()))
            invalid += 1
        else:
            e = event(etype, patient_id=pid)
            valid.add(e["event_id"])
            per_topic[topic].append((pid.encode(), raw(e)))
    for topic, items in per_topic.items():
        produce(s, topic, items)
    return valid, invalid


def env_for(s) -> dict:
    """The child ingest sees exactly the test's settings, with small batches so crashes land mid-run."""
    from core.settings import child_env

    # A short session: a restarted drain waits that long for the killed one's partitions.
    update = {"batch_max_events": 150, "batch_max_ms": 200, "consumer_session_timeout_ms": 2_000}
    return child_env(s.model_copy(update=update))


def ingest_cmd(mode: str) -> list[str]:
    return [sys.executable, "-m", "clinicflow", "ingest", f"--{mode}", "--no-prefect"]


def check_exactly_once(s, valid: set[str], invalid: int) -> None:
    conn = open_warehouse(s)
    try:
        ids = [r[0] for r in conn.execute("SELECT event_id FROM raw_events").fetchall()]
        assert len(ids) == len(set(ids)) and set(ids) == valid, "every valid event landed exactly once"
        assert conn.execute("SELECT count(*) FROM quarantine").fetchall()[0][0] == invalid
        rec = reconciliation(conn)
        assert sum(r["consumed"] for r in rec) == len(valid) + invalid, "every offset consumed exactly once"
        assert all(r["balanced"] for r in rec) and sum(r["duplicates"] for r in rec) == 0
        assert conn.execute("SELECT count(*) FROM outbox WHERE sent_at IS NULL").fetchall()[0][0] == 0
    finally:
        conn.close()
    dlq_sources = {
        tuple(dict(r.headers)[f"clinicflow.source.{h}"] for h in ("topic", "partition", "offset"))
        for r in read_all(s, s.topic_dlq, expect=invalid)
    }
    assert len(dlq_sources) == invalid, "each rejection dead-lettered (at least once, deduplicable by source)"


def test_sigkill_at_random_points_then_restart_lands_everything_once(kafka_settings):
    s = kafka_settings
    valid, invalid = workload(s, 6000)
    rnd = random.Random(42)
    env = env_for(s)
    kills = 0
    for _ in range(6):  # bounded: at most 6 crashes
        proc = subprocess.Popen(ingest_cmd("drain"), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rnd.uniform(1.0, 4.0))
        if proc.poll() is not None:
            break
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        kills += 1
    final = subprocess.run(ingest_cmd("drain"), env=env, capture_output=True, text=True, timeout=300)
    assert final.returncode == 0, final.stderr[-2000:]
    assert kills >= 2, "the crash loop must really interrupt ingest"
    check_exactly_once(s, valid, invalid)


def test_sigterm_in_follow_mode_finishes_the_batch_and_exits_cleanly(kafka_settings):
    s = kafka_settings
    valid, invalid = workload(s, 1500, seed=2)
    proc = subprocess.Popen(ingest_cmd("follow"), env=env_for(s), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        _wait_committed(s, len(valid) + invalid, timeout_s=120)
        more_valid, more_invalid = workload(s, 300, seed=3)  # arrives while we stop
        time.sleep(0.3)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err[-2000:]
    run_ingest(s, "drain")  # whatever arrived after the stop
    check_exactly_once(s, valid | more_valid, invalid + more_invalid)


def _wait_committed(s, total: int, timeout_s: float) -> None:
    c = KafkaConsumer(**client_config(s), group_id=s.consumer_group, enable_auto_commit=False)
    parts = [TopicPartition(t, p) for t in s.inbound_topics for p in c.partitions_for_topic(t)]
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            done = sum(c.committed(tp) or 0 for tp in parts)
            if done >= total:
                return
            time.sleep(0.5)
        raise AssertionError(f"follow mode committed {done} of {total} in {timeout_s}s")
    finally:
        c.close()


def test_broker_stopped_mid_run_ingest_waits_and_finishes(settings, tmp_path):
    with private_broker(tmp_path / "kafka") as broker:
        s = settings.model_copy(
            update={"kafka_bootstrap_servers": broker.bootstrap, "batch_max_events": 100, "batch_max_ms": 100}
        )
        ensure_topics(s, s.all_topics)
        valid, invalid = workload(s, 4000, seed=4)
        result, failure = {}, []
        landing = threading.Event()

        def ingest():
            try:
                result["report"] = run_ingest(s, "drain", progress=lambda _: landing.set())
            except Exception as e:  # surfaced below
                failure.append(e)

        t = threading.Thread(target=ingest)
        t.start()
        # Mid-run: after the first batch has landed, not while ingest is still starting up.
        assert landing.wait(timeout=120), f"no batch landed within 120 s ({failure})"
        assert t.is_alive(), f"ingest finished before the broker could be stopped; grow the workload ({failure})"
        broker.stop()
        time.sleep(5)
        broker.start(timeout_s=120)
        t.join(timeout=300)
        assert not t.is_alive() and not failure, failure
        check_exactly_once(s, valid, invalid)
