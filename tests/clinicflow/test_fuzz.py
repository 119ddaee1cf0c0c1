"""Fuzzing the running pipeline: 20,000 mutated messages of every event type through `ingest --follow`.

Bit flips, truncations, extreme values, odd characters, oversized values, repeated keys, wrong
types and wrong topics, beside untouched valid events. Whatever arrives, ingest keeps running,
prints no traceback, and every message read is accounted for (reconciliation balanced).
Bounded: one seeded set of messages, one ingest process, waits capped in time.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess

import pytest

from schemas.events import FAMILY_OF, INBOUND_FAMILIES
from tests.clinicflow.test_ingest_faults import _wait_committed, env_for, ingest_cmd
from tests.factories import ALL_TYPES, event, racemic_session
from tests.kafka_helpers import produce
from warehouse.db import open_warehouse
from warehouse.reconcile import reconciliation

pytestmark = [pytest.mark.integration, pytest.mark.slow]
N = 20_000
# Produced types are sent to inbound topics on purpose: they must come back as wrong_topic.
FAMILY = {**FAMILY_OF, "outreach.requested": "intake", "clinical.alert": "followups"}
EXTREME_TIMES = [
    "0001-01-01T00:00:00Z",
    "0001-01-01T00:00:00+23:59",
    "9999-12-31T23:59:59Z",
    "9999-12-31T23:59:00-23:59",
    "1999-12-31T23:59:59Z",
    "2026-02-28T12:00:00-23:59",
    "2026-02-28T12:00:00+23:59",
    "2100-01-01T00:00:00Z",
    "2026-02-30T10:00:00Z",
]
EXTREME_NUMBERS = [0, -1, 2**31, 2**63, 10**30, -(10**30), 1e308, -1e-308, 0.1, True, None]
ODD = ["\u0000", "\u200b", "\u202e", "\ufeff", "\U0001f489", "\ud800", "\\", '"', "\n", "é" * 3, "\u0085"]


def leaves(node, path=()):
    """Every (path, value) of a JSON value, to pick a field to mutate."""
    if isinstance(node, dict):
        for k, v in node.items():
            yield from leaves(v, (*path, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from leaves(v, (*path, i))
    yield path, node


def put(doc, path, value):
    node = doc
    for p in path[:-1]:
        node = node[p]
    node[path[-1]] = value


def base(rnd: random.Random, i: int) -> dict:
    etype = rnd.choice(ALL_TYPES)
    pid = f"F{rnd.randrange(2000):05d}"
    if etype == "session.completed" and rnd.random() < 0.5:
        return event(etype, patient_id=pid, body=racemic_session())
    return (
        event(etype, patient_id=pid, session_id=f"s-{i}")
        if "session_id" in str(event(etype))
        else event(etype, patient_id=pid)
    )


def mutate(rnd: random.Random, e: dict) -> bytes:
    kind = rnd.choice(
        [
            "valid",
            "valid",
            "valid",
            "bitflip",
            "truncate",
            "time",
            "number",
            "odd",
            "oversize",
            "dupkey",
            "type",
            "drop",
        ]
    )
    fields = [p for p, _ in leaves(e) if p]
    if kind == "valid":
        return json.dumps(e).encode()
    if kind in ("bitflip", "truncate"):
        data = bytearray(json.dumps(e).encode())
        if kind == "truncate":
            return bytes(data[: rnd.randrange(len(data))])
        for _ in range(rnd.randint(1, 4)):
            pos = rnd.randrange(len(data))
            data[pos] ^= 1 << rnd.randrange(8)
        return bytes(data)
    path = rnd.choice(fields)
    if kind == "time":
        stamps = [p for p, v in leaves(e) if isinstance(v, str) and v[:2] in ("20", "19")] or [path]
        put(e, rnd.choice(stamps), rnd.choice(EXTREME_TIMES))
    elif kind == "number":
        put(e, path, rnd.choice(EXTREME_NUMBERS))
    elif kind == "odd":
        strings = [p for p, v in leaves(e) if isinstance(v, str)]
        p = rnd.choice(strings)
        value = str(dict(leaves(e))[p])
        cut = rnd.randrange(len(value) + 1)
        put(e, p, value[:cut] + rnd.choice(ODD) + value[cut:])
        return json.dumps(e, ensure_ascii=rnd.random() < 0.5).encode("utf-8", "surrogatepass")
    elif kind == "oversize":
        # A few near the 1 MiB limit (each is a megabyte to publish, land and dead-letter).
        put(e, path, "x" * (1_040_000 if rnd.random() < 0.03 else rnd.choice([200, 70_000])))
    elif kind == "dupkey":
        data = json.dumps(e)
        return data.replace('"patient_id": ', '"patient_id": "F99999", "patient_id": ', 1).encode()
    elif kind == "type":
        put(e, path, rnd.choice([[], {}, None, "", [1, 2], {"a": 1}]))
    elif kind == "drop" and len(path) >= 1:
        node = e
        for p in path[:-1]:
            node = node[p]
        if isinstance(node, dict):
            node.pop(path[-1], None)
    return json.dumps(e).encode()


def test_twenty_thousand_mutated_messages_leave_ingest_running_and_the_books_balanced(kafka_settings):
    s = kafka_settings
    rnd = random.Random(20261128)
    topics = dict(zip(INBOUND_FAMILIES, s.inbound_topics))
    per_topic: dict[str, list] = {t: [] for t in topics.values()}
    for i in range(N):
        e = base(rnd, i)
        family = FAMILY[e["event_type"]] if rnd.random() > 0.02 else rnd.choice(list(topics))
        per_topic[topics[family]].append((e["patient_id"].encode(), mutate(rnd, e)))
    env = env_for(s.model_copy(update={"batch_max_events": 2000}))
    proc = subprocess.Popen(ingest_cmd("follow"), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        for topic, items in per_topic.items():
            produce(s, topic, items)
        _wait_committed(s, N, timeout_s=400)
        assert proc.poll() is None, "ingest is still running after the fuzzed messages"
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    text = err.decode(errors="replace")
    assert proc.returncode == 0 and "Traceback" not in text, text[-3000:]
    conn = open_warehouse(s)
    try:
        rec = reconciliation(conn)
        assert all(r["balanced"] for r in rec)
        assert sum(r["consumed"] for r in rec) == N
        landed, quarantined = (
            conn.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0] for t in ("raw_events", "quarantine")
        )
        dup = sum(r["duplicates"] for r in rec)
        assert landed + quarantined + dup == N and landed > N // 6 and quarantined > N // 2
        kinds = dict(conn.execute("SELECT error_kind, count(*) FROM quarantine GROUP BY 1").fetchall())
        print(f"\nfuzz: {N} messages, {landed} landed, {dup} duplicates, quarantined by kind {kinds}")
        assert (
            conn.execute("SELECT count(*) FROM outbox WHERE sent_at IS NULL AND parked_at IS NULL").fetchall()[0][0]
            == 0
        )
    finally:
        conn.close()
