"""One example per rule of contract/EVENTS.md: each fails if its rule is removed."""

from __future__ import annotations

import json

import pytest

from schemas.events import Envelope
from schemas.validate import Clock, Rejection, validate_event
from tests.factories import ALL_TYPES, NOW, event, racemic_session, raw

CLOCK = Clock(NOW)
DELETE = object()


def mutate(e: dict, path: str, value) -> dict:
    keys = path.split(".")
    node = e
    for k in keys[:-1]:
        node = node[int(k)] if isinstance(node, list) else node[k]
    if value is DELETE:
        del node[keys[-1]]
    else:
        node[keys[-1]] = value
    return e


def reject(e: dict, family: str | None = None) -> Rejection:
    result = validate_event(raw(e), CLOCK, family)
    assert isinstance(result, Rejection), f"expected a rejection, got {result!r}"
    return result


def locs(r: Rejection) -> set[str]:
    return {err["loc"] for err in r.errors}


@pytest.mark.parametrize("event_type", ALL_TYPES)
def test_every_type_accepts_a_valid_event(event_type):
    result = validate_event(raw(event(event_type)), CLOCK)
    assert isinstance(result, Envelope) and result.event_type == event_type


def test_racemic_session_is_valid():
    assert isinstance(validate_event(raw(event("session.completed", body=racemic_session())), CLOCK), Envelope)


ENVELOPE_CASES = [
    ("event_id", "not-a-uuid", "event_id"),
    ("event_id", DELETE, "event_id"),
    ("clinic_id", "Austin_1", "clinic_id"),  # pattern: lower case, digits, hyphens
    ("clinic_id", "-austin", "clinic_id"),
    ("clinic_id", "a", "clinic_id"),  # 2..32
    ("clinic_id", "a" * 33, "clinic_id"),
    ("patient_id", "P01", "patient_id"),  # 4..64
    ("patient_id", "jane.doe@example.com", "patient_id"),
    ("patient_id", "P" * 65, "patient_id"),
    ("source", "", "source"),
    ("source", "s" * 65, "source"),
    ("correlation_id", "c" * 129, "correlation_id"),
    ("occurred_at", "2026-02-28T10:00:00", "occurred_at"),  # no offset
    ("occurred_at", "2026-02-28", "occurred_at"),
    ("occurred_at", "28/02/2026 10:00", "occurred_at"),
    ("occurred_at", 1772272800, "occurred_at"),
    ("occurred_at", "1999-12-31T23:59:59Z", "occurred_at"),  # before 2000
    ("occurred_at", "2026-03-01T12:05:01Z", "occurred_at"),  # > 5 min ahead of the clock
    ("occurred_at", "2026-02-30T10:00:00Z", "occurred_at"),  # no such day
    ("payload", DELETE, "payload"),
    ("surprise", 1, "surprise"),  # unknown envelope field
]


@pytest.mark.parametrize("path,value,loc", ENVELOPE_CASES)
def test_envelope_rules(path, value, loc):
    r = reject(mutate(event("consent.updated"), path, value))
    assert r.error_kind == "schema" and loc in locs(r), r.errors


def test_timestamps_at_the_edges_are_accepted():
    for at in (
        "2000-01-01T00:00:00Z",
        "2026-03-01T12:05:00Z",
        "2026-03-01T07:05:00-05:00",
        "2026-03-01T12:00:00.123456789+00:00",
    ):
        assert isinstance(validate_event(raw(mutate(event("consent.updated"), "occurred_at", at)), CLOCK), Envelope)


def test_the_clock_is_an_input():
    future = mutate(event("consent.updated"), "occurred_at", "2026-03-02T12:00:00Z")
    assert isinstance(validate_event(raw(future), CLOCK), Rejection)
    later = Clock(NOW.replace(day=3))
    assert isinstance(validate_event(raw(future), later), Envelope)


def test_null_correlation_id_is_taken_as_absent():
    assert isinstance(validate_event(raw(mutate(event("consent.updated"), "correlation_id", None)), CLOCK), Envelope)


PAYLOAD_CASES = [
    # patient.registered
    ("patient.registered", "timezone", "Central Time", "payload.timezone"),
    ("patient.registered", "timezone", "America/Chicag", "payload.timezone"),
    ("patient.registered", "birth_year", 1899, "payload.birth_year"),
    ("patient.registered", "birth_year", 2027, "payload.birth_year"),  # after the clock's year
    ("patient.registered", "consent.phone", DELETE, "payload.consent.phone"),
    ("patient.registered", "consent.sms", "yes", "payload.consent.sms"),
    ("patient.registered", "preferred_channel", "fax", "payload.preferred_channel"),
    ("patient.registered", "quiet_hours", {"start": "9pm", "end": "08:00"}, "payload.quiet_hours.start"),
    ("patient.registered", "quiet_hours", {"start": "21:00", "end": "24:00"}, "payload.quiet_hours.end"),
    ("patient.registered", "quiet_hours", {"start": "21:00"}, "payload.quiet_hours.end"),
    ("patient.registered", "name", "Jane", "payload.name"),
    # consent.updated
    ("consent.updated", "sms", DELETE, "payload"),
    ("consent.updated", "sms", "STOP", "payload.sms"),
    # intake.assessed
    ("intake.assessed", "diagnosis_codes", [], "payload.diagnosis_codes"),
    ("intake.assessed", "diagnosis_codes", ["F33.2"] * 11, "payload.diagnosis_codes"),
    ("intake.assessed", "diagnosis_codes", ["f33.2"], "payload.diagnosis_codes[0]"),
    ("intake.assessed", "diagnosis_codes", ["F3"], "payload.diagnosis_codes[0]"),
    ("intake.assessed", "diagnosis_codes", ["F33.12345"], "payload.diagnosis_codes[0]"),
    ("intake.assessed", "failed_antidepressant_trials", -1, "payload.failed_antidepressant_trials"),
    ("intake.assessed", "failed_antidepressant_trials", 31, "payload.failed_antidepressant_trials"),
    ("intake.assessed", "phq9_items", [1] * 8, "payload.phq9_items"),
    ("intake.assessed", "phq9_items", [1] * 10, "payload.phq9_items"),
    ("intake.assessed", "phq9_items", [1, 1, 1, 1, 4, 1, 1, 1, 1], "payload.phq9_items[4]"),
    ("intake.assessed", "phq9_items", [1, 1, 1, 1, -1, 1, 1, 1, 1], "payload.phq9_items[4]"),
    ("intake.assessed", "phq9_items", [1, 1, 1, 1, 1.5, 1, 1, 1, 1], "payload.phq9_items[4]"),
    ("intake.assessed", "gad7_items", [1] * 9, "payload.gad7_items"),
    ("intake.assessed", "gad7_items", [0, 0, 0, 0, 0, 0, 9], "payload.gad7_items[6]"),
    ("intake.assessed", "blood_pressure", {"systolic": 900, "diastolic": 80}, "payload.blood_pressure.systolic"),
    ("intake.assessed", "blood_pressure", {"systolic": 59, "diastolic": 40}, "payload.blood_pressure.systolic"),
    ("intake.assessed", "blood_pressure", {"systolic": 150, "diastolic": 29}, "payload.blood_pressure.diastolic"),
    ("intake.assessed", "blood_pressure", {"systolic": 200, "diastolic": 161}, "payload.blood_pressure.diastolic"),
    ("intake.assessed", "blood_pressure", {"systolic": 80, "diastolic": 120}, "payload.blood_pressure.diastolic"),
    ("intake.assessed", "blood_pressure", {"systolic": 100, "diastolic": 100}, "payload.blood_pressure.diastolic"),
    ("intake.assessed", "screening.pregnant", DELETE, "payload.screening.pregnant"),
    ("intake.assessed", "screening.smoker", False, "payload.screening.smoker"),
    # consult.completed
    ("consult.completed", "clinician_id", "", "payload.clinician_id"),
    ("consult.completed", "clinician_id", "c" * 65, "payload.clinician_id"),
    ("consult.completed", "decision", "yes", "payload.decision"),
    ("consult.completed", "reason_code", "because", "payload.reason_code"),
    # rems.enrolled
    ("rems.enrolled", "rems_patient_id", "", "payload.rems_patient_id"),
    ("rems.enrolled", "rems_patient_id", "r" * 65, "payload.rems_patient_id"),
    ("rems.enrolled", "enrolled_on", "2026-02-20T00:00:00Z", "payload.enrolled_on"),
    ("rems.enrolled", "enrolled_on", "2026-02-30", "payload.enrolled_on"),
    # session.scheduled
    ("session.scheduled", "session_id", "", "payload.session_id"),
    ("session.scheduled", "session_id", "s" * 65, "payload.session_id"),
    ("session.scheduled", "modality", "oral", "payload.modality"),
    ("session.scheduled", "scheduled_for", "tomorrow", "payload.scheduled_for"),
    ("session.scheduled", "phase", "trial", "payload.phase"),
    # session.completed, esketamine
    ("session.completed", "dose_mg", 83, "payload.dose_mg"),
    ("session.completed", "dose_mg", 112, "payload.dose_mg"),
    ("session.completed", "dose_mg", DELETE, "payload.dose_mg"),
    ("session.completed", "lot_number", DELETE, "payload.lot_number"),
    ("session.completed", "lot_number", "", "payload.lot_number"),
    ("session.completed", "lot_number", "L" * 33, "payload.lot_number"),
    ("session.completed", "bp_40min", DELETE, "payload.bp_40min"),
    ("session.completed", "weight_kg", 80, "payload.weight_kg"),  # racemic field on esketamine
    ("session.completed", "dose_mg_per_kg", 0.5, "payload.dose_mg_per_kg"),
    ("session.completed", "infusion_minutes", 40, "payload.infusion_minutes"),
    ("session.completed", "modality", "oral", "payload.modality"),
    ("session.completed", "modality", DELETE, "payload.modality"),
    ("session.completed", "phase", DELETE, "payload.phase"),
    ("session.completed", "bp_pre", DELETE, "payload.bp_pre"),
    ("session.completed", "bp_discharge", DELETE, "payload.bp_discharge"),
    ("session.completed", "bp_discharge", {"systolic": 120, "diastolic": 130}, "payload.bp_discharge.diastolic"),
    ("session.completed", "ended_at", "2026-02-28T08:59:00Z", "payload.ended_at"),  # before start
    ("session.completed", "ended_at", "2026-02-28T09:00:00Z", "payload.ended_at"),  # equal to start
    ("session.completed", "ended_at", "2026-02-28T21:00:01Z", "payload.ended_at"),  # > 12 h
    ("session.completed", "started_at", "2026-02-28 09:00", "payload.started_at"),
    ("session.completed", "spo2_min", 49, "payload.spo2_min"),
    ("session.completed", "spo2_min", 101, "payload.spo2_min"),
    ("session.completed", "cadss_total", 93, "payload.cadss_total"),
    ("session.completed", "cadss_total", -1, "payload.cadss_total"),
    ("session.completed", "moaa_s_min", 6, "payload.moaa_s_min"),
    ("session.completed", "sedation", DELETE, "payload.sedation"),
    ("session.completed", "dissociation", "no", "payload.dissociation"),
    ("session.completed", "respiratory_depression", DELETE, "payload.respiratory_depression"),
    ("session.completed", "adverse_events", DELETE, "payload.adverse_events"),
    ("session.completed", "adverse_events", [{"code": "itch", "severity": "mild"}], "payload.adverse_events[0].code"),
    (
        "session.completed",
        "adverse_events",
        [{"code": "nausea", "severity": "fatal"}],
        "payload.adverse_events[0].severity",
    ),
    ("session.completed", "adverse_events", [{"code": "nausea"}], "payload.adverse_events[0].severity"),
    # session.cancelled, rems.form_submitted
    ("session.cancelled", "reason", "weather", "payload.reason"),
    ("session.cancelled", "session_id", DELETE, "payload.session_id"),
    ("rems.form_submitted", "submitted_on", "28-02-2026", "payload.submitted_on"),
    ("rems.form_submitted", "session_id", "", "payload.session_id"),
    # checkin.completed
    ("checkin.completed", "phq9_items", DELETE, "payload"),  # neither phq9 nor gad7
    ("checkin.completed", "phq9_items", [0] * 7, "payload.phq9_items"),
    ("checkin.completed", "side_effects", ["itch"], "payload.side_effects[0]"),
    ("checkin.completed", "side_effects", DELETE, "payload.side_effects"),
    ("checkin.completed", "channel", "pigeon", "payload.channel"),
    # adverse_event.reported
    ("adverse_event.reported", "code", "itch", "payload.code"),
    ("adverse_event.reported", "severity", "fatal", "payload.severity"),
    ("adverse_event.reported", "onset_at", "2026-02-28T10:00:00", "payload.onset_at"),
    # outreach.status
    ("outreach.status", "status", "read", "payload.status"),
    ("outreach.status", "channel", "in_clinic", "payload.channel"),
    ("outreach.status", "outreach_id", DELETE, "payload.outreach_id"),
    # alert actions (ALERTS.md)
    ("alert.acknowledged", "alert_id", "a-1", "payload.alert_id"),  # a UUID
    ("alert.acknowledged", "by", "", "payload.by"),
    ("alert.acknowledged", "by", "s" * 65, "payload.by"),  # 1 to 64 characters
    ("alert.acknowledged", "note", "called the patient", "payload.note"),  # unknown fields are rejected
    ("alert.resolved", "resolution", "fixed", "payload.resolution"),
    ("alert.resolved", "resolution", DELETE, "payload.resolution"),
    ("alert.resolved", "alert_id", DELETE, "payload.alert_id"),
    # produced
    ("outreach.requested", "template", "dose_reminder", "payload.template"),
    ("outreach.requested", "dose_mg", 56, "payload.dose_mg"),  # no clinical content can be added
    ("clinical.alert", "severity", "critical", "payload.severity"),
    ("clinical.alert", "reason", "bad_vibes", "payload.reason"),
    ("clinical.alert", "action", "snoozed", "payload.action"),
    ("clinical.alert", "occurrences", 0, "payload.occurrences"),
    ("clinical.alert", "escalation_level", 3, "payload.escalation_level"),
]


@pytest.mark.parametrize("event_type,path,value,loc", PAYLOAD_CASES)
def test_payload_rules(event_type, path, value, loc):
    r = reject(mutate(event(event_type), f"payload.{path}", value))
    assert r.error_kind == "schema" and loc in locs(r), r.errors
    assert r.event_type == event_type and r.event_id is not None


RACEMIC_CASES = [
    ("weight_kg", DELETE),
    ("weight_kg", 29.9),
    ("weight_kg", 300.1),
    ("dose_mg_per_kg", DELETE),
    ("dose_mg_per_kg", 0.04),
    ("dose_mg_per_kg", 1.51),
    ("infusion_minutes", DELETE),
    ("infusion_minutes", 9),
    ("infusion_minutes", 181),
    ("dose_mg", 56),
    ("lot_number", "L-1"),  # esketamine fields on a racemic session
]


@pytest.mark.parametrize("path,value", RACEMIC_CASES)
def test_racemic_rules(path, value):
    r = reject(mutate(event("session.completed", body=racemic_session()), f"payload.{path}", value))
    assert f"payload.{path}" in locs(r), r.errors


def test_racemic_bp_40min_is_optional_but_checked():
    e = event("session.completed", body=racemic_session())
    e["payload"]["bp_40min"] = {"systolic": 130, "diastolic": 85}
    assert isinstance(validate_event(raw(e), CLOCK), Envelope)
    e["payload"]["bp_40min"] = {"systolic": 130, "diastolic": 185}
    assert "payload.bp_40min.diastolic" in locs(reject(e))


def test_other_modality_field_message_says_what_to_do():
    r = reject(mutate(event("session.completed", body=racemic_session()), "payload.dose_mg", 56))
    assert "not allowed on a racemic_iv session" in r.errors[0]["msg"]


def test_every_error_is_reported_not_just_the_first():
    e = event("session.completed")
    mutate(e, "payload.dose_mg", 83)
    mutate(e, "payload.spo2_min", 10)
    mutate(e, "clinic_id", "BAD")
    assert {"payload.dose_mg", "payload.spo2_min", "clinic_id"} <= locs(reject(e))


# --- error kinds ----------------------------------------------------------------------------
def test_unknown_event_type():
    r = reject(mutate(event("consent.updated"), "event_type", "patient.deleted"))
    assert r.error_kind == "unknown_event_type" and r.event_type == "patient.deleted"


def test_missing_event_type_is_a_schema_error():
    r = reject(mutate(event("consent.updated"), "event_type", DELETE))
    assert r.error_kind == "schema" and "event_type" in locs(r)


@pytest.mark.parametrize(
    "version,kind",
    [(2, "unsupported_version"), (0, "unsupported_version"), ("1", "schema"), (True, "schema"), (DELETE, "schema")],
)
def test_schema_version(version, kind):
    r = reject(mutate(event("consent.updated"), "schema_version", version))
    assert r.error_kind == kind and "schema_version" in locs(r)


def test_wrong_topic():
    r = reject(event("consent.updated"), family="sessions")
    assert r.error_kind == "wrong_topic" and r.event_type == "consent.updated"
    assert isinstance(validate_event(raw(event("consent.updated")), CLOCK, "intake"), Envelope)
    assert reject(event("outreach.requested"), family="followups").error_kind == "wrong_topic"


@pytest.mark.parametrize(
    "payload,kind",
    [
        (b"{not json", "malformed_json"),
        (b'{"event_id": "x"', "malformed_json"),
        (b'\xff\xfe{"a": 1}', "malformed_json"),
        (b'{"event_type": "consent.updated", "source": "\xc3\x28"}', "malformed_json"),  # invalid UTF-8
        (b"[" * 100_000 + b"]" * 100_000, "malformed_json"),  # deeply nested
        (b'{"a":' * 5_000 + b"1" + b"}" * 5_000, "malformed_json"),
        (b"", "malformed_json"),
        (b"[1, 2, 3]", "schema"),
        (b'"a string"', "schema"),
        (b"42", "schema"),
        (b"null", "schema"),
    ],
)
def test_junk_is_a_rejection_never_a_crash(payload, kind):
    r = validate_event(payload, CLOCK)
    assert isinstance(r, Rejection) and r.error_kind == kind and r.errors
    assert r.raw == payload


def test_huge_message_is_rejected_without_parsing():
    big = raw(event("consent.updated")).replace(b'"ehr"', b'"' + b"x" * 2_000_000 + b'"')
    r = validate_event(big, CLOCK, max_bytes=1_048_576)
    assert r.error_kind == "schema" and "limit" in r.errors[0]["msg"]


def test_event_id_is_canonical():
    e = event("consent.updated")
    e["event_id"] = e["event_id"].upper()
    assert str(validate_event(raw(e), CLOCK).event_id) == e["event_id"].lower()


def test_rejection_errors_are_json():
    r = reject(mutate(event("session.completed"), "payload.dose_mg", 83))
    assert json.loads(r.errors_json()) == r.errors
