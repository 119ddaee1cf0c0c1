"""The ceiling: kafka-python reading every message, nothing else."""

import time

from benchmarks.peers.common import args, kafka_python_batches, report

if __name__ == "__main__":
    a, t0, n = args(), time.perf_counter(), 0
    for records in kafka_python_batches(a):
        n += len(records)
    report(n, 0, 0, t0)
