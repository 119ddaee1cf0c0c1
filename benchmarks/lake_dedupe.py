"""What landing a batch costs on a DuckLake as the history grows: dedupe on event_id, then append.

DuckLake has no unique constraints, so landing must find a batch's event ids that are already in
the lake. Two ways, each timed per batch at 100k, 1M and 5M events of history (SQLite catalog,
Parquet data; synthetic events spread over a year in arrival order, 2,000 per batch, 1% of each
batch re-sent from the last day):

- `anti-join`: the batch against every event id in the lake.
- `window`: the batch against the lake's events whose occurred_at falls within the batch's
  own occurred_at range, so that DuckLake skips every data file outside it (per-file min/max
  statistics). A re-sent event carries its original occurred_at, so it is found. Flat, but
  not exact: an id re-sent with another occurred_at would land twice.
- `index`: what landing does (warehouse/dedupe.py): an in-memory index of the ids' 64-bit
  hashes that follows the lake's snapshots; only known hashes are looked up (window first).
  Exact. Its one-time load at the first batch is printed apart.

Run: .venv/bin/python -m benchmarks.lake_dedupe [--sizes 100000,1000000,5000000] [--batches 20]
Prints one row per (history size, strategy): median and p90 ms per batch, files scanned.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import duckdb

from warehouse.dedupe import index_for, known_ids
from warehouse.lake import attach_lake

START = datetime(2026, 1, 1, tzinfo=timezone.utc)
YEAR_S = 365 * 86400
BATCH = 2000

SCHEMA = """CREATE TABLE lake.events (event_id VARCHAR, patient_id VARCHAR, occurred_at TIMESTAMPTZ,
                                      event_type VARCHAR, event VARCHAR)"""


def _synthetic(first: int, n: int, total: int) -> str:
    """SQL for n events numbered from `first`, spread evenly over a year of `total` events."""
    return f"""SELECT uuid()::VARCHAR AS event_id, 'P' || lpad((i % 20000)::VARCHAR, 5, '0') AS patient_id,
                      TIMESTAMPTZ '{START.isoformat()}' + to_seconds((i * {YEAR_S} // {total})::BIGINT) AS occurred_at,
                      'checkin.completed' AS event_type, repeat('x', 180) AS event
               FROM range({first}, {first + n}) t(i)"""


def grow(conn, have: int, target: int, total: int) -> int:
    """Append history up to `target` events in chunks of 100k (one data file each, as compaction would leave)."""
    while have < target:
        n = min(100_000, target - have)
        conn.execute(f"INSERT INTO lake.events {_synthetic(have, n, total)}")
        have += n
    return have


def batch_table(conn, at: int, total: int) -> None:
    """The next batch: 2,000 new events at position `at`, 20 of them re-sent from the day before."""
    conn.execute(f"CREATE OR REPLACE TEMP TABLE batch AS {_synthetic(at, BATCH - 20, total)}")
    day_before = START + timedelta(seconds=at * YEAR_S // total - 86400)
    conn.execute(
        """INSERT INTO batch SELECT * FROM lake.events
           WHERE occurred_at BETWEEN ? AND ? + INTERVAL 1 DAY LIMIT 20""",
        [day_before, day_before],
    )


STRATEGIES = {
    "anti-join": """INSERT INTO lake.events SELECT b.* FROM batch b
                    WHERE NOT EXISTS (SELECT 1 FROM lake.events e WHERE e.event_id = b.event_id)""",
    # The range as constants: a filter DuckLake can compare with each file's min/max before reading it.
    "window": """INSERT INTO lake.events SELECT b.* FROM batch b
                 WHERE NOT EXISTS (SELECT 1 FROM lake.events e
                                   WHERE e.occurred_at BETWEEN $lo AND $hi AND e.event_id = b.event_id)""",
    "index": None,  # warehouse.dedupe, in _index_landing
}


def _index_landing(conn) -> int:
    conn.register("batch_known", known_ids(conn, "batch", table="events"))
    try:
        return conn.execute(
            "INSERT INTO lake.events SELECT b.* FROM batch b ANTI JOIN batch_known USING (event_id)"
        ).fetchall()[0][0]
    finally:
        conn.unregister("batch_known")


def measure(conn, strategy: str, at: int, total: int, batches: int) -> tuple[list[float], int]:
    """Land `batches` batches; ms per batch (dedupe + append + commit) and rows landed."""
    times, landed = [], 0
    if strategy == "index":
        t0 = time.perf_counter()
        index_for(conn, "events").follow(conn)
        print(f"{'':>10} {'':>10} (index load at this size: {(time.perf_counter() - t0) * 1000:.0f} ms, once)")
    for k in range(batches):
        batch_table(conn, at + k * BATCH, total)
        t0 = time.perf_counter()
        conn.execute("BEGIN")
        if strategy == "index":
            landed += _index_landing(conn)
        else:
            params = {}
            if strategy == "window":
                lo, hi = conn.execute("SELECT min(occurred_at), max(occurred_at) FROM batch").fetchall()[0]
                params = {"lo": lo, "hi": hi}
            landed += conn.execute(STRATEGIES[strategy], params).fetchall()[0][0]
        conn.execute("COMMIT")
        times.append((time.perf_counter() - t0) * 1000)
    return times, landed


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="100000,1000000,5000000")
    ap.add_argument("--batches", type=int, default=20)
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    total = max(sizes) + 1_000_000  # the year the timestamps spread over
    print(
        f"{'history':>10} {'strategy':>10} {'median ms':>10} {'p90 ms':>8} {'landed':>8}  (batch {BATCH}, 20 re-sent)"
    )
    with tempfile.TemporaryDirectory() as d:
        conn = duckdb.connect()
        conn.execute("SET TimeZone = 'UTC'")
        attach_lake(conn, f"sqlite:{Path(d) / 'catalog.sqlite'}", Path(d) / "data")
        conn.execute("USE lake")
        conn.execute(SCHEMA)
        have = 0
        for size in sizes:
            have = grow(conn, have, size, total)
            for strategy in STRATEGIES:
                times, landed = measure(conn, strategy, have, total, args.batches)
                have += landed
                p90 = statistics.quantiles(times, n=10)[-1]
                expect = (BATCH - 20) * args.batches
                print(f"{size:>10,} {strategy:>10} {statistics.median(times):>10.1f} {p90:>8.1f} {landed:>8}"
                      + ("" if landed == expect else f"  WRONG: expected {expect}"))  # fmt: skip


if __name__ == "__main__":
    main()
