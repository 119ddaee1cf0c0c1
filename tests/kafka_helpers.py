"""Helpers for integration tests: produce to and read back from the real broker."""

from __future__ import annotations

import contextlib
import socket
from pathlib import Path

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from connectors.kafka import client_config


def produce(settings, topic: str, items) -> None:
    """items: (key bytes|None, value bytes[, headers])."""
    p = KafkaProducer(**client_config(settings), acks="all")
    for item in items:
        key, value, *rest = item
        p.send(topic, key=key, value=value, headers=list(rest[0]) if rest else None)
    p.flush(timeout=60)
    p.close()


def read_all(settings, topic: str, expect: int | None = None, timeout_s: float = 20):
    # read_committed, as downstream consumers are told to: a fenced publisher's aborted round is not there
    c = KafkaConsumer(
        **client_config(settings), enable_auto_commit=False, group_id=None, isolation_level="read_committed"
    )
    parts = [TopicPartition(topic, p) for p in c.partitions_for_topic(topic)]
    c.assign(parts)
    c.seek_to_beginning(*parts)
    ends = c.end_offsets(parts)
    out = []
    import time

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for records in c.poll(timeout_ms=500).values():
            out.extend(records)
        if all(c.position(tp) >= ends[tp] for tp in parts) and (expect is None or len(out) >= expect):
            break
    c.close()
    return out


def free_port(span: int = 1) -> int:
    """A loopback port nothing listens on (once the probing socket is closed), with the `span - 1`
    ports after it free too: a local broker's controller listens on its port + 1."""
    for _ in range(50):
        with contextlib.ExitStack() as stack:
            first = stack.enter_context(socket.socket())
            first.bind(("127.0.0.1", 0))
            port = first.getsockname()[1]
            try:
                for extra in range(1, span):
                    stack.enter_context(socket.socket()).bind(("127.0.0.1", port + extra))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no {span} consecutive free loopback ports in 50 tries")


@contextlib.contextmanager
def private_broker(home: Path, sasl_users: dict[str, str] | None = None):
    """A broker of the test's own on a free loopback port (for stopping it, or configuring SASL), stopped after."""
    from connectors.local_broker import LocalBroker

    broker = LocalBroker(home, free_port(span=2), Path(".cache/kafka/libs"), heap_mb=384, sasl_users=sasl_users)
    broker.start(timeout_s=120)
    try:
        yield broker
    finally:
        broker.stop()
