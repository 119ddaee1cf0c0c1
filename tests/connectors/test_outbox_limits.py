"""A rejected message near the size limit, or a record the broker refuses, never blocks the outbox.

Real broker (default message.max.bytes, 1,048,588), real DuckDB file.
"""

from __future__ import annotations

import json
from functools import partial

import pytest

from connectors.kafka import make_producer
from connectors.publisher import TRUNCATED, fit_record, send_records
from stages.ingest import run_ingest
from tests.factories import event, raw
from tests.kafka_helpers import produce, read_all
from warehouse import outbox
from warehouse.db import open_warehouse
from warehouse.reconcile import reconciliation

pytestmark = pytest.mark.integration


def test_fit_record_keeps_small_records_whole_and_truncates_large_ones():
    headers = [("clinicflow.errors", b"[]")]
    assert fit_record(b"k", b"x" * 100, headers, 10_000) == (b"x" * 100, headers)
    value, out = fit_record(b"k", b"x" * 20_000, headers, 10_000)
    assert len(value) + sum(len(k) + len(v) for k, v in out) < 10_000 - 256
    assert dict(out)[TRUNCATED].startswith(b"original_bytes=20000")
    _, capped = fit_record(b"k", b"x", [("clinicflow.errors", b"e" * 100_000)], 1_048_588)
    assert len(dict(capped)["clinicflow.errors"]) == 16_384


def test_a_rejected_message_near_one_mib_is_dead_lettered_truncated_and_ingest_goes_on(kafka_settings):
    s = kafka_settings
    big = json.dumps({"event_type": "session.completed", "padding": "x" * 1_048_300}).encode()
    assert len(big) < s.max_message_bytes, "under the pipeline's limit, so it is parsed and rejected"
    after = event("consent.updated", patient_id="P0002")
    producer = make_producer(s)  # allows records up to 2 MiB on the client side
    producer.send(s.topic_sessions, key=b"P0001", value=big).get(timeout=30)
    producer.close()
    produce(s, s.topic_intake, [(b"P0002", raw(after))])

    report = run_ingest(s, "drain")
    assert report.landed == 1 and sum(report.quarantined.values()) == 1
    [copy] = read_all(s, s.topic_dlq, expect=1)
    headers = dict(copy.headers)
    assert b"original_bytes=%d" % len(big) in headers[TRUNCATED]
    assert big.startswith(copy.value) and len(copy.value) < len(big)
    conn = open_warehouse(s)
    try:
        assert conn.execute("SELECT raw FROM quarantine").fetchall() == [(big,)], "full bytes stay in quarantine"
        assert conn.execute("SELECT count(*) FROM outbox WHERE sent_at IS NULL").fetchall()[0][0] == 0
        assert all(r["balanced"] for r in reconciliation(conn))
    finally:
        conn.close()


def test_a_record_the_broker_refuses_for_good_is_parked_and_the_rest_is_sent(kafka_settings):
    s = kafka_settings
    conn = open_warehouse(s)
    rows = [
        ("a-1", "alert", s.topic_alerts, b"P1", b"first"),
        ("a-2", "alert", s.topic_alerts, b"P1", b"y" * 1_500_000),  # over the broker's limit
        ("a-3", "alert", s.topic_alerts, b"P1", b"third"),
    ]
    for i, (mid, kind, topic, key, value) in enumerate(rows):
        conn.execute(
            """INSERT INTO outbox (message_id, kind, topic, "key", value, headers, created_at)
                        VALUES (?, ?, ?, ?, ?, '[]', TIMESTAMPTZ '2026-01-01' + to_seconds(?))""",
            [mid, kind, topic, key, value, i],
        )
    producer = make_producer(s)
    try:
        send = partial(send_records, producer, max_bytes=s.kafka_max_message_bytes)
        assert outbox.publish(conn, send) == 2
        assert outbox.publish(conn, send) == 0, "a parked row is not tried again and again"
    finally:
        producer.close()
    [(mid, error)] = conn.execute("SELECT message_id, park_error FROM outbox WHERE parked_at IS NOT NULL").fetchall()
    assert mid == "a-2" and "MessageSizeTooLarge" in error
    from warehouse.status import warehouse_figures

    figures = warehouse_figures(conn, s.consumer_group)
    assert [m["message_id"] for m in figures["outbox_parked"]] == ["a-2"] and figures["outbox_unsent"] == 0
    conn.close()
    assert sorted(r.value for r in read_all(s, s.topic_alerts, expect=2)) == [b"first", b"third"]
