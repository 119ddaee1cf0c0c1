"""clinicflow against what a user would pick instead, on the same events in one run.

    make bench-peers                                   # 200,000 events, 3 rounds
    .venv/bin/python -m benchmarks.peers.run --events 50000 --rounds 1

Publishes N simulated events (2% invalid) to fresh topics on the local broker once; then, in each
of --rounds interleaved rounds, runs every contender as its own process over those topics from the
beginning: wall clock from start to exit, CPU seconds (user + system, from wait4), peak memory
(the process's own VmHWM) and the 1-minute load average when it started. Prints medians and writes
benchmarks/results/<timestamp>-peers.json. The peers run in .venv-peers (benchmarks/peers/requirements.txt).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from benchmarks.run import RESULTS, fresh_settings, history
from connectors.publish import publish_lines
from core.settings import Settings, child_env, load_settings

ROOT = Path(__file__).resolve().parents[2]
PEERS_PYTHON = ROOT / ".venv-peers" / "bin" / "python"
CHUNK = 200_000
CONTENDERS = {  # name: module in benchmarks.peers, or None for clinicflow itself
    "kafka-python, reading only": "bare_kafka_python",
    "confluent-kafka, reading only": "bare_confluent",
    "minimal loader (kafka-python + orjson + DuckDB per 20,000)": "minimal_loader",
    "quixstreams + batching DuckDB sink": "quix_loader",
    "dlt, parquet loader, tuned": "dlt_loader",
    "clinicflow ingest --drain --no-prefect": None,
}


def command(module: str | None, s: Settings, n: int, out: Path) -> tuple[list[str], dict | None]:
    if module is None:
        return [sys.executable, "-m", "clinicflow", "ingest", "--drain", "--no-prefect"], child_env(s)
    topics = ",".join(s.inbound_topics)
    cmd = [str(PEERS_PYTHON), "-m", f"benchmarks.peers.{module}", "--bootstrap", s.bootstrap_servers]
    return [*cmd, "--topics", topics, "--events", str(n), "--out", str(out)], None


def measure(cmd: list[str], env: dict | None) -> dict:
    """Run one contender to its exit: wall, CPU and its own report (its last stdout line)."""
    load = os.getloadavg()[0]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)  # reaped children only: this one, once it exits
    t0 = time.perf_counter()
    done = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:4])} failed (exit {done.returncode}):\n{done.stderr.decode()[-2000:]}")
    report = json.loads(done.stdout.decode().strip().splitlines()[-1])
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall_s": round(wall, 2), "cpu_s": round(cpu, 2), "load_1m": round(load, 2), **report}


def one_round(root: Path, topics: Settings, n: int, k: int) -> dict[str, dict]:
    """Every contender once, in an order rotated by the round so none always runs first."""
    names = list(CONTENDERS)
    names = names[k % len(names) :] + names[: k % len(names)]
    out = {}
    for name in names:
        # clinicflow reads the shared topics into a fresh warehouse with a consumer group of its own.
        s = topics.model_copy(
            update={
                "warehouse_path": root / f"r{k}" / "clinic.duckdb",
                "consumer_group": f"{topics.consumer_group}-r{k}",
            }
        )
        cmd, env = command(CONTENDERS[name], s, n, root / f"r{k}" / CONTENDERS[name] if CONTENDERS[name] else root)
        got = measure(cmd, env)
        got["events_per_s"] = round(n / got["wall_s"])
        print(
            f"  round {k + 1}: {name}: {got['events_per_s']:,} events/s, {got['peak_rss_mib']} MiB, "
            f"load {got['load_1m']}",
            flush=True,
        )
        out[name] = got
    return out


def medians(rounds: list[dict[str, dict]]) -> dict[str, dict]:
    keys = ("events_per_s", "wall_s", "cpu_s", "peak_rss_mib", "load_1m", "landed")
    return {name: {k: statistics.median(r[name][k] for r in rounds) for k in keys} for name in rounds[0]}


def print_table(n: int, med: dict[str, dict]) -> None:
    print(f"\n{n:,} events, {os.cpu_count()} cores, medians of the rounds (wall clock from start to exit)")
    print(f"{'contender':<62} {'events/s':>9} {'wall s':>7} {'CPU s':>7} {'peak MiB':>9} {'load':>5} {'landed':>9}")
    for name, m in med.items():
        print(
            f"{name:<62} {m['events_per_s']:>9,.0f} {m['wall_s']:>7.1f} {m['cpu_s']:>7.1f} "
            f"{m['peak_rss_mib']:>9.0f} {m['load_1m']:>5.2f} {m['landed']:>9,.0f}"
        )
    cf = med["clinicflow ingest --drain --no-prefect"]["events_per_s"]
    for name in ("dlt, parquet loader, tuned", "minimal loader (kafka-python + orjson + DuckDB per 20,000)"):
        print(f"clinicflow / {name.split(',')[0].split(' (')[0]}: {cf / med[name]['events_per_s']:.2f}x")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--label", default="")
    a = ap.parse_args()
    if not PEERS_PYTHON.exists():
        raise SystemExit(
            f"{PEERS_PYTHON} not found: `make bench-peers` creates it from benchmarks/peers/requirements.txt"
        )
    base = load_settings()
    root = Path(tempfile.mkdtemp(prefix="clinicflow-peers-"))
    topics = fresh_settings(base, f"peers{a.events}", root)
    data = history(a.events)
    print(f"peers: publishing {len(data):,} events to {topics.topic_intake} and its siblings", flush=True)
    # In chunks, one producer each: how a million lines were first published (before producers
    # batched 256 KiB, one producer left a busy partition's batches unsent; docs/BENCHMARKS.md).
    for i in range(0, len(data), CHUNK):
        publish_lines(topics, data[i : i + CHUNK])
    rounds = [one_round(root, topics, len(data), k) for k in range(a.rounds)]
    med = medians(rounds)
    print_table(len(data), med)
    result = {
        "label": a.label,
        "at": datetime.now(timezone.utc).isoformat(),
        "cores": os.cpu_count(),
        "events": len(data),
        "rounds": rounds,
        "medians": med,
    }
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    out = RESULTS / f"{stamp}-peers{'-' + a.label if a.label else ''}.json"
    out.write_text(json.dumps(result, indent=2))
    print(f"results: {out}")


if __name__ == "__main__":
    main()
