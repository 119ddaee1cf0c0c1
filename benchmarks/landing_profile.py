"""Where a batch's landing time goes: every statement's count and time, no broker.

Simulated events (the same generator as `make bench`) are validated and landed in this
process, batch by batch, into a new lake (SQLite catalog) in a temporary folder, with the
care planner and the batch suite as ingest runs them. Each statement the landing sends is
timed through a thin wrapper around the connection.

Run: .venv/bin/python -m benchmarks.landing_profile [--events 20000] [--batch 2000] [--top 30]
Prints events/s, the median batch, then the statements by total time.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta, timezone
from itertools import islice
from pathlib import Path

from benchmarks.histories import END
from clinicflow.simulate import simulate
from core.settings import load_settings
from schemas.events import FAMILIES, INBOUND_FAMILIES
from schemas.messages import Message
from schemas.validate import Clock
from stages.ingest import landing_config
from warehouse.db import Lake, connect
from warehouse.landing import land_batch


class TimedConnection:
    """The connection, with each execute timed by its statement's first 100 characters."""

    def __init__(self, conn):
        self._conn = conn
        self.stats: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])

    def _timed(self, run, sql, *args):
        started = time.perf_counter()
        try:
            return run(sql, *args)
        finally:
            entry = self.stats[" ".join(sql.split())[:100]]
            entry[0] += 1
            entry[1] += time.perf_counter() - started

    def execute(self, sql, *args):
        return self._timed(self._conn.execute, sql, *args)

    def executemany(self, sql, *args):
        return self._timed(self._conn.executemany, sql, *args)

    def __getattr__(self, name):
        return getattr(self._conn, name)


def on_topics(lines: Iterable[bytes], topics: dict[str, str], default: str) -> Iterator[Message]:
    """Simulated lines as messages, each on its family's topic (unparseable ones on `default`)."""
    family = {m.model_fields["event_type"].annotation.__args__[0]: f for f, ms in FAMILIES.items() for m in ms}
    for offset, line in enumerate(lines):
        try:
            topic = topics.get(family.get(json.loads(line).get("event_type")), default)
        except (ValueError, AttributeError):
            topic = default
        yield Message(topic, 0, offset, None, line)


def messages(n: int, topics: dict[str, str], default: str) -> list[Message]:
    """n simulated events, each on its family's topic (unparseable ones on the first)."""
    return list(islice(on_topics(simulate(n // 38 + 1, seed=11, invalid_rate=0.02, end=END), topics, default), n))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=20_000)
    ap.add_argument("--batch", type=int, default=2_000)
    ap.add_argument("--top", type=int, default=30, help="statements to print")
    args = ap.parse_args()
    settings = load_settings(warehouse_path=Path(tempfile.mkdtemp(prefix="clinicflow-profile-")) / "w.duckdb")
    batch = messages(args.events, dict(zip(INBOUND_FAMILIES, settings.inbound_topics)), settings.inbound_topics[0])
    conn = TimedConnection(connect(settings.warehouse_path, lake=Lake.of(settings)))
    cfg, clock = landing_config(settings), Clock(datetime.now(timezone.utc), timedelta(seconds=300))
    times = []
    for i in range(0, len(batch), args.batch):
        started = time.perf_counter()
        land_batch(conn, batch[i : i + args.batch], clock, cfg)
        times.append(time.perf_counter() - started)
    total = sum(times)
    print(
        f"{len(batch):,} events in {len(times)} batches of {args.batch:,}: {len(batch) / total:,.0f} events/s, "
        f"median batch {statistics.median(times) * 1000:,.0f} ms"
    )
    spent = sum(t for _, t in conn.stats.values())
    print(f"{sum(n for n, _ in conn.stats.values()):,} statements, {spent:.2f} s of {total:.2f} s")
    for sql, (n, t) in sorted(conn.stats.items(), key=lambda kv: -kv[1][1])[: args.top]:
        print(f"{t:7.2f} s {n:6d} x {t / n * 1000:6.1f} ms  {sql}")


if __name__ == "__main__":
    main()
