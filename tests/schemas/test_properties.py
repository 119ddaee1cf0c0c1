"""Property-based: generated valid events of every type pass; mutated ones are rejected, never crash."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.events import Envelope
from schemas.validate import Clock, Rejection, validate_event
from tests.factories import ALL_TYPES, NOW, SCREENING, ts

CLOCK = Clock(NOW)
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

instants = st.datetimes(
    min_value=datetime(2000, 1, 2), max_value=datetime(2026, 2, 27), timezones=st.just(timezone.utc)
)
# Payload dates may be at most two years after occurred_at: events occur after every generated payload date
# less two years.
recent = st.datetimes(min_value=datetime(2024, 2, 28), max_value=datetime(2026, 2, 27), timezones=st.just(timezone.utc))
offsets = st.sampled_from([timedelta(0), timedelta(hours=-5), timedelta(hours=5, minutes=30), timedelta(hours=-10)])


@st.composite
def stamp(draw, at=instants):
    return draw(at).astimezone(timezone(draw(offsets))).isoformat()


@st.composite
def bp(draw):
    dia = draw(st.integers(30, 159))
    return {"systolic": draw(st.integers(max(60, dia + 1), 260)), "diastolic": dia}


items = lambda n: st.lists(st.integers(0, 3), min_size=n, max_size=n)  # noqa: E731
codes = st.sampled_from(
    [
        "nausea",
        "vomiting",
        "dizziness",
        "headache",
        "hypertension",
        "sedation",
        "dissociation",
        "anxiety",
        "respiratory_depression",
        "other",
    ]
)
sev = st.sampled_from(["mild", "moderate", "severe", "serious"])
ident = st.text("abcXYZ0129-_", min_size=4, max_size=64)
# The contract forbids control and invisible format characters (Cc, Cf) in every string.
short = st.text(st.characters(codec="utf-8", exclude_categories=["Cs", "Cc", "Cf"]), min_size=1, max_size=32)
day = st.dates(min_value=datetime(2000, 1, 1).date(), max_value=datetime(2026, 2, 27).date()).map(str)


@st.composite
def session_completed(draw):
    start = draw(instants)
    end = start + timedelta(minutes=draw(st.integers(1, 12 * 60)))
    body = {
        "session_id": draw(short),
        "phase": draw(st.sampled_from(["induction", "maintenance", "booster"])),
        "started_at": ts(start),
        "ended_at": ts(end),
        "bp_pre": draw(bp()),
        "bp_discharge": draw(bp()),
        "sedation": draw(st.booleans()),
        "dissociation": draw(st.booleans()),
        "respiratory_depression": draw(st.booleans()),
        "adverse_events": draw(st.lists(st.fixed_dictionaries({"code": codes, "severity": sev}), max_size=3)),
    }
    for name, strat in (
        ("spo2_min", st.integers(50, 100)),
        ("cadss_total", st.integers(0, 92)),
        ("moaa_s_min", st.integers(0, 5)),
    ):
        if draw(st.booleans()):
            body[name] = draw(strat)
    if draw(st.booleans()):
        body.update(
            modality="esketamine_nasal",
            dose_mg=draw(st.sampled_from([28, 56, 84])),
            lot_number=draw(short),
            bp_40min=draw(bp()),
        )
    else:
        body.update(
            modality="racemic_iv",
            weight_kg=draw(st.floats(30, 300)),
            dose_mg_per_kg=draw(st.floats(0.05, 1.5)),
            infusion_minutes=draw(st.integers(10, 180)),
        )
    return body


PAYLOADS = {
    "patient.registered": st.fixed_dictionaries(
        {
            "timezone": st.sampled_from(["America/Chicago", "Asia/Kolkata", "Pacific/Auckland", "UTC", "Europe/Paris"]),
            "birth_year": st.integers(1900, 2026),
            "consent": st.fixed_dictionaries({"sms": st.booleans(), "email": st.booleans(), "phone": st.booleans()}),
            "preferred_channel": st.sampled_from(["sms", "email", "phone"]),
        }
    ),
    "consent.updated": st.fixed_dictionaries(
        {}, optional={"sms": st.booleans(), "email": st.booleans(), "phone": st.booleans()}
    ).filter(bool),
    "intake.assessed": st.fixed_dictionaries(
        {
            "diagnosis_codes": st.lists(st.from_regex(r"\A[A-Z][0-9]{2}(\.[0-9A-Z]{1,4})?\Z"), min_size=1, max_size=10),
            "failed_antidepressant_trials": st.integers(0, 30),
            "phq9_items": items(9),
            "blood_pressure": bp(),
            "screening": st.fixed_dictionaries({k: st.booleans() for k in SCREENING}),
        },
        optional={"gad7_items": items(7)},
    ),
    "consult.completed": st.fixed_dictionaries(
        {
            "clinician_id": short,
            "decision": st.sampled_from(["esketamine_nasal", "racemic_iv", "not_eligible", "deferred"]),
            "reason_code": st.sampled_from(
                ["clinical_fit", "contraindication", "patient_preference", "coverage", "needs_more_information"]
            ),
        }
    ),
    "rems.enrolled": st.fixed_dictionaries({"rems_patient_id": short, "enrolled_on": day}),
    "session.scheduled": st.fixed_dictionaries(
        {
            "session_id": short,
            "modality": st.sampled_from(["esketamine_nasal", "racemic_iv"]),
            "scheduled_for": instants.map(ts),
            "phase": st.sampled_from(["induction", "maintenance", "booster"]),
        }
    ),
    "session.completed": session_completed(),
    "session.cancelled": st.fixed_dictionaries(
        {
            "session_id": short,
            "reason": st.sampled_from(["bp_elevated", "no_show", "patient_request", "clinical_hold", "other"]),
        }
    ),
    "rems.form_submitted": st.fixed_dictionaries({"session_id": short, "submitted_on": day}),
    "checkin.completed": st.fixed_dictionaries(
        {
            "side_effects": st.lists(codes, max_size=3),
            "channel": st.sampled_from(["sms", "email", "phone", "in_clinic"]),
        },
        optional={"task_id": short, "phq9_items": items(9), "gad7_items": items(7)},
    ).filter(lambda p: "phq9_items" in p or "gad7_items" in p),
    "adverse_event.reported": st.fixed_dictionaries(
        {"code": codes, "severity": sev, "onset_at": instants.map(ts)}, optional={"session_id": short}
    ),
    "outreach.status": st.fixed_dictionaries(
        {
            "outreach_id": short,
            "status": st.sampled_from(["delivered", "failed", "replied", "opted_out"]),
            "channel": st.sampled_from(["sms", "email", "phone"]),
        }
    ),
    "outreach.requested": st.fixed_dictionaries(
        {
            "outreach_id": short,
            "channel": st.sampled_from(["sms", "email", "phone"]),
            "template": st.sampled_from(
                ["checkin_day1", "checkin_month1", "checkin_month3", "checkin_month6", "checkin_month12"]
            ),
            "task_id": short,
            "send_after": instants.map(ts),
        }
    ),
    "clinical.alert": st.fixed_dictionaries(
        {
            "alert_id": short,
            "severity": st.sampled_from(["urgent", "high", "routine"]),
            "reason": st.sampled_from(["bp_crisis", "worsening", "phq9_item9_positive"]),
            "source_event_id": short,
            "raised_at": instants.map(ts),
            "action": st.sampled_from(["raised", "repeated", "escalated", "withdrawn"]),
            "episode_id": st.uuids().map(str),
            "occurrences": st.integers(1, 500),
            "escalation_level": st.integers(0, 2),
        }
    ),
    "alert.acknowledged": st.fixed_dictionaries({"alert_id": st.uuids().map(str), "by": short}),
    "alert.resolved": st.fixed_dictionaries(
        {
            "alert_id": st.uuids().map(str),
            "by": short,
            "resolution": st.sampled_from(["actioned", "no_action_needed", "false_positive", "duplicate"]),
        }
    ),
}
assert set(PAYLOADS) == set(ALL_TYPES)


@st.composite
def valid_events(draw):
    event_type = draw(st.sampled_from(ALL_TYPES))
    return {
        "event_id": str(draw(st.uuids())),
        "event_type": event_type,
        "schema_version": 1,
        "occurred_at": draw(stamp(at=recent)),
        "clinic_id": draw(st.from_regex(r"\A[a-z0-9][a-z0-9-]{1,31}\Z")),
        "patient_id": draw(ident),
        "source": draw(short),
        "payload": draw(PAYLOADS[event_type]),
    }


@FAST
@given(valid_events())
def test_generated_valid_events_pass(e):
    result = validate_event(json.dumps(e).encode(), CLOCK)
    assert isinstance(result, Envelope), result
    assert result.event_type == e["event_type"] and str(result.event_id) == e["event_id"]


def _paths(node, prefix=()):
    if isinstance(node, dict):
        for k, v in node.items():
            yield prefix + (k,)
            yield from _paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield prefix + (i,)
            yield from _paths(v, prefix + (i,))


def _set(node, path, value):
    for k in path[:-1]:
        node = node[k]
    node[path[-1]] = value


@FAST
@given(valid_events(), st.data())
def test_a_field_of_the_wrong_kind_is_rejected(e, data):
    """Replace any field with a value of an incompatible JSON type: always a schema rejection."""
    path = data.draw(st.sampled_from([p for p in _paths(e) if p != ("correlation_id",)]))
    node = e
    for k in path:
        node = node[k]
    wrong = {str: 12345, bool: "yes", int: "12", float: "1.5", list: {"x": 1}, dict: [1]}
    _set(e, path, wrong[type(node)])
    result = validate_event(json.dumps(e).encode(), CLOCK)
    assert isinstance(result, Rejection) and result.errors


@FAST
@given(valid_events(), st.data())
def test_an_unknown_field_anywhere_is_rejected(e, data):
    objects = [p for p in _paths(e) if isinstance(_get(e, p), dict)] + [()]
    path = data.draw(st.sampled_from(objects))
    _get(e, path)["zz_unknown"] = 1
    result = validate_event(json.dumps(e).encode(), CLOCK)
    assert isinstance(result, Rejection) and result.error_kind == "schema"
    assert any(err["loc"].endswith("zz_unknown") for err in result.errors)


@FAST
@given(valid_events(), st.data())
def test_a_missing_required_field_is_rejected(e, data):
    optional = {
        "correlation_id",
        "quiet_hours",
        "gad7_items",
        "spo2_min",
        "cadss_total",
        "moaa_s_min",
        "task_id",
        "session_id",
        "sms",
        "email",
        "phone",
        "phq9_items",
        "bp_40min",
    }
    paths = [
        p for p in _paths(e) if isinstance(p[-1], str) and p[-1] not in optional and isinstance(_get(e, p[:-1]), dict)
    ]
    path = data.draw(st.sampled_from(paths))
    del _get(e, path[:-1])[path[-1]]
    assert isinstance(validate_event(json.dumps(e).encode(), CLOCK), Rejection)


def _get(node, path):
    for k in path:
        node = node[k]
    return node


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_crash(blob):
    assert isinstance(validate_event(blob, CLOCK), Rejection)


@FAST
@given(valid_events(), st.integers(0, 200), st.binary(min_size=1, max_size=3))
def test_corrupted_bytes_never_crash(e, pos, junk):
    b = json.dumps(e).encode()
    pos = min(pos, len(b))
    result = validate_event(b[:pos] + junk + b[pos:], CLOCK)
    assert isinstance(result, (Envelope, Rejection))
