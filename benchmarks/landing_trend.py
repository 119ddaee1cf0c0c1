"""How a batch's landing time moves as the lake fills: the median of every N batches, with the
lake's data files, with and without the light compaction a running ingest does.

Simulated events (the generator of `make bench`, new patients every 100,000 events, as a real
history has) are landed in this process, in batches, into a new lake (SQLite catalog) in a
temporary folder, with the care planner and the batch suite as ingest runs them. With
--compact-every N, the merge round of `warehouse.maintenance.compaction_steps` runs after every
N batches, as a running ingest does every CLINICFLOW_LAKE_COMPACT_INTERVAL_S.

With --replan the queued patients are re-planned between batches as ingest does; with
--statements K each window also prints its K costliest statements (count, time), to see what grows;
with --refresh-every N the analysts' lake is refreshed every N batches and compacted every second
refresh, as the refresh thread does (their medians are printed per window).

Run: .venv/bin/python -m benchmarks.landing_trend [--events 180000] [--batch 1500] [--every 30]
     [--compact-every 30] [--replan] [--statements 12]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from benchmarks.histories import growing
from benchmarks.landing_profile import TimedConnection, on_topics
from care.planner import PendingPlans
from care.policy import CarePolicy
from core.settings import load_settings
from schemas.events import INBOUND_FAMILIES
from schemas.validate import Clock
from stages.ingest import landing_config, prepare_process
from warehouse import maintenance
from warehouse.analytics import compact_analysts, refresh_analytics
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
    ap.add_argument("--statements", type=int, default=0, help="print each window's K costliest statements")
    ap.add_argument("--replan", action="store_true", help="re-plan queued patients between batches, as ingest does")
    ap.add_argument("--refresh-every", type=int, default=0, help="batches between analysts' refreshes (0: none)")
    args = ap.parse_args()
    settings = load_settings(warehouse_path=Path(tempfile.mkdtemp(prefix="clinicflow-trend-")) / "w.duckdb")
    prepare_process()
    conn = TimedConnection(connect(settings.warehouse_path, lake=Lake.of(settings)))
    pending = PendingPlans(CarePolicy.from_settings(settings)) if args.replan else None
    cfg, clock = landing_config(settings), Clock(datetime.now(timezone.utc), timedelta(seconds=300))
    topics = dict(zip(INBOUND_FAMILIES, settings.inbound_topics))
    stream = on_topics(growing(args.events), topics, settings.inbound_topics[0])
    times: list[float] = []
    refreshes: list[float] = []
    compactions: list[float] = []
    while batch := [m for _, m in zip(range(args.batch), stream)]:
        started = time.perf_counter()
        land_batch(conn, batch, clock, cfg)
        if pending is not None:
            pending(conn, clock.now)
        times.append(time.perf_counter() - started)
        if args.compact_every and len(times) % args.compact_every == 0:
            report = maintenance.MaintenanceReport()
            for name, step in maintenance.compaction_steps(conn, "lake"):
                maintenance.run_step(conn, "lake", name, step, report)
        if args.refresh_every and len(times) % args.refresh_every == 0:
            refreshes.append(refresh_analytics(conn, Lake.analysts(settings)))
            if len(refreshes) % 2 == 0:  # as the refresh thread does: a refresh every 15 s, this every 30 s
                started = time.perf_counter()
                compact_analysts(conn, Lake.analysts(settings))
                compactions.append(time.perf_counter() - started)
        if len(times) % args.every == 0:
            print(
                f"batches {len(times) - args.every + 1}-{len(times)}: median "
                f"{statistics.median(times[-args.every :]) * 1000:,.0f} ms, {data_files(conn):,} data files"
                + (f", analysts' refresh median {statistics.median(refreshes) * 1000:,.0f} ms" if refreshes else "")
                + (f", their compaction median {statistics.median(compactions) * 1000:,.0f} ms" if compactions else ""),
                flush=True,
            )
            refreshes.clear()
            compactions.clear()
            _print_statements(conn, args.statements)


def _print_statements(conn: TimedConnection, top: int) -> None:
    """The window's costliest statements, then a new window."""
    for sql, (n, t) in sorted(conn.stats.items(), key=lambda kv: -kv[1][1])[:top]:
        print(f"  {t:7.2f} s {n:5d} x {t / n * 1000:7.1f} ms  {sql}", flush=True)
    conn.stats.clear()


if __name__ == "__main__":
    main()
