"""How a batch's landing time moves as the lake fills: the median of every N batches, with the
lake's data files, with and without the light compaction a running ingest does.

Simulated events (the generator of `make bench`, new patients every 100,000 events, as a real
history has) are landed in this process, in batches, into a new lake (SQLite catalog) in a
temporary folder, with the care planner and the batch suite as ingest runs them. With
--compact-every N, the merge round of `warehouse.maintenance.compaction_steps` runs after every
N batches, as a running ingest does every CLINICFLOW_LAKE_COMPACT_INTERVAL_S.

Run: .venv/bin/python -m benchmarks.landing_trend [--events 180000] [--batch 1500] [--every 30]
     [--compact-every 30]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

from benchmarks.landing_profile import END
from clinicflow.simulate import simulate
from core.settings import load_settings
from schemas.events import FAMILIES, INBOUND_FAMILIES
from schemas.messages import Message
from schemas.validate import Clock
from stages.ingest import landing_config, prepare_process
from warehouse import maintenance
from warehouse.db import Lake, connect
from warehouse.landing import land_batch

CHUNK = 100_000


def messages(n: int, topics: dict[str, str], default: str) -> Iterator[Message]:
    """n simulated events, new patients (and seed) every CHUNK, each on its family's topic."""
    family = {m.model_fields["event_type"].annotation.__args__[0]: f for f, ms in FAMILIES.items() for m in ms}
    offset = 0
    for k in range(0, n, CHUNK):
        for i, line in enumerate(simulate(CHUNK // 38 + 1, seed=1000 + k, invalid_rate=0.02, end=END)):
            if i >= min(CHUNK, n - k):
                break
            line = line.replace(b'"PT', f'"C{k // CHUNK}PT'.encode())  # the next chunk's patients are new
            try:
                topic = topics.get(family.get(json.loads(line).get("event_type")), default)
            except (ValueError, AttributeError):
                topic = default
            yield Message(topic, 0, offset, None, line)
            offset += 1


def data_files(conn) -> int:
    return conn.execute("SELECT sum(file_count) FROM ducklake_table_info('lake')").fetchall()[0][0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=180_000)
    ap.add_argument("--batch", type=int, default=1_500)
    ap.add_argument("--every", type=int, default=30, help="batches per printed median")
    ap.add_argument("--compact-every", type=int, default=0, help="batches between merge rounds (0: none)")
    args = ap.parse_args()
    settings = load_settings(warehouse_path=Path(tempfile.mkdtemp(prefix="clinicflow-trend-")) / "w.duckdb")
    prepare_process()
    conn = connect(settings.warehouse_path, lake=Lake.of(settings))
    cfg, clock = landing_config(settings), Clock(datetime.now(timezone.utc), timedelta(seconds=300))
    stream = messages(args.events, dict(zip(INBOUND_FAMILIES, settings.inbound_topics)), settings.inbound_topics[0])
    times: list[float] = []
    while batch := [m for _, m in zip(range(args.batch), stream)]:
        started = time.perf_counter()
        land_batch(conn, batch, clock, cfg)
        times.append(time.perf_counter() - started)
        if args.compact_every and len(times) % args.compact_every == 0:
            report = maintenance.MaintenanceReport()
            for name, step in maintenance.compaction_steps(conn, "lake"):
                maintenance.run_step(conn, "lake", name, step, report)
        if len(times) % args.every == 0:
            print(
                f"batches {len(times) - args.every + 1}-{len(times)}: median "
                f"{statistics.median(times[-args.every :]) * 1000:,.0f} ms, {data_files(conn):,} data files",
                flush=True,
            )


if __name__ == "__main__":
    main()
