"""A realistic synthetic clinic history (seeded), as contract events in publishing order.

Patients register across time zones, are assessed (PHQ-9 baseline), seen in
consult, and treated: esketamine twice weekly for four weeks then weekly, with
REMS enrollment and monitoring forms (mostly on time); or racemic ketamine,
six infusions over two to three weeks, then boosters. Vitals are plausible,
with the rare crisis. Check-ins are answered at realistic rates, with PHQ-9
trajectories that improve for most and not for some. Consent changes, STOP
replies, events that arrive late, and a chosen share of invalid events of
every kind are mixed in.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from care.rules import stable_id
from schemas.events import SCREENING_FIELDS

ZONES = [
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Los_Angeles",
    "America/Phoenix",
    "Pacific/Honolulu",
    "Europe/London",
    "Asia/Kolkata",
]
CLINICS = ["austin-1", "denver-2", "boston-1"]


def _ts(t: datetime) -> str:
    return t.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


@dataclass
class _Patient:
    pid: str
    clinic: str
    zone: str
    start: datetime
    modality: str
    baseline: int
    responder: bool


class Simulator:
    """Deterministic for a seed: the same arguments always give the same bytes."""

    def __init__(
        self, patients: int, seed: int = 7, invalid_rate: float = 0.02, end: datetime | None = None, days: int = 240
    ):
        self.rnd = random.Random(seed)
        self.n = patients
        self.invalid_rate = invalid_rate
        self.end = end or datetime(2026, 11, 1, tzinfo=timezone.utc)
        self.begin = self.end - timedelta(days=days)
        self.events: list[tuple[datetime, dict]] = []

    # --- building blocks ------------------------------------------------------------------
    def _uuid(self) -> str:
        return str(uuid.UUID(int=self.rnd.getrandbits(128), version=4))

    def _emit(self, p: _Patient, etype: str, at: datetime, payload: dict, source: str = "ehr") -> dict:
        e = {
            "event_id": self._uuid(),
            "event_type": etype,
            "schema_version": 1,
            "occurred_at": _ts(at),
            "clinic_id": p.clinic,
            "patient_id": p.pid,
            "source": source,
            "payload": payload,
        }
        # Publishers deliver late sometimes: arrival time trails occurred_at.
        delay = timedelta(minutes=self.rnd.expovariate(1 / 20))
        if self.rnd.random() < 0.03:
            delay += timedelta(days=self.rnd.uniform(1, 10))
        self.events.append((at + delay, e))
        return e

    def _bp(self, crisis: float = 0.003, mean: float = 128) -> dict:
        if self.rnd.random() < crisis:
            return {"systolic": self.rnd.randint(180, 200), "diastolic": self.rnd.randint(100, 118)}
        sys_ = int(self.rnd.gauss(mean, 10))
        sys_ = min(max(sys_, 95), 175)
        return {"systolic": sys_, "diastolic": min(max(int(sys_ * 0.63 + self.rnd.gauss(0, 5)), 55), sys_ - 20)}

    def _phq9(self, total: int, item9_risk: float) -> list[int]:
        total = min(max(total, 0), 27)
        items = [0] * 9
        for _ in range(total):
            free = [i for i in range(8) if items[i] < 3]
            if not free:
                break
            items[self.rnd.choice(free)] += 1
        if self.rnd.random() < item9_risk:
            items[8] = self.rnd.randint(1, 2)
        return items

    # --- a patient's story ------------------------------------------------------------------
    def _patient(self, i: int) -> None:
        rnd = self.rnd
        start = self.begin + timedelta(days=rnd.uniform(0, (self.end - self.begin).days * 0.9), hours=rnd.uniform(0, 9))
        p = _Patient(
            f"PT{i:06d}",
            rnd.choice(CLINICS),
            rnd.choice(ZONES),
            start,
            "esketamine_nasal" if rnd.random() < 0.55 else "racemic_iv",
            rnd.randint(12, 24),
            rnd.random() < 0.6,
        )
        consent = {"sms": rnd.random() < 0.85, "email": rnd.random() < 0.7, "phone": rnd.random() < 0.4}
        reg = {
            "timezone": p.zone,
            "birth_year": rnd.randint(1950, 2004),
            "consent": consent,
            "preferred_channel": rnd.choice([c for c, ok in consent.items() if ok] or ["sms"]),
        }
        if rnd.random() < 0.1:
            reg["quiet_hours"] = {"start": "20:00", "end": "09:00"}
        self._emit(p, "patient.registered", start, reg, "intake-forms")
        screening = {k: False for k in SCREENING_FIELDS}
        if rnd.random() < 0.02:
            screening[rnd.choice(list(screening))] = True
        intake = {
            "diagnosis_codes": rnd.choice([["F33.2"], ["F33.1", "F41.1"], ["F32.2"]]),
            "failed_antidepressant_trials": rnd.randint(2, 6),
            "phq9_items": self._phq9(p.baseline, 0.08),
            "blood_pressure": self._bp(0),
            "screening": screening,
        }
        if rnd.random() < 0.6:
            intake["gad7_items"] = [rnd.randint(0, 3) for _ in range(7)]
        self._emit(p, "intake.assessed", start + timedelta(days=1), intake)
        decision = p.modality if rnd.random() > 0.05 else rnd.choice(["not_eligible", "deferred"])
        self._emit(
            p,
            "consult.completed",
            start + timedelta(days=3),
            {
                "clinician_id": f"dr-{rnd.randint(1, 9)}",
                "decision": decision,
                "reason_code": "clinical_fit" if decision == p.modality else "needs_more_information",
            },
        )
        if decision != p.modality:
            return
        if p.modality == "esketamine_nasal" and rnd.random() < 0.97:
            day = start + timedelta(days=4)
            self._emit(
                p,
                "rems.enrolled",
                day,
                {"rems_patient_id": f"R{rnd.randint(10**6, 10**7)}", "enrolled_on": day.date().isoformat()},
            )
        self._course(p)
        if rnd.random() < 0.08:  # a STOP reply at some point
            self._emit(p, "consent.updated", start + timedelta(days=rnd.uniform(10, 120)), {"sms": False}, "sms-gw")
        elif rnd.random() < 0.05:
            self._emit(p, "consent.updated", start + timedelta(days=rnd.uniform(5, 60)), {"email": True}, "portal")

    def _schedule(self, p: _Patient) -> list[tuple[datetime, str]]:
        first = p.start + timedelta(days=7)
        if p.modality == "esketamine_nasal":
            days = [0, 3, 7, 10, 14, 17, 21, 24] + [28 + 7 * w for w in range(self.rnd.randint(2, 10))]
            return [(first + timedelta(days=d), "induction" if d < 28 else "maintenance") for d in days]
        days = sorted(self.rnd.sample(range(0, 18), 6))
        boosters = [30 + 21 * b for b in range(self.rnd.randint(0, 4))]
        return [(first + timedelta(days=d), "induction") for d in days] + [
            (first + timedelta(days=d), "booster") for d in boosters
        ]

    def _course(self, p: _Patient) -> None:
        rnd = self.rnd
        for n, (day, phase) in enumerate(self._schedule(p)):
            if day > self.end - timedelta(days=1):
                break
            sid = f"{p.pid}-S{n + 1:02d}"
            start = day.replace(hour=rnd.choice([14, 15, 16, 17, 18]), minute=0, second=0, microsecond=0)
            self._emit(
                p,
                "session.scheduled",
                start - timedelta(days=3),
                {"session_id": sid, "modality": p.modality, "scheduled_for": _ts(start), "phase": phase},
            )
            if rnd.random() < 0.05:
                self._emit(
                    p,
                    "session.cancelled",
                    start - timedelta(hours=2),
                    {"session_id": sid, "reason": rnd.choice(["no_show", "patient_request", "bp_elevated"])},
                )
                continue
            end = self._session(p, sid, phase, start)
            self._followups(p, sid, n, end)

    def _session(self, p: _Patient, sid: str, phase: str, start: datetime) -> datetime:
        rnd = self.rnd
        esk = p.modality == "esketamine_nasal"
        minutes = rnd.choice([125, 130, 135, 140, 150]) if esk else rnd.choice([60, 70, 80, 90])
        if esk and rnd.random() < 0.01:
            minutes = rnd.randint(90, 119)
        end = start + timedelta(minutes=minutes)
        body = {
            "session_id": sid,
            "modality": p.modality,
            "phase": phase,
            "started_at": _ts(start),
            "ended_at": _ts(end),
            "bp_pre": self._bp(0, mean=121),
            "bp_discharge": self._bp(),
            "sedation": rnd.random() < 0.2,
            "dissociation": rnd.random() < 0.4,
            "respiratory_depression": rnd.random() < 0.002,
            "spo2_min": rnd.choice([94, 95, 96, 97, 98]),
            "cadss_total": rnd.randint(0, 30),
            "moaa_s_min": rnd.randint(3, 5),
            "adverse_events": [
                {
                    "code": rnd.choice(["nausea", "dizziness", "headache", "dissociation"]),
                    "severity": rnd.choice(["mild", "mild", "moderate"]),
                }
                for _ in range(rnd.choice([0, 0, 0, 1, 2]))
            ],
        }
        if rnd.random() < 0.002:
            body["adverse_events"].append({"code": "other", "severity": "serious"})
        if esk:
            body.update(
                dose_mg=rnd.choice([56, 84]), lot_number=f"L{rnd.randint(1000, 9999)}", bp_40min=self._bp(0.005)
            )
        else:
            body.update(
                weight_kg=round(rnd.uniform(50, 120), 1),
                dose_mg_per_kg=rnd.choice([0.5, 0.5, 0.6, 0.75]),
                infusion_minutes=40,
            )
        self._emit(p, "session.completed", end, body, "treatment-room")
        if esk and rnd.random() < 0.97:
            filed = end + timedelta(days=rnd.choice([0, 1, 2, 3, 5, 6]) if rnd.random() < 0.93 else rnd.randint(8, 12))
            if filed < self.end:
                self._emit(
                    p, "rems.form_submitted", filed, {"session_id": sid, "submitted_on": filed.date().isoformat()}
                )
        return end

    def _followups(self, p: _Patient, sid: str, n: int, end: datetime) -> None:
        rnd = self.rnd
        checks = [(end + timedelta(hours=rnd.uniform(26, 40)), stable_id(p.clinic, sid, "checkin_day1"), n)]
        if n == 0:
            for kind, days in zip(
                ("checkin_month1", "checkin_month3", "checkin_month6", "checkin_month12"), (30, 90, 180, 365)
            ):
                checks.append((end + timedelta(days=days, hours=rnd.uniform(2, 30)), stable_id(p.pid, kind), days))
        for at, task_id, progress in checks:
            if at >= self.end or rnd.random() > 0.7:
                continue
            improvement = (0.55 if p.responder else 0.1) * min(1.0, (progress + 1) / 8)
            total = int(p.baseline * (1 - improvement) + rnd.gauss(0, 2))
            if not p.responder and rnd.random() < 0.1:
                total = p.baseline + rnd.randint(5, 8)
            body = {"phq9_items": self._phq9(total, 0.02), "side_effects": [], "channel": rnd.choice(["sms", "email"])}
            if rnd.random() < 0.6:
                body["task_id"] = task_id
            self._emit(p, "checkin.completed", at, body, "patient-app")

    # --- invalid input, every kind ------------------------------------------------------------------
    def _corrupt(self, e: dict) -> bytes:
        kind = self.rnd.randrange(6)
        if kind == 0:
            return json.dumps(e).encode()[:-7]  # malformed_json
        if kind == 1:
            return json.dumps({**e, "schema_version": 2}).encode()  # unsupported_version
        if kind == 2:
            return json.dumps({**e, "event_type": "patient.merged"}).encode()  # unknown_event_type
        if kind == 3:
            return json.dumps({**e, "payload": {**e["payload"], "notes": "x"}}).encode()  # schema: unknown field
        if kind == 4:
            ahead = self.end + timedelta(days=3650)  # schema: clock skew, at any clock
            return json.dumps({**e, "occurred_at": _ts(ahead)}).encode()
        return json.dumps({**e, "patient_id": "jane.doe@example.com"}).encode()  # schema: identifier leak

    def generate(self) -> Iterator[bytes]:
        for i in range(self.n):
            self._patient(i)
        self.events.sort(key=lambda x: (x[0], x[1]["event_id"]))
        for _, e in self.events:
            # Registrations stay intact: a corrupted one would orphan a patient's whole history,
            # which the data-quality flow rightly flags but a demo should not start with.
            if e["event_type"] != "patient.registered" and self.rnd.random() < self.invalid_rate:
                yield self._corrupt(e)
            else:
                yield json.dumps(e, separators=(",", ":")).encode()


def simulate(patients: int, seed: int = 7, invalid_rate: float = 0.02, end: datetime | None = None) -> Iterator[bytes]:
    """JSON Lines (without newlines) of a synthetic clinic history, in arrival order."""
    return Simulator(patients, seed, invalid_rate, end).generate()
