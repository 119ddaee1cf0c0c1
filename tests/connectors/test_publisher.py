"""The outbox's publisher role handed from one process to the next sends nothing twice.

Real broker, real lake. Two OutboxSenders stand for the old and the new publisher (a worker
paused past its session and the one that took over, or a crashed process and its restart).
"""

from __future__ import annotations

import contextlib
from collections import Counter

import pytest

from care.channels import publish_outbox
from connectors.exceptions import PublisherFencedError
from connectors.publisher import OutboxSender, send_records
from tests.kafka_helpers import read_all
from warehouse import outbox
from warehouse.db import open_warehouse

pytestmark = pytest.mark.integration


def staged(s, n: int):
    """n alert rows in a fresh lake's outbox, and the lake."""
    conn = open_warehouse(s)
    rows = [(f"a-{i}", f"P{i % 3}".encode(), f"alert {i}".encode()) for i in range(n)]
    outbox.stage_rows(conn, "alert", s.topic_alerts, rows, "2026-11-01T00:00:00Z", spread=True)
    return conn


def stage_one(s, conn, message_id: str, value: bytes) -> None:
    """One more alert row, staged after the others."""
    outbox.stage_rows(conn, "alert", s.topic_alerts, [(message_id, b"P1", value)], "2026-11-02T00:00:00Z")


@contextlib.contextmanager
def senders(s, n: int):
    """n OutboxSenders of one consumer group (one transactional id), closed on exit."""
    made = [OutboxSender(s) for _ in range(n)]
    try:
        yield made
    finally:
        for sender in made:
            sender.close()


def on_topic(s, expect: int) -> Counter:
    return Counter(r.value for r in read_all(s, s.topic_alerts, expect=expect))


def once_each(s, n: int) -> None:
    """n distinct messages on the alerts topic (read committed), none twice."""
    counts = on_topic(s, expect=n)
    assert len(counts) == n and set(counts.values()) == {1}, counts.most_common(3)


def unsent_ids(conn) -> list[str]:
    return [r.message_id for r in outbox.unsent(conn, 1_000)]


def test_what_a_publisher_committed_but_did_not_mark_is_found_not_sent_again(kafka_settings):
    s = kafka_settings
    conn = staged(s, 40)
    with senders(s, 2) as (old, new):
        old.open()
        first = outbox.unsent(conn, 25)
        assert len(old.send(first).sent) == 25  # committed on Kafka; the process stops before its mark
        assert len(unsent_ids(conn)) == 40
        assert publish_outbox(conn, new) == 15, "only the rows nobody sent go out"
    assert unsent_ids(conn) == []
    once_each(s, 40)
    positions = outbox.positions(conn)
    assert sum(positions.values()) >= 40, "the next successor scans from past these"
    conn.close()


def test_a_fenced_publishers_open_round_is_aborted_and_it_cannot_publish_again(kafka_settings):
    s = kafka_settings
    conn = staged(s, 30)
    with senders(s, 2) as (old, new):
        old.open()
        old.producer.begin_transaction()
        # Sent and acknowledged, not committed: the process is frozen here while `new` takes over.
        assert len(send_records(old.producer, outbox.unsent(conn, 30), s.kafka_max_message_bytes).sent) == 30
        assert publish_outbox(conn, new) == 30, "the frozen round counts for nothing"
        with pytest.raises(Exception, match="Fenced"):
            old.producer.commit_transaction()
        old.close()
        stage_one(s, conn, "late", b"late")
        old.open()  # a worker that leads again opens anew, and fences `new` in turn
        with pytest.raises(PublisherFencedError, match="another process opened it since"):
            new.send(outbox.unsent(conn, 5))
        assert unsent_ids(conn) == ["late"], "a fenced round marks nothing"
    once_each(s, 30)  # the aborted round is not there for consumers
    conn.close()


def test_a_record_too_large_is_parked_and_the_rest_of_its_round_commits(kafka_settings):
    s = kafka_settings
    conn = staged(s, 3)
    stage_one(s, conn, "big", b"y" * 1_500_000)
    with senders(s, 1) as (sender,):
        assert publish_outbox(conn, sender) == 3
    assert unsent_ids(conn) == []
    [(mid,)] = conn.execute("SELECT message_id FROM outbox WHERE parked_at IS NOT NULL").fetchall()
    assert mid == "big"
    once_each(s, 3)
    conn.close()
