"""The Kafka side of ingest: join the consumer group, seek to the warehouse's offsets, poll micro-batches.

Workers share the inbound topics through Kafka's group protocol (the sticky assignor, so a
rebalance moves as few partitions as it can). The offsets that count are the ones stored in the
warehouse with each batch: on every assignment the ingest loop is asked (`on_assigned`) to take
the partitions over and say where each starts. Kafka's committed offsets follow the warehouse's,
for lag monitoring.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from kafka import KafkaConsumer, TopicPartition
from kafka import errors as kerr
from kafka.consumer.subscription_state import ConsumerRebalanceListener
from kafka.coordinator.assignors.sticky.sticky_assignor import StickyPartitionAssignor
from kafka.structs import OffsetAndMetadata

from connectors.exceptions import PermanentKafkaError, TransientKafkaError
from connectors.kafka import classify, client_config, connecting_error
from core.settings import Settings
from schemas.messages import Message

log = logging.getLogger(__name__)
Partition = tuple[str, int]
# Takes the partitions over (leases) and returns {partition: next offset} for those it has stored.
OnAssigned = Callable[[list[Partition]], dict[Partition, int]]


class _Membership(ConsumerRebalanceListener):
    """What the group protocol said, kept for the ingest loop to act on between polls: the
    listener runs on the consumer's I/O loop, which must not wait for the warehouse."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._assigned: list[TopicPartition] | None = None
        self._revoked = False

    def on_partitions_revoked(self, revoked) -> None:
        with self._lock:
            self._revoked = True

    def on_partitions_lost(self, lost) -> None:
        with self._lock:
            self._revoked = True

    def on_partitions_assigned(self, assigned) -> None:
        with self._lock:
            self._assigned = sorted(assigned)

    def take(self) -> tuple[bool, list[TopicPartition] | None]:
        """(revoked since last asked, the new assignment or None), and forget both."""
        with self._lock:
            out = (self._revoked, self._assigned)
            self._revoked, self._assigned = False, None
        return out


class KafkaSource:
    """One group member over the inbound topics."""

    def __init__(self, settings: Settings, topics: tuple[str, ...]):
        self.topics = topics
        try:
            self.consumer = KafkaConsumer(
                **client_config(settings),
                group_id=settings.consumer_group,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                partition_assignment_strategy=(StickyPartitionAssignor,),
                session_timeout_ms=settings.consumer_session_timeout_ms,
                heartbeat_interval_ms=settings.consumer_session_timeout_ms // 4,
                max_poll_records=min(settings.batch_max_events, 10_000),
                fetch_max_bytes=64 * 1024 * 1024,
                max_partition_fetch_bytes=8 * 1024 * 1024,
            )
        except (kerr.KafkaError, OSError) as e:
            raise connecting_error(e, "connecting the ingest consumer", settings) from e
        self.partitions: list[TopicPartition] = []
        self.joined = False  # the group has given this worker its first assignment (maybe empty)
        self._ends: dict[TopicPartition, int] = {}
        self._membership = _Membership()
        self._on_assigned: OnAssigned = lambda _parts: {}
        self._on_revoked: Callable[[], None] = lambda: None

    def subscribe(self, on_assigned: OnAssigned, on_revoked: Callable[[], None]) -> None:
        """Join the group; on each assignment, seek to what on_assigned returns (else the beginning)."""
        self._on_assigned, self._on_revoked = on_assigned, on_revoked
        try:
            self._partitions()  # a misspelt topic fails here, not as a group that never gets assigned
            self._join()
        except (kerr.KafkaError, OSError) as e:
            raise classify(e, f"joining the consumer group on {', '.join(self.topics)}") from e

    def rejoin(self) -> None:
        """Leave and join again: the warehouse says we lost partitions the consumer thinks it holds."""
        self.consumer.unsubscribe()
        self._settle()
        self._join()

    def _join(self) -> None:
        self.consumer.subscribe(topics=list(self.topics), listener=self._membership)
        # kafka-python snapshots the topics' partitions only on the next metadata refresh, so a
        # leader assigning before it compares an empty snapshot with the refreshed one and makes the
        # whole group rebalance a second time. The metadata is already here (_partitions() read it):
        # snapshot it now. Absent in another kafka-python, the second rebalance costs only time.
        snapshot = getattr(getattr(self.consumer, "_coordinator", None), "_handle_metadata_update", None)
        if snapshot is not None:
            snapshot(self.consumer._client.cluster)

    def _settle(self) -> bool:
        """Act on a revocation or assignment that happened during a poll; True if one did."""
        revoked, assigned = self._membership.take()
        if revoked:
            self._on_revoked()
            self.partitions, self._ends = [], {}
        if assigned is None:
            return revoked
        stored = self._on_assigned([(tp.topic, tp.partition) for tp in assigned])
        fresh = [tp for tp in assigned if (tp.topic, tp.partition) not in stored]
        try:
            if fresh:
                self.consumer.seek_to_beginning(*fresh)
            for tp in assigned:
                if (tp.topic, tp.partition) in stored:
                    self.consumer.seek(tp, stored[(tp.topic, tp.partition)])
            self._ends = self.consumer.end_offsets(assigned) if assigned else {}
        except (kerr.KafkaError, OSError) as e:
            raise classify(e, "seeking the assigned partitions to the stored offsets") from e
        self.partitions, self.joined = list(assigned), True
        log.info("assigned %s", ", ".join(f"{tp.topic}/{tp.partition}" for tp in assigned) or "no partitions")
        return True

    def _partitions(self) -> list[TopicPartition]:
        """Every partition of the topics; a topic the cluster does not have is a permanent error."""
        parts = []
        for topic in self.topics:
            ids = self.consumer.partitions_for_topic(topic)
            if not ids:
                raise PermanentKafkaError(
                    f"topic {topic} does not exist on the cluster; create it with "
                    "`clinicflow topics create` or fix the topic settings"
                )
            parts += [TopicPartition(topic, p) for p in sorted(ids)]
        return parts

    def topic_ends(self) -> dict[tuple[str, int], int]:
        """The end offset of every partition of the topics now, whoever holds it (a drain's goal)."""
        try:
            return {(tp.topic, tp.partition): end for tp, end in self.consumer.end_offsets(self._partitions()).items()}
        except (kerr.KafkaError, OSError) as e:
            raise classify(e, f"reading the end offsets of {', '.join(self.topics)}") from e

    def caught_up(self) -> bool:
        """Joined, and every assigned partition read up to its end as of the assignment (drain's end)."""
        if not self.joined:
            return False
        try:
            return all(self.consumer.position(tp, timeout_ms=5_000) >= end for tp, end in self._ends.items())
        except (kerr.KafkaError, OSError) as e:
            # A position not known yet needs the broker; while it is away, keep polling (poll waits for it).
            log.warning("reading consumer positions failed (%s); polling on until the broker answers", e)
            return False

    def lag(self) -> dict[str, int]:
        """{"topic/partition": messages behind the end}, for the partitions this worker holds."""
        try:
            ends = self.consumer.end_offsets(self.partitions) if self.partitions else {}
            return {f"{tp.topic}/{tp.partition}": max(0, end - self.consumer.position(tp)) for tp, end in ends.items()}
        except (kerr.KafkaError, OSError) as e:
            raise classify(e, "reading end offsets") from e

    def poll_batch(self, max_events: int, max_ms: int, drain: bool = False) -> list[Message]:
        """Up to max_events messages or max_ms of polling, whichever comes first; a drain also ends
        when caught up, a follower with messages in hand when a poll finds nothing more already
        fetched (its batch is what arrived while it landed the last one: it waits for no more).

        A rebalance during the poll abandons what was gathered: it is read again from the
        offsets stored in the warehouse, by whichever worker now holds its partition.
        """
        out: list[Message] = []
        deadline = time.monotonic() + max_ms / 1000
        while len(out) < max_events:
            remaining = deadline - time.monotonic()
            # Caught up with nothing in hand: poll on (a rebalance may bring a dead member's partitions).
            if remaining <= 0 or (drain and out and self.caught_up()):
                break
            wait_ms = 0 if (out and not drain) else max(1, int(remaining * 1000))
            try:
                polled = self.consumer.poll(timeout_ms=wait_ms, max_records=max_events - len(out))
            except (kerr.KafkaError, OSError) as e:
                raise classify(e, f"polling {', '.join(self.topics)}") from e
            if self._settle():
                out = []
                continue
            if out and not drain and not polled:
                break
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
    """Every committed value on `topic` from the beginning to its current end, without a consumer
    group (the demo's on-call queue reads the alerts this way)."""
    records, _ = read_committed(settings, [topic], timeout_s=timeout_s)
    return [r.value for r in records]


def read_committed(
    settings: Settings, topics: list[str], since: dict[Partition, int] | None = None, timeout_s: float = 60
) -> tuple[list, dict[Partition, int]]:
    """The committed records of `topics` from `since` (a partition it does not name: from the
    beginning) to the end as of the call, without a consumer group; and those ends.

    read_committed: what an aborted transaction wrote (a publisher fenced mid-round) is skipped,
    as every downstream consumer is told to skip it (docs/EVENTS.md).
    """
    since = since or {}
    doing = f"reading {', '.join(topics)}"
    try:
        consumer = KafkaConsumer(**client_config(settings), enable_auto_commit=False, isolation_level="read_committed")
        parts = [TopicPartition(t, p) for t in topics for p in sorted(consumer.partitions_for_topic(t) or ())]
        consumer.assign(parts)
        consumer.seek_to_beginning()
        for tp in parts:
            if (tp.topic, tp.partition) in since:
                consumer.seek(tp, since[(tp.topic, tp.partition)])
        ends = consumer.end_offsets(parts)
    except (kerr.KafkaError, OSError) as e:
        raise connecting_error(e, doing, settings) from e
    try:
        return _read_until(consumer, ends, doing, timeout_s), {(tp.topic, tp.partition): o for tp, o in ends.items()}
    finally:
        consumer.close()


def _read_until(consumer: KafkaConsumer, ends: dict, doing: str, timeout_s: float) -> list:
    out: list = []
    deadline = time.monotonic() + timeout_s
    while any(consumer.position(tp) < end for tp, end in ends.items()):
        if time.monotonic() > deadline:
            raise TransientKafkaError(f"{doing} took over {timeout_s:.0f}s; is the broker up?")
        try:
            batches = consumer.poll(timeout_ms=500)
        except (kerr.KafkaError, OSError) as e:
            raise classify(e, doing) from e
        for records in batches.values():
            out += records
    return out
