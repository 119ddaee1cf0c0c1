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
import statistics
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from benchmarks.histories import growing
from benchmarks.landing_profile import on_topics
from core.settings import load_settings
from schemas.events import INBOUND_FAMILIES
from schemas.validate import Clock
from stages.ingest import landing_config, prepare_process
from warehouse import maintenance
from warehouse.db import Lake, connect
from warehouse.landing import land_batch


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
    topics = dict(zip(INBOUND_FAMILIES, settings.inbound_topics))
    stream = on_topics(growing(args.events), topics, settings.inbound_topics[0])
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
