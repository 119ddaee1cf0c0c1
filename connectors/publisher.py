"""Publish the warehouse outbox (DLQ copies, alerts, outreach) and mark what was sent.

A row the broker refuses for good (too large, topic not authorised) is parked with
the error, so it never blocks the rows behind it; `clinicflow status` lists it.
"""

from __future__ import annotations

import base64
import json

import duckdb
import pyarrow as pa
from kafka import errors as kerr

from connectors.exceptions import PermanentKafkaError
from connectors.kafka import classify

# Bytes a record needs beyond key, value and headers (record batch and record framing), with margin.
RECORD_OVERHEAD = 512
TRUNCATED = "clinicflow.truncated"
ERRORS_HEADER = "clinicflow.errors"
MAX_ERRORS_HEADER = 16_384


def _headers(text: str) -> list[tuple[str, bytes]]:
    return [(k, base64.b64decode(v)) for k, v in json.loads(text)]


def _size(key: bytes | None, value: bytes, headers: list[tuple[str, bytes]]) -> int:
    return len(key or b"") + len(value) + sum(len(k) + len(v) + 8 for k, v in headers) + RECORD_OVERHEAD


def fit_record(key: bytes | None, value: bytes, headers: list[tuple[str, bytes]],
               max_bytes: int) -> tuple[bytes, list[tuple[str, bytes]]]:
    """A DLQ record that the broker accepts: the errors header capped, the value truncated if it must be,
    with a header giving the original size (the full bytes stay in quarantine)."""
    headers = [(k, v[:MAX_ERRORS_HEADER] if k == ERRORS_HEADER else v) for k, v in headers]
    over = _size(key, value, headers) - max_bytes
    if over <= 0:
        return value, headers
    note = (TRUNCATED, f"original_bytes={len(value)}; full bytes in the quarantine table".encode())
    keep = max(0, len(value) - over - len(note[0]) - len(note[1]) - 8)
    return value[:keep], [*headers, note]


def publish_outbox(conn: duckdb.DuckDBPyConnection, producer, limit: int = 50_000, timeout_s: float = 130,
                   max_bytes: int = 1_048_588) -> int:
    """Send unsent, unparked outbox rows in creation order; mark them sent once the broker acknowledged them.

    A crash between the send and the mark re-sends on restart: message ids are
    deterministic, so consumers dedupe. Returns how many were sent.
    """
    # Rows staged for a provider channel (topic `provider:<name>`) are that channel's to deliver.
    rows = conn.execute("""SELECT message_id, kind, topic, "key", value, headers FROM outbox
                           WHERE sent_at IS NULL AND parked_at IS NULL AND topic NOT LIKE 'provider:%'
                           ORDER BY created_at, message_id LIMIT ?""", [limit]).fetchall()
    if not rows:
        return 0
    outcome = _Outcome()
    pending = []
    for row in rows:
        try:
            pending.append((row, _send(producer, *row[1:], max_bytes)))
        except (kerr.KafkaError, OSError) as e:
            outcome.failed(row, e)
            if outcome.transient is not None:
                break        # the broker is away: each further send would wait out max_block_ms again
    try:
        producer.flush(timeout=timeout_s)
    except (kerr.KafkaError, OSError) as e:
        raise classify(e, f"publishing {len(rows)} outbox message(s)") from e
    for row, future in pending:
        try:
            future.get(timeout=timeout_s)
            outcome.sent.append(row[0])
        except (kerr.KafkaError, OSError) as e:
            outcome.failed(row, e)
    _mark(conn, outcome.sent, outcome.parked)
    if outcome.transient is not None:
        raise outcome.transient
    return len(outcome.sent)


class _Outcome:
    """What became of each row: sent, parked (refused for good), or left for a retry (transient)."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.parked: list[tuple[str, str]] = []
        self.transient: Exception | None = None

    def failed(self, row, e: Exception) -> None:
        err = classify(e, f"publishing outbox message {row[0]} ({row[1]} to {row[2]})")
        if isinstance(err, PermanentKafkaError):
            self.parked.append((row[0], str(err)))
        else:
            self.transient = self.transient or err


def _send(producer, kind: str, topic: str, key, value: bytes, headers_text: str, max_bytes: int):
    headers = _headers(headers_text)
    if kind == "dlq":
        value, headers = fit_record(key, value, headers, max_bytes)
    elif _size(key, value, headers) > max_bytes:
        # Refused here, not by the broker: a broker-side refusal aborts every batch the producer holds.
        raise kerr.MessageSizeTooLargeError(f"the record is about {_size(key, value, headers)} bytes, over the "
                                            f"cluster's limit of {max_bytes} (CLINICFLOW_KAFKA_MAX_MESSAGE_BYTES)")
    return producer.send(topic, key=key, value=value, headers=headers)


def _mark(conn, sent: list[str], parked: list[tuple[str, str]]) -> None:
    if sent:
        conn.register("sent_ids", pa.table({"message_id": pa.array(sent, pa.string())}))
        try:
            conn.execute("UPDATE outbox SET sent_at = now() WHERE message_id IN (SELECT message_id FROM sent_ids)")
        finally:
            conn.unregister("sent_ids")
    for message_id, error in parked:
        conn.execute("UPDATE outbox SET parked_at = now(), park_error = ? WHERE message_id = ?", [error, message_id])
