"""The ingest consumer against the real broker: what a follower's batch is."""

from __future__ import annotations

import time

import pytest

from connectors.consumer import KafkaSource
from connectors.kafka import make_producer

pytestmark = pytest.mark.integration

WINDOW_MS = 60_000


def test_a_followers_batch_is_what_has_arrived_not_a_whole_polling_window(kafka_settings):
    """With messages in hand a follower stops polling when nothing more has arrived: its latency is
    one landing, not batch_max_ms (the old poll waited out the whole window while events trickled)."""
    producer = make_producer(kafka_settings)
    for i in range(30):
        producer.send(kafka_settings.topic_intake, key=f"p{i % 5}".encode(), value=b'{"n": %d}' % i)
    producer.flush()
    producer.close()
    source = KafkaSource(kafka_settings, kafka_settings.inbound_topics)
    try:
        source.subscribe(lambda _parts: {}, lambda: None)
        started, got, polls = time.monotonic(), [], 0
        while len(got) < 30 and polls < 10:
            got += source.poll_batch(10_000, WINDOW_MS)
            polls += 1
        took = time.monotonic() - started
    finally:
        source.close()
    assert sorted(m.value for m in got) == sorted(b'{"n": %d}' % i for i in range(30))
    assert took < WINDOW_MS / 1000 / 2, f"the batch waited out the polling window ({took:.1f} s)"
