"""quixstreams: an Application over the topics (its own consumer group, from the earliest offset),
JSON values, and a batching sink that appends each checkpoint's batch to DuckDB."""

import json
import time
import uuid

import duckdb
import pyarrow as pa
from quixstreams import Application
from quixstreams.sinks import BatchingSink, SinkBatch

from benchmarks.peers.common import COLUMNS, DDL, args, report


class DuckDBSink(BatchingSink):
    def __init__(self, conn):
        super().__init__()
        self.conn, self.landed = conn, 0

    def write(self, batch: SinkBatch):
        rows = []
        for item in batch:
            e = item.value
            if e is None:  # not a JSON object with the envelope: skipped, as by the other loaders
                continue
            rows.append(
                {
                    **{k: e[k] for k in COLUMNS[:-1]},
                    "payload": json.dumps(e["payload"]),
                    "topic": batch.topic,
                    "kafka_partition": batch.partition,
                    "kafka_offset": item.offset,
                }
            )
        arrow_rows = pa.Table.from_pylist(rows)  # noqa: F841 (read by DuckDB by name)
        self.conn.execute("INSERT INTO events SELECT * FROM arrow_rows")
        self.landed += len(rows)


def parsed(value: bytes):
    try:
        e = json.loads(value)
    except ValueError:
        return None
    return e if isinstance(e, dict) and all(k in e for k in COLUMNS) else None


if __name__ == "__main__":
    a, t0 = args(), time.perf_counter()
    a.out.mkdir(parents=True, exist_ok=True)
    conn = duckdb.connect(str(a.out / "quix.duckdb"))
    conn.execute(DDL)
    app = Application(
        broker_address=a.bootstrap,
        consumer_group=f"bench-quix-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        state_dir=str(a.out / "state"),
    )
    sink = DuckDBSink(conn)
    for topic in a.topics.split(","):
        sdf = app.dataframe(app.topic(topic, value_deserializer="bytes"))
        sdf.apply(parsed).sink(sink)
    app.run(count=a.events, collect=False)
    conn.close()
    report(a.events, sink.landed, a.events - sink.landed, t0)
