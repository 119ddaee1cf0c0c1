"""The clinicflow benchmark: throughput against the bare Kafka client, latency to alert, memory, growth.

    make bench                       # 200,000 events, about 5 minutes on 2 cores
    .venv/bin/python -m benchmarks.run --events 50000 --latency-seconds 10
    .venv/bin/python -m benchmarks.run --huge     # adds the 1,000,000-event growth run

Against the real local broker (or CLINICFLOW_KAFKA_BOOTSTRAP_SERVERS), in one run:
  1. publish N realistic events (clinicflow simulate) to fresh topics;
  2. the ceiling: a bare kafka-python consumer reading every message, nothing else;
  3. clinicflow: `ingest --drain` (validate, land, plan, alert) into a fresh warehouse, in its own process;
  4. the ratio clinicflow / ceiling;
  5. latency in follow mode at a steady publish rate: publish -> landed, publish -> urgent alert on its topic;
  6. peak memory of each ingest process, and drains at 10k, 100k (and 1M) events for growth, of a
     history that grows as a clinic's does: a new cohort of patients every 100,000 events (one
     clinic of n / 38 patients at once would measure a bigger clinic; benchmarks/histories.py);
  7. the drain and the latency run again with --workers ingest processes in one consumer group.
Prints a table and writes benchmarks/results/<timestamp>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import datetime, timezone
from importlib.metadata import version
from pathlib import Path

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from benchmarks.histories import END, growing, publish_all
from clinicflow.simulate import simulate
from connectors.kafka import client_config, ensure_topics
from core.settings import Settings, child_env, load_settings
from warehouse.analytics import open_analytics
from warehouse.db import Lake, connect

RESULTS = Path(__file__).parent / "results"


def fresh_settings(base: Settings, tag: str, root: Path) -> Settings:
    prefix = f"bench-{tag}-{uuid.uuid4().hex[:6]}"
    over = {
        f"topic_{n}": f"{prefix}.{n}"
        for n in ("intake", "sessions", "followups", "alertactions", "outreach", "alerts", "dlq")
    }
    over.update(
        warehouse_path=root / f"{prefix}.duckdb",
        consumer_group=prefix,
        quality_dir=root / "gx",
    )
    s = base.model_copy(update=over)
    ensure_topics(s, s.all_topics)
    return s


def history(n: int) -> list[bytes]:
    """n realistic events (about 40 per patient)."""
    out = []
    for line in simulate(max(1, n // 38 + 1), seed=11, invalid_rate=0.02, end=END):
        out.append(line)
        if len(out) >= n:
            break
    return out


def run_child(s: Settings, mode: str, stop_after: float | None = None, workers: int = 1) -> tuple[dict, float, int]:
    """ingest in `workers` processes of one consumer group; returns (report, wall seconds, peak RSS in
    MiB of the largest). With several, the report sums theirs."""
    t0 = time.perf_counter()
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "clinicflow", "ingest", f"--{mode}", "--no-prefect"],
            env=child_env(s),
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(workers)
    ]
    if stop_after is not None:
        time.sleep(stop_after)
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
    outs = [proc.stdout.read() for proc in procs]
    statuses = [proc.wait() for proc in procs]
    wall = time.perf_counter() - t0
    if any(statuses):
        raise SystemExit(
            f"ingest --{mode} failed (exit codes {statuses}); run it by hand with the same settings to see why"
        )
    reports = [json.loads(out.decode().strip().splitlines()[-1]) for out in outs]
    report = reports[0] if workers == 1 else _summed(reports)
    # The child's own VmHWM: wait4's ru_maxrss would carry this process's high-water mark
    # (it holds every published event) into the child across fork and exec.
    return report, wall, max(r["peak_rss_mib"] for r in reports)


def _summed(reports: list[dict]) -> dict:
    """Workers started together: their run is as long as the longest (start-up excluded, as for one)."""
    out = {k: sum(r[k] for r in reports) for k in ("read", "landed", "quarantined_total", "batches")}
    return {
        **out,
        "seconds": max(r["seconds"] for r in reports),
        "peak_rss_mib": max(r["peak_rss_mib"] for r in reports),
    }


def bare_consume(s: Settings) -> tuple[int, float]:
    c = KafkaConsumer(
        **client_config(s),
        group_id=None,
        enable_auto_commit=False,
        max_poll_records=10_000,
        fetch_max_bytes=64 * 1024 * 1024,
        max_partition_fetch_bytes=8 * 1024 * 1024,
    )
    parts = [TopicPartition(t, p) for t in s.inbound_topics for p in c.partitions_for_topic(t)]
    c.assign(parts)
    c.seek_to_beginning(*parts)
    ends = c.end_offsets(parts)
    n, t0 = 0, time.perf_counter()
    while any(c.position(tp) < ends[tp] for tp in parts):
        for records in c.poll(timeout_ms=500).values():
            n += len(records)
    took = time.perf_counter() - t0
    c.close()
    return n, took


def throughput(base: Settings, root: Path, n: int, ceiling: bool, workers: int = 1, grown: bool = False) -> dict:
    """A drain of n events; `grown`: a history that grows by cohorts (benchmarks/histories.py), else
    one clinic of n / 38 patients."""
    s = fresh_settings(base, f"t{n}w{workers}", root)
    data = list(growing(n)) if grown else history(n)
    t0 = time.perf_counter()
    publish_all(s, data)
    published = time.perf_counter() - t0
    result = {"events": len(data), "publish_s": round(published, 1)}
    if ceiling:
        got, took = bare_consume(s)
        result.update(ceiling_events=got, ceiling_s=round(took, 2), ceiling_eps=round(got / took))
    report, wall, rss = run_child(s, "drain", workers=workers)
    result.update(
        workers=workers,
        ingest_s=report["seconds"],
        ingest_wall_s=round(wall, 2),
        ingest_eps=round(report["read"] / report["seconds"]),
        peak_rss_mib=rss,
        landed=report["landed"],
        quarantined=report["quarantined_total"],
        batches=report["batches"],
    )
    if ceiling:
        result["ratio"] = round(result["ingest_eps"] / result["ceiling_eps"], 3)
    return result


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def latency(base: Settings, root: Path, rate: int, seconds: float, workers: int = 1) -> dict:
    """Steady publishing into running `ingest --follow` workers; publish->landed and publish->urgent alert."""
    s = fresh_settings(base, f"lat{workers}", root)  # the follower's defaults, as an operator runs it
    pool = history(int(rate * seconds) + 1000)
    sent: dict[str, float] = {}
    alerts: dict[str, float] = {}
    stop = threading.Event()

    def watch_alerts():
        c = KafkaConsumer(**client_config(s), group_id=None, auto_offset_reset="earliest")
        c.assign([TopicPartition(s.topic_alerts, p) for p in c.partitions_for_topic(s.topic_alerts)])
        while not stop.is_set():
            for records in c.poll(timeout_ms=200).values():
                now = time.time()
                for r in records:
                    alerts.setdefault(json.loads(r.value)["payload"]["source_event_id"], now)
        c.close()

    staleness: list[float] = []
    publishing = threading.Event()  # staleness means something only while data keeps arriving
    started: list[float] = []

    def watch_snapshot():
        """How far the analysts' snapshot is behind: now minus the last batch it holds.

        One connection kept open, as an analyst's dashboard would: each query is its own
        transaction and reads the lake's newest snapshot. Opening the lake for every sample
        (about 490 ms of CPU each, four times a second) starved the follower being measured."""
        conn = None
        while not stop.is_set():
            time.sleep(0.25)
            try:
                conn = conn or open_analytics(Lake.analysts(s))
                (as_of,) = conn.execute("SELECT epoch(data_as_of) FROM snapshot_info").fetchone()
            except Exception:  # not published yet: open and sample again
                if conn is not None:
                    conn.close()
                conn = None
                continue
            # From the first snapshot taken after publishing began: before it, the start-up snapshot is empty.
            if as_of is not None and publishing.is_set() and as_of >= started[0]:
                staleness.append(time.time() - as_of)
        if conn is not None:
            conn.close()

    watcher = threading.Thread(target=watch_alerts)
    watcher.start()
    snapshot_watcher = threading.Thread(target=watch_snapshot)
    snapshot_watcher.start()
    proc_holder: dict = {}
    runner = threading.Thread(
        target=lambda: proc_holder.update(
            zip(("report", "wall", "rss"), run_child(s, "follow", stop_after=seconds + 12, workers=workers))
        )
    )
    runner.start()
    time.sleep(5)  # let the follower start and assign partitions
    producer = KafkaProducer(**client_config(s), acks="all", linger_ms=2)
    urgent = set()
    started.append(time.time())
    publishing.set()
    t0 = time.perf_counter()
    for i in range(int(rate * seconds)):
        target = t0 + i / rate
        delay = target - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        line = pool[i]
        if i % 100 == 0:  # 1% urgent: a check-in with PHQ-9 item 9 positive
            e = {
                "event_id": str(uuid.uuid4()),
                "event_type": "checkin.completed",
                "schema_version": 1,
                "occurred_at": datetime.now(timezone.utc).isoformat(),
                "clinic_id": "bench-1",
                "patient_id": f"PU{i:07d}",
                "source": "bench",
                "payload": {"phq9_items": [1, 1, 1, 1, 1, 1, 1, 1, 2], "side_effects": [], "channel": "sms"},
            }
            line = json.dumps(e).encode()
            urgent.add(e["event_id"])
        try:
            obj = json.loads(line)
            eid, etype = obj.get("event_id"), obj.get("event_type")
        except ValueError:
            eid, etype = None, None
        topic = (
            s.topic_followups
            if etype in ("checkin.completed", "adverse_event.reported", "outreach.status")
            else s.topic_sessions
            if etype and etype.startswith(("session", "rems.form"))
            else s.topic_intake
        )
        sent[eid] = time.time()
        producer.send(topic, key=str(obj.get("patient_id", "x")).encode() if eid else None, value=line)
    producer.flush()
    producer.close()
    publishing.clear()
    runner.join()
    stop.set()
    watcher.join()
    snapshot_watcher.join()

    conn = connect(s.warehouse_path, read_only=True, lake=Lake.of(s))
    landed = dict(
        conn.execute(
            "SELECT r.event_id, epoch(b.committed_at) FROM raw_events r JOIN batches b USING (batch_id)"
        ).fetchall()
    )
    conn.close()
    lat = [landed[e] - t for e, t in sent.items() if e in landed]
    alat = [alerts[e] - sent[e] for e in urgent if e in alerts]

    def summary(xs):
        return (
            {
                "n": len(xs),
                "p50_ms": round(pct(xs, 50) * 1000),
                "p95_ms": round(pct(xs, 95) * 1000),
                "p99_ms": round(pct(xs, 99) * 1000),
                "max_ms": round(max(xs) * 1000),
            }
            if xs
            else {"n": 0}
        )

    return {
        "workers": workers,
        "rate_eps": rate,
        "seconds": seconds,
        "published": len(sent),
        "peak_rss_mib": proc_holder.get("rss"),
        "publish_to_landed": summary(lat),
        "publish_to_urgent_alert": summary(alat),
        "snapshot_staleness": summary(staleness),
        "urgent_published": len(urgent),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--rate", type=int, default=2000, help="events/s for the latency run")
    ap.add_argument("--latency-seconds", type=float, default=20)
    ap.add_argument("--growth", default="10000,100000", help="event counts for the growth runs")
    ap.add_argument("--huge", action="store_true", help="add a 1,000,000-event growth run")
    ap.add_argument("--label", default="", help="a name for this run in the results file")
    ap.add_argument("--workers", type=int, default=2, help="also measure this many ingest workers (1: skip)")
    args = ap.parse_args()
    base = load_settings()
    root = Path(tempfile.mkdtemp(prefix="clinicflow-bench-"))
    t0 = time.perf_counter()
    print(f"benchmark: {args.events:,} events, {os.cpu_count()} cores, broker {base.bootstrap_servers}", flush=True)
    main_run = throughput(base, root, args.events, ceiling=True)
    print(f"  throughput done ({time.perf_counter() - t0:.0f}s)", flush=True)
    lat = latency(base, root, args.rate, args.latency_seconds)
    print(f"  latency done ({time.perf_counter() - t0:.0f}s)", flush=True)
    scaled = {}
    if args.workers > 1:
        scaled["throughput"] = throughput(base, root, args.events, ceiling=False, workers=args.workers)
        scaled["latency"] = latency(base, root, args.rate, args.latency_seconds, workers=args.workers)
        print(f"  {args.workers} workers done ({time.perf_counter() - t0:.0f}s)", flush=True)
    sizes = [int(x) for x in args.growth.split(",") if x] + ([1_000_000] if args.huge else [])
    growth = [throughput(base, root, n, ceiling=False, grown=True) for n in sizes]
    result = {
        "label": args.label,
        "at": datetime.now(timezone.utc).isoformat(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "versions": {p: version(p) for p in ("kafka-python", "duckdb", "pydantic", "prefect", "great_expectations")},
        "kafka": "4.3.1",
        "throughput": main_run,
        "latency": lat,
        "growth": growth,
        "workers": scaled,
        "total_s": round(time.perf_counter() - t0),
    }
    print_table(result)
    RESULTS.mkdir(exist_ok=True)
    out = (
        RESULTS
        / f"{datetime.now(timezone.utc).strftime('%Y%m%dT%H%M%SZ')}{'-' + args.label if args.label else ''}.json"
    )
    out.write_text(json.dumps(result, indent=2))
    print(f"results: {out}")


def print_table(r: dict) -> None:
    t, lat = r["throughput"], r["latency"]
    print(f"\n{'measure':44} {'value':>14}")
    rows = [
        ("events", f"{t['events']:,}"),
        ("bare consumer (ceiling), events/s", f"{t['ceiling_eps']:,}"),
        ("ingest --drain (clinicflow), events/s", f"{t['ingest_eps']:,}"),
        ("ratio clinicflow / ceiling", f"{t['ratio']:.3f}"),
        ("ingest peak RSS, MiB", f"{t['peak_rss_mib']:,}"),
    ]
    for name in ("publish_to_landed", "publish_to_urgent_alert", "snapshot_staleness"):
        s = lat[name]
        if s.get("n"):
            rows.append(
                (
                    f"{name} at {lat['rate_eps']}/s: p50/p95/p99/max ms",
                    f"{s['p50_ms']}/{s['p95_ms']}/{s['p99_ms']}/{s['max_ms']}",
                )
            )
    w = r.get("workers") or {}
    if w:
        n = w["throughput"]["workers"]
        rows.append((f"ingest --drain, {n} workers, events/s", f"{w['throughput']['ingest_eps']:,}"))
        for name in ("publish_to_landed", "publish_to_urgent_alert"):
            s = w["latency"][name]
            if s.get("n"):
                rows.append((f"{name}, {n} workers: p50/p99 ms", f"{s['p50_ms']}/{s['p99_ms']}"))
    for g in r["growth"]:
        rows.append(
            (f"growth {g['events']:,} events: events/s, peak MiB", f"{g['ingest_eps']:,} / {g['peak_rss_mib']}")
        )
    for name, value in rows:
        print(f"{name:44} {value:>14}")
    print(f"cores {r['cores']}; python {r['python']}; " + ", ".join(f"{k} {v}" for k, v in r["versions"].items()))


if __name__ == "__main__":
    main()
