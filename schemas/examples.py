"""Valid contract events as dicts, one builder per event type: for tests to mutate and benchmarks to time."""

from __future__ import annotations

import copy
import json
import uuid
from datetime import datetime, timedelta, timezone

from schemas.events import SCREENING_FIELDS

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)
BP = {"systolic": 128, "diastolic": 82}
SCREENING = {k: False for k in SCREENING_FIELDS}


def ts(dt: datetime) -> str:
    return dt.isoformat().replace("+00:00", "Z")


def _session_base(start: datetime) -> dict:
    return {
        "session_id": "sess-1",
        "phase": "induction",
        "started_at": ts(start),
        "ended_at": ts(start + timedelta(minutes=130)),
        "bp_pre": dict(BP),
        "bp_discharge": dict(BP),
        "sedation": False,
        "dissociation": False,
        "respiratory_depression": False,
        "adverse_events": [],
    }


def payload(event_type: str, at: datetime = NOW - timedelta(days=1)) -> dict:
    """A valid payload of the given type."""
    session = _session_base(at - timedelta(hours=3))
    return copy.deepcopy(
        {
            "patient.registered": {
                "timezone": "America/Chicago",
                "birth_year": 1980,
                "consent": {"sms": True, "email": True, "phone": False},
                "preferred_channel": "sms",
            },
            "consent.updated": {"sms": False},
            "intake.assessed": {
                "diagnosis_codes": ["F33.2"],
                "failed_antidepressant_trials": 2,
                "phq9_items": [2, 2, 2, 2, 2, 2, 2, 2, 0],
                "blood_pressure": dict(BP),
                "screening": dict(SCREENING),
            },
            "consult.completed": {
                "clinician_id": "dr-7",
                "decision": "esketamine_nasal",
                "reason_code": "clinical_fit",
            },
            "rems.enrolled": {"rems_patient_id": "R-123", "enrolled_on": "2026-02-20"},
            "session.scheduled": {
                "session_id": "sess-1",
                "modality": "esketamine_nasal",
                "scheduled_for": ts(at + timedelta(days=3)),
                "phase": "induction",
            },
            "session.completed": {
                **session,
                "modality": "esketamine_nasal",
                "dose_mg": 56,
                "lot_number": "L-42",
                "bp_40min": dict(BP),
            },
            "session.cancelled": {"session_id": "sess-1", "reason": "no_show"},
            "rems.form_submitted": {"session_id": "sess-1", "submitted_on": "2026-02-28"},
            "checkin.completed": {"phq9_items": [1, 1, 1, 1, 1, 1, 1, 1, 0], "side_effects": [], "channel": "sms"},
            "adverse_event.reported": {"code": "headache", "severity": "mild", "onset_at": ts(at)},
            "outreach.status": {"outreach_id": "o-1", "status": "delivered", "channel": "sms"},
            "outreach.requested": {
                "outreach_id": "o-1",
                "channel": "sms",
                "template": "checkin_day1",
                "task_id": "t-1",
                "send_after": ts(at),
            },
            "clinical.alert": {
                "alert_id": "a-1",
                "severity": "urgent",
                "reason": "bp_crisis",
                "source_event_id": str(uuid.uuid4()),
                "raised_at": ts(at),
                "action": "raised",
                "episode_id": str(uuid.uuid4()),
                "occurrences": 1,
                "escalation_level": 0,
            },
            "alert.acknowledged": {"alert_id": str(uuid.uuid4()), "by": "staff-17"},
            "alert.resolved": {"alert_id": str(uuid.uuid4()), "by": "staff-17", "resolution": "actioned"},
        }[event_type]
    )


def racemic_session(at: datetime = NOW - timedelta(days=1)) -> dict:
    p = _session_base(at - timedelta(hours=3))
    p.update(modality="racemic_iv", weight_kg=80.5, dose_mg_per_kg=0.5, infusion_minutes=40)
    return p


def event(
    event_type: str,
    patient_id: str = "P0001",
    at: datetime = NOW - timedelta(days=1),
    event_id: str | None = None,
    body: dict | None = None,
    **payload_overrides,
) -> dict:
    """A valid event dict; `body` replaces the payload, payload_overrides replace its fields."""
    body = body if body is not None else payload(event_type, at)
    body.update(payload_overrides)
    return {
        "event_id": event_id or str(uuid.uuid4()),
        "event_type": event_type,
        "schema_version": 1,
        "occurred_at": ts(at),
        "clinic_id": "austin-1",
        "patient_id": patient_id,
        "source": "ehr",
        "payload": body,
    }


def raw(e: dict) -> bytes:
    return json.dumps(e).encode()


ALL_TYPES = (
    "patient.registered",
    "consent.updated",
    "intake.assessed",
    "consult.completed",
    "rems.enrolled",
    "session.scheduled",
    "session.completed",
    "session.cancelled",
    "rems.form_submitted",
    "checkin.completed",
    "adverse_event.reported",
    "outreach.status",
    "alert.acknowledged",
    "alert.resolved",
    "outreach.requested",
    "clinical.alert",
)
