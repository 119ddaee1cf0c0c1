"""Events validated per second from bytes, next to json.loads alone on the same bytes, in one run.

    .venv/bin/python -m benchmarks.validate_bench [--events N] [--repeat R]

The mix is shaped like a clinic's traffic: sessions and check-ins dominate,
about 5% of messages are invalid in assorted ways.
"""

from __future__ import annotations

import argparse
import json
import random
import time

from schemas.examples import NOW, event, racemic_session
from schemas.validate import Clock, validate_event

MIX = [
    ("session.completed", 22),
    ("session.scheduled", 20),
    ("checkin.completed", 20),
    ("rems.form_submitted", 8),
    ("outreach.status", 10),
    ("intake.assessed", 4),
    ("patient.registered", 4),
    ("consent.updated", 3),
    ("consult.completed", 3),
    ("rems.enrolled", 2),
    ("session.cancelled", 2),
    ("adverse_event.reported", 2),
]


def corpus(n: int, seed: int = 7) -> list[bytes]:
    rnd = random.Random(seed)
    kinds = [k for k, w in MIX for _ in range(w)]
    out = []
    for _ in range(n):
        kind = rnd.choice(kinds)
        e = event(kind, patient_id=f"P{rnd.randrange(10_000):05d}")
        if kind == "session.completed" and rnd.random() < 0.4:
            e = event(kind, body=racemic_session())
        b = json.dumps(e).encode()
        if rnd.random() < 0.05:
            b = rnd.choice(
                [
                    b[:-3],
                    b.replace(b'"schema_version": 1', b'"schema_version": 2'),
                    b.replace(b'"ehr"', b'"ehr", "x": 1'),
                ]
            )
        out.append(b)
    return out


def rate(fn, data: list[bytes], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        for b in data:
            fn(b)
        best = min(best, time.perf_counter() - t0)
    return len(data) / best


def _loads(b: bytes):
    try:
        return json.loads(b)
    except ValueError:
        return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--events", type=int, default=50_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    data = corpus(args.events)
    clock = Clock(NOW)
    baseline = rate(_loads, data, args.repeat)
    ours = rate(lambda b: validate_event(b, clock), data, args.repeat)
    print(f"events: {len(data)}  bytes: {sum(map(len, data))}  (best of {args.repeat})")
    print(f"json.loads only:        {baseline:12,.0f} events/s")
    print(f"validate_event (typed): {ours:12,.0f} events/s")
    print(f"ratio validate/json.loads: {ours / baseline:.2f}")


if __name__ == "__main__":
    main()
