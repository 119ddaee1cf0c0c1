"""SIGKILL during `clinicflow escalate`, against the real broker: every escalation is published under
exactly one id, and every id is on the topic. Bounded: at most 5 kills, each within a minute."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from collections import defaultdict
from datetime import timedelta

import pytest
from kafka import KafkaConsumer, TopicPartition

from care.escalation import escalation_id
from connectors.kafka import client_config
from core.settings import child_env
from tests.care.conftest import Clinic
from tests.care.test_lifecycle import at, checkin
from tests.kafka_helpers import read_all
from warehouse.db import open_warehouse

pytestmark = [pytest.mark.integration, pytest.mark.slow]
PATIENTS = 2500


def _wait_for_growth(s, target: int, proc, timeout_s: float) -> None:
    """Until the alerts topic holds `target` messages (or the process ended, or time ran out)."""
    consumer = KafkaConsumer(**client_config(s), enable_auto_commit=False)
    parts = [TopicPartition(s.topic_alerts, p) for p in consumer.partitions_for_topic(s.topic_alerts)]
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if sum(consumer.end_offsets(parts).values()) >= target:
                return
            time.sleep(0.005)
    finally:
        consumer.close()


def _state(s) -> tuple[int, int]:
    conn = open_warehouse(s)
    try:
        return conn.execute(
            """SELECT (SELECT count(*) FROM alert_escalations),
                      (SELECT count(*) FROM outbox o JOIN alert_escalations x ON x.message_id = o.message_id
                       WHERE o.sent_at IS NOT NULL)"""
        ).fetchall()[0]
    finally:
        conn.close()


def test_sigkill_during_escalation_publishes_each_escalation_once_per_id(kafka_settings):
    s = kafka_settings
    clinic = Clinic(s, quality=False)
    clinic.land(*(checkin(f"P{n:05d}", minutes=0) for n in range(PATIENTS)), clock=at(1))
    raised = clinic.conn.execute("SELECT count(*) FROM outbox WHERE kind = 'alert'").fetchall()[0][0]
    episodes = [e for (e,) in clinic.conn.execute("SELECT episode_id FROM alert_episodes").fetchall()]
    clinic.conn.close()
    assert len(episodes) == PATIENTS == raised
    expected = {escalation_id(e, level) for e in episodes for level in (1, 2)}

    cmd = [sys.executable, "-m", "clinicflow", "escalate", "--no-prefect", "--as-of", at(60).isoformat()]
    env = child_env(s)
    rnd, kills, states = random.Random(7), 0, []
    for round_ in range(5):
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if round_ < 2:  # anywhere: start-up, the escalation transaction, publishing
            time.sleep(rnd.uniform(0.5, 4.0))
        else:  # mid-publish: once the topic has grown by a random number of escalations
            _wait_for_growth(s, raised + rnd.randrange(1, len(expected) // 2), proc, timeout_s=60)
        if proc.poll() is not None:
            break
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        kills += 1
        states.append(_state(s))
    print(f"after each kill, (escalations recorded, escalation messages sent): {states}")
    final = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert final.returncode == 0, final.stderr[-2000:]
    assert kills >= 3, "the crash loop must really interrupt escalation"
    assert any(recorded == len(expected) and sent < recorded for recorded, sent in states), (
        "at least one kill came after the escalations were committed and before they were all marked sent"
    )

    conn = open_warehouse(s)
    try:
        rows = conn.execute("SELECT episode_id, level, message_id FROM alert_escalations").fetchall()
        assert conn.execute("SELECT count(*) FROM outbox WHERE sent_at IS NULL").fetchall()[0][0] == 0
    finally:
        conn.close()
    assert {m for _, _, m in rows} == expected and len(rows) == len(expected), "each level recorded once"

    published = [json.loads(r.value) for r in read_all(s, s.topic_alerts, expect=raised + len(expected))]
    escalated = [m for m in published if m["payload"]["action"] == "escalated"]
    ids_per_escalation = defaultdict(set)
    for m in escalated:
        ids_per_escalation[(m["payload"]["episode_id"], m["payload"]["escalation_level"])].add(m["event_id"])
    assert {m["event_id"] for m in escalated} == expected, "every escalation reached the topic"
    assert all(len(ids) == 1 for ids in ids_per_escalation.values()), "one id per escalation, however often sent"
    repeats = len(escalated) - len(expected)
    print(f"kills {kills}; escalations {len(expected)}; re-sent after a kill (same id): {repeats}")
    # A second run at a later clock finds nothing new: the pages are not repeated.
    again = subprocess.run(cmd[:-1] + [(at(60) + timedelta(minutes=5)).isoformat()], env=env, capture_output=True)
    assert again.returncode == 0 and json.loads(again.stdout.decode().strip().splitlines()[-1])["escalated"] == 0
