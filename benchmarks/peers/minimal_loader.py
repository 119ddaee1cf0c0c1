"""The loader a user writes in an afternoon: kafka-python, orjson, and a DuckDB append every
20,000 messages (one transaction each). No validation, no dedupe, no care plan."""

import time

import duckdb
import orjson
import pyarrow as pa

from benchmarks.peers.common import DDL, NAMES, args, kafka_python_batches, orjson_text, report, row

EVERY = 20_000


def flush(conn, rows: list[tuple]) -> None:
    arrow_rows = pa.Table.from_pylist([dict(zip(NAMES, r, strict=True)) for r in rows])  # noqa: F841 (read by DuckDB by name)
    conn.execute("INSERT INTO events SELECT * FROM arrow_rows")


if __name__ == "__main__":
    a, t0 = args(), time.perf_counter()
    a.out.mkdir(parents=True, exist_ok=True)
    conn = duckdb.connect(str(a.out / "minimal.duckdb"))
    conn.execute(DDL)
    read = landed = rejected = 0
    pending: list[tuple] = []
    for records in kafka_python_batches(a):
        read += len(records)
        for r in records:
            got = row(r.value, orjson.loads, orjson_text, r.topic, r.partition, r.offset)
            if got is None:
                rejected += 1
            else:
                pending.append(got)
        if len(pending) >= EVERY:
            flush(conn, pending)
            landed, pending = landed + len(pending), []
    if pending:
        flush(conn, pending)
        landed += len(pending)
    conn.close()
    report(read, landed, rejected, t0)
