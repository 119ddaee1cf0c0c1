"""dlt's fast local path: messages read with kafka-python, parsed with orjson, yielded to a dlt
resource in pages, normalised to Parquet and loaded into DuckDB, with dlt's performance settings
(large writer buffers and files, parallel normalise and load). dlt's telemetry is switched off."""

import os
import time

import dlt
import orjson

from benchmarks.peers.common import NAMES, args, kafka_python_batches, orjson_text, report, row

TUNED = {
    "RUNTIME__DLTHUB_TELEMETRY": "false",
    "DATA_WRITER__BUFFER_MAX_ITEMS": "100000",
    "DATA_WRITER__FILE_MAX_ITEMS": "200000",
    "NORMALIZE__WORKERS": "2",
    "LOAD__WORKERS": "2",
}


if __name__ == "__main__":
    a, t0 = args(), time.perf_counter()
    a.out.mkdir(parents=True, exist_ok=True)
    os.environ.update(TUNED)
    counts = {"read": 0, "rejected": 0}

    @dlt.resource(name="events", write_disposition="append")
    def events():
        for records in kafka_python_batches(a):
            counts["read"] += len(records)
            page = []
            for r in records:
                got = row(r.value, orjson.loads, orjson_text, r.topic, r.partition, r.offset)
                if got is None:
                    counts["rejected"] += 1
                else:
                    page.append(dict(zip(NAMES, got, strict=True)))
            yield page

    pipeline = dlt.pipeline(
        pipeline_name="bench",
        pipelines_dir=str(a.out / "pipelines"),
        destination=dlt.destinations.duckdb(str(a.out / "dlt.duckdb")),
        dataset_name="clinic",
    )
    pipeline.run(events(), loader_file_format="parquet")
    landed = pipeline.last_trace.last_normalize_info.row_counts.get("events", 0)
    report(counts["read"], landed, counts["rejected"], t0)
