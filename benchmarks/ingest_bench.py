"""Ingest throughput: a bare kafka-python consumer (the ceiling) and `ingest --drain`, on the same topics.

    .venv/bin/python -m benchmarks.ingest_bench [--events N]

Needs a broker: the local one (`clinicflow kafka up`) or CLINICFLOW_KAFKA_BOOTSTRAP_SERVERS.
Publishes N realistic events (about 5% invalid) to fresh topics, then measures both in one run.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
import uuid
from pathlib import Path

from kafka import KafkaConsumer, TopicPartition

from benchmarks.validate_bench import corpus
from clinicflow.ingest import run_ingest
from clinicflow.settings import load_settings
from connectors.kafka import client_config, ensure_topics
from connectors.publish import publish_lines


def bare_consume(settings) -> tuple[int, float]:
    c = KafkaConsumer(**client_config(settings), group_id=None, enable_auto_commit=False, max_poll_records=10_000,
                      fetch_max_bytes=64 * 1024 * 1024, max_partition_fetch_bytes=8 * 1024 * 1024)
    parts = [TopicPartition(t, p) for t in settings.inbound_topics for p in c.partitions_for_topic(t)]
    c.assign(parts)
    c.seek_to_beginning(*parts)
    ends = c.end_offsets(parts)
    n, t0 = 0, time.perf_counter()
    while any(c.position(tp) < ends[tp] for tp in parts):
        for records in c.poll(timeout_ms=500).values():
            n += len(records)
    took = time.perf_counter() - t0
    c.close()
    return n, took


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--batch", type=int, default=None, help="batch_max_events (default: settings)")
    args = ap.parse_args()
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    wh = Path(tempfile.mkdtemp()) / "bench.duckdb"
    over = {f"topic_{n}": f"{prefix}.{n}" for n in ("intake", "sessions", "followups", "outreach", "alerts", "dlq")}
    over.update(warehouse_path=wh, consumer_group=prefix)
    if args.batch:
        over["batch_max_events"] = args.batch
    settings = load_settings().model_copy(update=over)
    ensure_topics(settings, settings.all_topics)
    data = corpus(args.events, seed=11)
    t0 = time.perf_counter()
    publish_lines(settings, data)
    print(f"published {len(data):,} events in {time.perf_counter() - t0:.1f}s to {prefix}.*")
    n, took = bare_consume(settings)
    ceiling = n / took
    report = run_ingest(settings, "drain", progress=lambda m: None)
    ours = report.read / report.seconds
    result = {"events": n, "cores": os.cpu_count(), "batch_max_events": settings.batch_max_events,
              "ceiling_events_per_s": round(ceiling), "ingest_events_per_s": round(ours),
              "ratio": round(ours / ceiling, 3), "ingest": report.as_dict()}
    print(f"bare consumer (ceiling): {ceiling:12,.0f} events/s ({n:,} in {took:.1f}s)")
    print(f"ingest --drain:          {ours:12,.0f} events/s ({report.read:,} in {report.seconds:.1f}s; "
          f"landed {report.landed:,}, quarantined {sum(report.quarantined.values()):,}, {report.batches} batches)")
    print(f"ratio ingest/ceiling:    {ours / ceiling:.3f}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
