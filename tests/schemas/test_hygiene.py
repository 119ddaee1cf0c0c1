"""The contract's rules on dates, odd characters and repeated keys (EVENTS.md, "Shared shapes").

Each would fail if its rule were removed; the extreme dates are the ones that once stopped ingest.
"""

from __future__ import annotations

import json

import pytest

from schemas.events import Envelope
from schemas.validate import Clock, Rejection, validate_event
from tests.factories import NOW, event, raw

CLOCK = Clock(NOW)


def verdict(data: bytes):
    return validate_event(data, CLOCK)


def rejected_at(data: bytes) -> dict[str, str]:
    result = verdict(data)
    assert isinstance(result, Rejection), result
    assert result.error_kind == "schema", result
    return {e["loc"]: e["msg"] for e in result.errors}


@pytest.mark.parametrize(
    "field,value",
    [
        ("ended_at", "9999-12-31T23:59:59Z"),
        ("ended_at", "9999-12-31T23:59:00-23:59"),
        ("started_at", "0001-01-01T00:00:00Z"),
        ("started_at", "0001-01-01T00:00:00+23:59"),
        ("started_at", "1999-12-31T23:59:59Z"),
    ],
)
def test_extreme_session_times_are_rejected_at_their_field(field, value):
    e = event("session.completed")
    e["payload"][field] = value
    assert f"payload.{field}" in rejected_at(raw(e))


def test_payload_times_more_than_two_years_after_occurred_at_are_rejected():
    at = NOW.replace(year=NOW.year - 3)  # occurred three years ago
    e = event("adverse_event.reported", at=at, onset_at="2026-02-01T00:00:00Z")
    assert "more than 2 years after occurred_at" in rejected_at(raw(e))["payload.onset_at"]
    ok = event("adverse_event.reported", at=at, onset_at=at.replace(year=at.year + 2).isoformat())
    assert isinstance(verdict(raw(ok)), Envelope)


@pytest.mark.parametrize(
    "event_type,field", [("rems.enrolled", "enrolled_on"), ("rems.form_submitted", "submitted_on")]
)
def test_dates_have_the_same_bounds(event_type, field):
    assert f"payload.{field}" in rejected_at(raw(event(event_type, **{field: "1999-12-31"})))
    assert f"payload.{field}" in rejected_at(raw(event(event_type, **{field: "2099-01-01"})))
    assert f"payload.{field}" in rejected_at(raw(event(event_type, **{field: "9999-12-31"})))


@pytest.mark.parametrize("char", ["\u0000", "\u200b", "\u202e", "\u2066", "\ufeff", "\u00ad", "\u007f", "\u0085"])
@pytest.mark.parametrize("escaped", [True, False])
def test_control_and_format_characters_are_rejected_in_any_string(char, escaped):
    e = event("session.completed", session_id=f"sess{char}1")
    data = json.dumps(e, ensure_ascii=escaped).encode()
    msg = rejected_at(data)["payload.session_id"]
    assert f"U+{ord(char):04X}" in msg


def test_a_format_character_in_an_id_is_named_even_beside_other_errors():
    e = event("consent.updated", patient_id="P\u200b0001")
    errors = rejected_at(json.dumps(e, ensure_ascii=False).encode())
    assert "U+200B" in errors["patient_id"]


def test_ordinary_non_ascii_text_is_accepted():
    e = event("session.completed", lot_number="Lös-42é")
    assert isinstance(verdict(json.dumps(e, ensure_ascii=False).encode()), Envelope)
    assert isinstance(verdict(json.dumps(e).encode()), Envelope)


@pytest.mark.parametrize(
    "before,after,loc",
    [
        (b'"patient_id": "P0001"', b'"patient_id": "P0001", "patient_id": "P0002"', "patient_id"),
        (b'"patient_id": "P0001"', b'"patient_id" : "P0001", "patient_id" : "P0002"', "patient_id"),
        (b'"systolic": 128', b'"systolic": 128, "systolic": 300', "payload.bp_pre.systolic"),
        (b'"sedation": false', b'"sedation": false,\n"sedation"\t:false', "payload.sedation"),
    ],
)
def test_a_key_twice_in_one_object_is_rejected_at_the_key(before, after, loc):
    data = raw(event("session.completed"))
    assert before in data
    errors = rejected_at(data.replace(before, after, 1))
    assert "more than once" in errors[loc]


def test_a_value_that_looks_like_a_key_is_not_a_repeat():
    e = event("session.completed", lot_number='L":"x')
    assert isinstance(verdict(raw(e)), Envelope)
    e = event("session.completed", lot_number="L42")
    assert isinstance(verdict(raw(e).replace(b'"lot_number": ', b'"lot_number" :  ')), Envelope)
