"""A transport-neutral message: what a Kafka record or a file line is to the landing code."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Message:
    """One message read from a source, with its position there."""

    topic: str  # a Kafka topic, or `file:<name>` for a backfill
    partition: int
    offset: int  # the Kafka offset, or the line number of a file
    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...] = ()
