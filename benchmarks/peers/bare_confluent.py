"""The other ceiling: confluent-kafka (librdkafka) reading every message, nothing else."""

import time
import uuid

from confluent_kafka import Consumer

from benchmarks.peers.common import args, report

if __name__ == "__main__":
    a, t0, n = args(), time.perf_counter(), 0
    c = Consumer(
        {
            "bootstrap.servers": a.bootstrap,
            "group.id": f"bench-confluent-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    c.subscribe(a.topics.split(","))
    while n < a.events:
        msgs = c.consume(num_messages=10_000, timeout=0.5)
        n += sum(1 for m in msgs if m.error() is None)
    c.close()
    report(n, 0, 0, t0)
