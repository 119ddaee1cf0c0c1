"""A simulated on-call queue (seeded): answers the pipeline's `raised` alerts like a clinic would.

Most episodes are acknowledged within minutes (urgent) to hours (high, routine) of being
raised and later resolved with a realistic resolution; some are resolved straight away
(which acknowledges too), and a few are never answered, so escalation has work to do.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from care.rules import stable_id

# (share acknowledged, median minutes to acknowledge, median minutes from acknowledgement to resolution)
BEHAVIOUR = {"urgent": (0.9, 8, 45), "high": (0.85, 120, 360), "routine": (0.75, 480, 1440)}
RESOLUTIONS = {
    "urgent": {"actioned": 70, "no_action_needed": 20, "false_positive": 8, "duplicate": 2},
    "high": {"actioned": 50, "no_action_needed": 35, "false_positive": 10, "duplicate": 5},
    "routine": {"actioned": 30, "no_action_needed": 55, "false_positive": 10, "duplicate": 5},
}
STAFF = [f"oncall-{n:02d}" for n in range(1, 7)]


@dataclass(frozen=True)
class Raised:
    """What the queue saw: one `raised` clinical.alert message."""

    alert_id: str
    patient_id: str
    clinic_id: str
    severity: str
    raised_at: datetime


def raised_from(messages: list[dict]) -> list[Raised]:
    """The `raised` messages among clinical.alert events (dicts as published)."""
    return [
        Raised(
            m["payload"]["alert_id"],
            m["patient_id"],
            m["clinic_id"],
            m["payload"]["severity"],
            datetime.fromisoformat(m["payload"]["raised_at"]),
        )
        for m in messages
        if m["payload"].get("action") == "raised"
    ]


class OnCall:
    """Deterministic for a seed; answers never fall after `horizon`."""

    def __init__(self, seed: int = 11, horizon: datetime | None = None):
        self.rnd = random.Random(seed)
        self.horizon = horizon

    def _minutes(self, median: float) -> timedelta:
        return timedelta(minutes=max(0.5, self.rnd.lognormvariate(0, 0.9) * median))

    def _event(self, r: Raised, etype: str, at: datetime, **payload) -> dict:
        return {
            # From the alert and the action: an id drawn from a seeded generator could repeat one of
            # the simulated history's (same seed, same draws) and the answer would land as a duplicate.
            "event_id": stable_id(r.alert_id, "oncall", etype),
            "event_type": etype,
            "schema_version": 1,
            "occurred_at": at.isoformat(),
            "clinic_id": r.clinic_id,
            "patient_id": r.patient_id,
            "source": "oncall-queue",
            "payload": {"alert_id": r.alert_id, "by": self.rnd.choice(STAFF), **payload},
        }

    def answer(self, r: Raised) -> list[dict]:
        share, ack_median, resolve_median = BEHAVIOUR[r.severity]
        if self.rnd.random() >= share:
            return []  # nobody answers: escalation's job
        acked = r.raised_at + self._minutes(ack_median)
        resolved = acked + self._minutes(resolve_median)
        weights = RESOLUTIONS[r.severity]
        resolution = self.rnd.choices(list(weights), list(weights.values()))[0]
        out = []
        if self.rnd.random() < 0.9:  # the rest resolve at once, which acknowledges too
            out.append(self._event(r, "alert.acknowledged", acked))
        if self.rnd.random() < 0.8:
            out.append(self._event(r, "alert.resolved", resolved if out else acked, resolution=resolution))
        return [e for e in out if self.horizon is None or datetime.fromisoformat(e["occurred_at"]) <= self.horizon]

    def answers(self, raised: list[Raised]) -> list[bytes]:
        """Every answer, as contract events in the order they happened."""
        events = [e for r in sorted(raised, key=lambda r: (r.raised_at, r.alert_id)) for e in self.answer(r)]
        events.sort(key=lambda e: e["occurred_at"])
        return [json.dumps(e).encode() for e in events]
