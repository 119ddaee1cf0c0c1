"""Simulated event histories for the benchmarks, and a publish that survives a slow broker.

`simulate(patients)` spreads every patient over the same 240 days: ask it for five million
events and it simulates a clinic of 130,000 patients all in treatment at once, so each
20,000-event batch touches about 9,000 patients (measured at 1.9 million events) and the
planner re-derives every one of them. That measures a bigger clinic, not a longer history.
`growing(n)` is how a clinic's history grows: a new cohort of patients (and seed) every
100,000 events, each cohort over the same window, so a batch touches about as many patients
at five million events as at a hundred thousand while the tables grow fifty-fold.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime, timezone
from itertools import islice

from clinicflow.simulate import simulate
from connectors.exceptions import PublishInterruptedError
from connectors.publish import publish_lines
from core.settings import Settings

END = datetime(2026, 11, 1, tzinfo=timezone.utc)
COHORT = 100_000  # events per cohort of new patients


def growing(n: int) -> Iterator[bytes]:
    """n simulated lines, a new cohort of patients every COHORT events."""
    for k in range(0, n, COHORT):
        chunk = simulate(COHORT // 38 + 1, seed=1000 + k, invalid_rate=0.02, end=END)
        for line in islice(chunk, min(COHORT, n - k)):
            yield line.replace(b'"PT', f'"C{k // COHORT}PT'.encode())  # the next cohort's patients are new


def publish_all(s: Settings, lines: Sequence[bytes], attempts: int = 5) -> None:
    """publish_lines, resumed where the broker stopped acknowledging: millions of lines from one
    process can outrun a local broker's delivery timeout (seen at 2 million lines)."""
    start = 1
    for _ in range(attempts):
        try:
            publish_lines(s, lines, from_line=start)
            return
        except PublishInterruptedError as e:
            start = e.report.resume_line()
            print(f"publishing: the broker fell behind; resuming at line {start:,}", flush=True)
    raise SystemExit(f"publishing the benchmark's events failed {attempts} times; is the broker healthy?")
