"""The Kafka side of ingest: assign partitions, seek to the warehouse's offsets, poll micro-batches.

Partitions are assigned, not subscribed: DuckDB allows one writer per warehouse,
so one consumer per warehouse reads every partition, and the offsets that count
are the ones stored in the warehouse with each batch. Kafka's committed offsets
follow them, for lag monitoring.
"""

from __future__ import annotations

import logging
import time

from kafka import KafkaConsumer, TopicPartition
from kafka import errors as kerr
from kafka.structs import OffsetAndMetadata

from connectors.exceptions import PermanentKafkaError, TransientKafkaError
from connectors.kafka import classify, client_config, connecting_error
from core.settings import Settings
from schemas.messages import Message

log = logging.getLogger(__name__)


class KafkaSource:
    """One consumer over the inbound topics."""

    def __init__(self, settings: Settings, topics: tuple[str, ...]):
        self.topics = topics
        try:
            self.consumer = KafkaConsumer(
                **client_config(settings),
                group_id=settings.consumer_group,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                max_poll_records=min(settings.batch_max_events, 10_000),
                fetch_max_bytes=64 * 1024 * 1024,
                max_partition_fetch_bytes=8 * 1024 * 1024,
            )
        except (kerr.KafkaError, OSError) as e:
            raise connecting_error(e, "connecting the ingest consumer", settings) from e
        self.partitions: list[TopicPartition] = []

    def assign(self, stored: dict[tuple[str, int], int]) -> None:
        """Assign every partition of the topics and seek to the stored offsets (else the beginning)."""
        try:
            self._assign(stored)
        except (kerr.KafkaError, OSError) as e:
            raise classify(e, f"assigning the partitions of {', '.join(self.topics)}") from e

    def _assign(self, stored: dict[tuple[str, int], int]) -> None:
        parts = []
        for topic in self.topics:
            ids = self.consumer.partitions_for_topic(topic)
            if not ids:
                raise PermanentKafkaError(
                    f"topic {topic} does not exist on the cluster; create it with "
                    "`clinicflow topics create` or fix the topic settings"
                )
            parts += [TopicPartition(topic, p) for p in sorted(ids)]
        self.consumer.assign(parts)
        self.partitions = parts
        fresh = [tp for tp in parts if (tp.topic, tp.partition) not in stored]
        if fresh:
            self.consumer.seek_to_beginning(*fresh)
        for tp in parts:
            if (tp.topic, tp.partition) in stored:
                self.consumer.seek(tp, stored[(tp.topic, tp.partition)])

    def end_offsets(self) -> dict[TopicPartition, int]:
        try:
            return self.consumer.end_offsets(self.partitions)
        except (kerr.KafkaError, OSError) as e:
            raise classify(e, "reading end offsets") from e

    def caught_up(self, ends: dict[TopicPartition, int]) -> bool:
        try:
            return all(self.consumer.position(tp) >= end for tp, end in ends.items())
        except (kerr.KafkaError, OSError) as e:
            raise classify(e, "reading consumer positions") from e

    def lag(self) -> dict[str, int]:
        """{"topic/partition": messages behind the end}."""
        ends = self.end_offsets()
        return {f"{tp.topic}/{tp.partition}": max(0, end - self.consumer.position(tp)) for tp, end in ends.items()}

    def poll_batch(self, max_events: int, max_ms: int, ends: dict[TopicPartition, int] | None = None) -> list[Message]:
        """Up to max_events messages or max_ms of polling, whichever comes first."""
        out: list[Message] = []
        deadline = time.monotonic() + max_ms / 1000
        while len(out) < max_events:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or (ends is not None and out and self.caught_up(ends)):
                break
            try:
                polled = self.consumer.poll(timeout_ms=max(1, int(remaining * 1000)), max_records=max_events - len(out))
            except (kerr.KafkaError, OSError) as e:
                raise classify(e, f"polling {', '.join(self.topics)}") from e
            for records in polled.values():
                out.extend(
                    Message(r.topic, r.partition, r.offset, r.key, r.value, tuple((k, v) for k, v in (r.headers or ())))
                    for r in records
                )
        return out

    def commit(self, messages: list[Message]) -> None:
        """Tell Kafka how far we got, after the warehouse commit; failures only delay lag figures."""
        offsets: dict[TopicPartition, int] = {}
        for m in messages:
            tp = TopicPartition(m.topic, m.partition)
            offsets[tp] = max(offsets.get(tp, 0), m.offset + 1)
        try:
            self.consumer.commit({tp: OffsetAndMetadata(o, "", -1) for tp, o in offsets.items()}, timeout_ms=5000)
        except (kerr.KafkaError, OSError) as e:
            log.warning("Kafka offset commit failed (%s); the warehouse holds the offsets, so nothing is lost", e)

    def close(self) -> None:
        self.consumer.close(autocommit=False)


def read_to_end(settings: Settings, topic: str, timeout_s: float = 60) -> list[bytes]:
    """Every value on `topic` from the beginning to its current end, without a consumer group
    (the demo's on-call queue reads the alerts this way)."""
    try:
        consumer = KafkaConsumer(**client_config(settings), enable_auto_commit=False, consumer_timeout_ms=1000)
        parts = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(parts)
        consumer.seek_to_beginning()
        ends = consumer.end_offsets(parts)
    except (kerr.KafkaError, OSError) as e:
        raise connecting_error(e, f"reading {topic}", settings) from e
    out: list[bytes] = []
    deadline = time.monotonic() + timeout_s
    try:
        while any(consumer.position(tp) < end for tp, end in ends.items()):
            if time.monotonic() > deadline:
                raise TransientKafkaError(f"reading {topic} took over {timeout_s:.0f}s; is the broker up?")
            for records in consumer.poll(timeout_ms=500).values():
                out += [r.value for r in records]
    finally:
        consumer.close()
    return out
