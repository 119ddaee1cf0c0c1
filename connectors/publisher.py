"""Send outbox records to Kafka and say what became of each: sent, parked (refused for good) or transient.

A record the broker refuses for good (too large, topic not authorised) must not block
the records behind it: it is reported for parking. DLQ copies are fitted to the
cluster's record limit first.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from kafka import errors as kerr

from connectors.consumer import read_committed
from connectors.exceptions import PermanentKafkaError, PublisherFencedError, TransientKafkaError
from connectors.kafka import classify, close_producer, make_producer
from core.settings import Settings

log = logging.getLogger(__name__)
# Bytes a record needs beyond key, value and headers (record batch and record framing), with margin.
RECORD_OVERHEAD = 512
TRUNCATED = "clinicflow.truncated"
ERRORS_HEADER = "clinicflow.errors"
MAX_ERRORS_HEADER = 16_384


def _size(key: bytes | None, value: bytes, headers: list[tuple[str, bytes]]) -> int:
    return len(key or b"") + len(value) + sum(len(k) + len(v) + 8 for k, v in headers) + RECORD_OVERHEAD


def fit_record(
    key: bytes | None, value: bytes, headers: list[tuple[str, bytes]], max_bytes: int
) -> tuple[bytes, list[tuple[str, bytes]]]:
    """A DLQ record that the broker accepts: the errors header capped, the value truncated if it must be,
    with a header giving the original size (the full bytes stay in quarantine)."""
    headers = [(k, v[:MAX_ERRORS_HEADER] if k == ERRORS_HEADER else v) for k, v in headers]
    over = _size(key, value, headers) - max_bytes
    if over <= 0:
        return value, headers
    note = (TRUNCATED, f"original_bytes={len(value)}; full bytes in the quarantine table".encode())
    keep = max(0, len(value) - over - len(note[0]) - len(note[1]) - 8)
    return value[:keep], [*headers, note]


@dataclass
class SendOutcome:
    """What became of each record: sent, parked (refused for good), or left for a retry (transient)."""

    sent: list[str] = field(default_factory=list)
    parked: list[tuple[str, str]] = field(default_factory=list)
    transient: Exception | None = None
    # Next offset per (topic, partition) after what was sent: where a successor's scan starts.
    positions: dict[tuple[str, int], int] = field(default_factory=dict)
    fenced: bool = False

    def failed(self, record, e: Exception) -> None:
        self.fenced = self.fenced or _fenced(e)
        err = classify(e, f"publishing outbox message {record.message_id} ({record.kind} to {record.topic})")
        if isinstance(err, PermanentKafkaError):
            self.parked.append((record.message_id, str(err)))
        else:
            self.transient = self.transient or err


def send_records(producer, records, max_bytes: int = 1_048_588, timeout_s: float = 130) -> SendOutcome:
    """Send records (anything with message_id, kind, topic, key, value, headers) and wait for the broker."""
    outcome, pending = SendOutcome(), []
    for record in records:
        try:
            pending.append((record, _send(producer, record, max_bytes)))
        except (kerr.KafkaError, OSError) as e:
            outcome.failed(record, e)
            if outcome.transient is not None:
                break  # the broker is away: each further send would wait out max_block_ms again
    try:
        producer.flush(timeout=timeout_s)
    except (kerr.KafkaError, OSError) as e:
        outcome.transient = outcome.transient or classify(e, f"publishing {len(pending)} outbox message(s)")
    for record, future in pending:
        if outcome.transient is not None and not future.is_done:
            continue  # the flush timed out: this one stays unsent for the retry
        try:
            meta = future.get(timeout=timeout_s)
            outcome.sent.append(record.message_id)
            tp = (meta.topic, meta.partition)
            outcome.positions[tp] = max(outcome.positions.get(tp, 0), meta.offset + 1)
        except (kerr.KafkaError, OSError) as e:
            outcome.failed(record, e)
    return outcome


def _fenced(e: Exception) -> bool:
    """A transactional producer's error that says another opened the same transactional id since."""
    return isinstance(e, kerr.ProducerFencedError) or any(isinstance(a, kerr.ProducerFencedError) for a in e.args)


def wire(record, max_bytes: int) -> tuple[bytes, list[tuple[str, bytes]]]:
    """The value and headers a record goes out with: DLQ copies fitted to the cluster's limit."""
    if record.kind == "dlq":
        return fit_record(record.key, record.value, record.headers, max_bytes)
    return record.value, record.headers


def _send(producer, record, max_bytes: int):
    value, headers = wire(record, max_bytes)
    if _size(record.key, value, headers) > max_bytes:
        # Refused here, not by the broker: a broker-side refusal aborts every batch the producer holds.
        raise kerr.MessageSizeTooLargeError(
            f"the record is about {_size(record.key, value, headers)} bytes, over the "
            f"cluster's limit of {max_bytes} (CLINICFLOW_KAFKA_MAX_MESSAGE_BYTES)"
        )
    return producer.send(record.topic, key=record.key, value=value, headers=headers)


# How long a transactional round may take to flush before it is abandoned and the producer opened
# anew. kafka-python 3.0.12 loses a transaction's partition registration when a round is sent while
# the broker is away: the records then sit until their delivery timeout (120 s) although the
# broker is back. A fresh producer sends at once; a healthy round of 50,000 rows flushes in seconds.
ROUND_STALL_S = 15


class OutboxSender:
    """The outbox's producer: each round one Kafka transaction, under one transactional id per
    consumer group, so whoever opens it fences every earlier holder. Their open round is aborted
    and nothing they send afterwards commits: a worker resumed after a pause cannot add copies
    of what its successor publishes (docs/DECISIONS.md, "The outbox's transactions").
    """

    def __init__(self, settings: Settings):
        self.settings = settings
        self.transactional_id = f"clinicflow-outbox.{settings.consumer_group}"
        self.producer = None

    def open(self) -> bool:
        """Open the producer if it is closed (fencing the previous holder); True if opened now."""
        if self.producer is not None:
            return False
        producer = make_producer(self.settings, max_block_ms=15_000, transactional_id=self.transactional_id)
        try:
            producer.init_transactions()
        except (kerr.KafkaError, OSError) as e:
            close_producer(producer, timeout_s=0)
            raise classify(e, f"opening the outbox's transactional producer {self.transactional_id!r}") from e
        self.producer = producer
        return True

    def send(self, records) -> SendOutcome:
        """Send a round in one transaction: all of it commits, or none of it is reported sent."""
        outcome = SendOutcome()
        try:
            self.producer.begin_transaction()
            outcome = send_records(self.producer, records, self.settings.kafka_max_message_bytes, ROUND_STALL_S)
            if outcome.transient is None and not outcome.fenced:
                self.producer.commit_transaction()
                return outcome
        except (kerr.KafkaError, OSError) as e:
            # Even a record refused for good aborts the whole round: it is parked, the rest go again.
            outcome.fenced = outcome.fenced or _fenced(e)
            outcome.transient = outcome.transient or TransientKafkaError(
                f"an outbox round of {len(records)} message(s) was aborted ({type(e).__name__}: {e}); "
                "its rows stay unsent and go in the next round"
            )
        # The round is not committed: closing drops it, and the next open() aborts it at the broker.
        self.close()
        if outcome.fenced:
            raise PublisherFencedError(
                f"outbox producer {self.transactional_id!r} was fenced: another process opened it since; "
                "it publishes the outbox now (the rows of the aborted round stay unsent for it)"
            )
        return SendOutcome(parked=outcome.parked, transient=outcome.transient)

    def find(self, records, since: dict[tuple[str, int], int]) -> SendOutcome:
        """Which of these unsent records are committed on their topics already, at or after `since`:
        a publisher that stopped between its commit and its mark sent them. `positions`: where the
        scan ended."""
        wanted = {}
        for r in records:
            value, headers = wire(r, self.settings.kafka_max_message_bytes)
            wanted[(r.topic, r.key, value, tuple(headers))] = r.message_id
        found, ends = read_committed(self.settings, sorted({r.topic for r in records}), since, timeout_s=120)
        outcome = SendOutcome(positions=ends)
        for m in found:
            message_id = wanted.pop((m.topic, m.key, m.value, tuple(m.headers)), None)
            if message_id is not None:
                outcome.sent.append(message_id)
        if outcome.sent:
            log.info("outbox: %d row(s) were on Kafka already, sent by an earlier publisher; marked", len(outcome.sent))
        return outcome

    def close(self) -> None:
        if self.producer is not None:
            close_producer(self.producer, timeout_s=0)
            self.producer = None
