"""What every contender shares: its arguments, reading the topics with kafka-python, the row it
lands, and the one JSON line it prints at exit. Standalone: the contenders run in the peers'
environment (.venv-peers), which has no clinicflow installed."""

from __future__ import annotations

import argparse
import json
import resource
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
from kafka import KafkaConsumer, TopicPartition

COLUMNS = ("event_id", "event_type", "occurred_at", "clinic_id", "patient_id", "source", "payload")
NAMES = (*COLUMNS, "topic", "kafka_partition", "kafka_offset")  # a landed row, as row() returns it
DDL = (
    "CREATE TABLE IF NOT EXISTS events (event_id VARCHAR, event_type VARCHAR, occurred_at TIMESTAMPTZ, "
    "clinic_id VARCHAR, patient_id VARCHAR, source VARCHAR, payload JSON, "
    "topic VARCHAR, kafka_partition INTEGER, kafka_offset BIGINT)"
)


def args() -> argparse.Namespace:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topics", required=True, help="comma-separated")
    ap.add_argument("--events", type=int, required=True, help="stop after reading this many messages")
    ap.add_argument("--out", type=Path, required=True, help="a fresh folder for this contender's files")
    return ap.parse_args()


def peak_rss_mib() -> float:
    """This process's own high-water mark (VmHWM: reset by exec, unlike wait4's ru_maxrss)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def report(read: int, landed: int, rejected: int, started: float) -> None:
    print(
        json.dumps(
            {
                "read": read,
                "landed": landed,
                "rejected": rejected,
                "seconds": round(time.perf_counter() - started, 3),
                "peak_rss_mib": peak_rss_mib(),
            }
        ),
        flush=True,
    )


def kafka_python_batches(a: argparse.Namespace, max_records: int = 10_000) -> Iterator[list]:
    """Every message of the topics from the beginning, in polled lists, until a.events are read."""
    c = KafkaConsumer(
        bootstrap_servers=a.bootstrap,
        group_id=None,
        enable_auto_commit=False,
        max_poll_records=max_records,
        fetch_max_bytes=64 * 1024 * 1024,
        max_partition_fetch_bytes=8 * 1024 * 1024,
    )
    parts = [TopicPartition(t, p) for t in a.topics.split(",") for p in sorted(c.partitions_for_topic(t) or ())]
    c.assign(parts)
    c.seek_to_beginning(*parts)
    n = 0
    try:
        while n < a.events:
            for records in c.poll(timeout_ms=500, max_records=max_records).values():
                n += len(records)
                yield records
    finally:
        c.close()


def orjson_text(x) -> str:
    return orjson.dumps(x).decode()


def row(value: bytes, loads, dumps, topic: str, partition: int, offset: int) -> tuple | None:
    """The landed row of one message, or None when it is not a JSON object with the envelope."""
    try:
        e = loads(value)
        return (*(e[k] for k in COLUMNS[:-1]), dumps(e["payload"]), topic, partition, offset)
    except (ValueError, KeyError, TypeError):
        return None
