"""Build the events the pipeline publishes, validated against the same contract as inbound ones."""

from __future__ import annotations

import json
from datetime import datetime

from schemas.validate import EVENT_ADAPTER

SOURCE = "clinicflow"


def produced_event(
    event_type: str, event_id: str, occurred_at: datetime, clinic_id: str, patient_id: str, payload: dict
) -> bytes:
    """The event as bytes; raises pydantic.ValidationError if it would break the contract."""
    body = {
        "event_id": event_id,
        "event_type": event_type,
        "schema_version": 1,
        "occurred_at": occurred_at.isoformat(),
        "clinic_id": clinic_id,
        "patient_id": patient_id,
        "source": SOURCE,
        "payload": payload,
    }
    raw = json.dumps(body, default=_iso).encode()
    EVENT_ADAPTER.validate_json(raw)
    return raw


def _iso(v):
    if isinstance(v, datetime):
        return v.isoformat()
    raise TypeError(f"cannot serialise {type(v).__name__}")
