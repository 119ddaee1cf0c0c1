"""Send outbox records to Kafka and say what became of each: sent, parked (refused for good) or transient.

A record the broker refuses for good (too large, topic not authorised) must not block
the records behind it: it is reported for parking. DLQ copies are fitted to the
cluster's record limit first.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kafka import errors as kerr

from connectors.exceptions import PermanentKafkaError
from connectors.kafka import classify

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

    def failed(self, record, e: Exception) -> None:
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
            future.get(timeout=timeout_s)
            outcome.sent.append(record.message_id)
        except (kerr.KafkaError, OSError) as e:
            outcome.failed(record, e)
    return outcome


def _send(producer, record, max_bytes: int):
    value, headers = record.value, record.headers
    if record.kind == "dlq":
        value, headers = fit_record(record.key, value, headers, max_bytes)
    elif _size(record.key, value, headers) > max_bytes:
        # Refused here, not by the broker: a broker-side refusal aborts every batch the producer holds.
        raise kerr.MessageSizeTooLargeError(
            f"the record is about {_size(record.key, value, headers)} bytes, over the "
            f"cluster's limit of {max_bytes} (CLINICFLOW_KAFKA_MAX_MESSAGE_BYTES)"
        )
    return producer.send(record.topic, key=record.key, value=value, headers=headers)
