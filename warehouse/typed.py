"""SQL that derives typed rows from the validated JSON in a batch's fresh events.

The JSON was produced by the models (model_dump_json), so every path exists
with the right type. Each payload is parsed once, by json_transform into a
struct, and the typed columns are read off the struct: column-wise, in DuckDB,
no Python per event.
"""

from __future__ import annotations

import json

BP = {"systolic": "INTEGER", "diastolic": "INTEGER"}
SCREENING = [
    "aneurysmal_vascular_disease",
    "arteriovenous_malformation",
    "intracerebral_hemorrhage_history",
    "ketamine_hypersensitivity",
    "pregnant",
    "active_substance_use_disorder",
    "psychosis_history",
]
SESSION = {
    "session_id": "VARCHAR",
    "modality": "VARCHAR",
    "phase": "VARCHAR",
    "started_at": "TIMESTAMPTZ",
    "ended_at": "TIMESTAMPTZ",
    "dose_mg": "INTEGER",
    "lot_number": "VARCHAR",
    "weight_kg": "DOUBLE",
    "dose_mg_per_kg": "DOUBLE",
    "infusion_minutes": "INTEGER",
    "bp_pre": BP,
    "bp_40min": BP,
    "bp_discharge": BP,
    "spo2_min": "INTEGER",
    "cadss_total": "INTEGER",
    "moaa_s_min": "INTEGER",
    "sedation": "BOOLEAN",
    "dissociation": "BOOLEAN",
    "respiratory_depression": "BOOLEAN",
    "adverse_events": "JSON",
}

# event_type -> (table, payload struct schema, select expressions after event_id, patient_id, occurred_at)
TYPED: dict[str, tuple[str, dict, list[str]]] = {
    "patient.registered": (
        "patients_registered",
        {
            "timezone": "VARCHAR",
            "birth_year": "INTEGER",
            "consent": {"sms": "BOOLEAN", "email": "BOOLEAN", "phone": "BOOLEAN"},
            "preferred_channel": "VARCHAR",
            "quiet_hours": {"start": "VARCHAR", "end": "VARCHAR"},
        },
        [
            "clinic_id",
            "p.timezone",
            "p.birth_year",
            "p.consent.sms",
            "p.consent.email",
            "p.consent.phone",
            "p.preferred_channel",
            "p.quiet_hours.start",
            "p.quiet_hours.end",
        ],
    ),
    "consent.updated": (
        "consent_updates",
        {"sms": "BOOLEAN", "email": "BOOLEAN", "phone": "BOOLEAN"},
        ["p.sms", "p.email", "p.phone"],
    ),
    "intake.assessed": (
        "intake_assessments",
        {
            "diagnosis_codes": ["VARCHAR"],
            "failed_antidepressant_trials": "INTEGER",
            "phq9_items": ["INTEGER"],
            "gad7_items": ["INTEGER"],
            "blood_pressure": BP,
            "screening": {k: "BOOLEAN" for k in SCREENING},
        },
        [
            "p.diagnosis_codes",
            "p.failed_antidepressant_trials",
            "p.phq9_items",
            "list_sum(p.phq9_items)",
            "p.phq9_items[9]",
            "p.gad7_items",
            "list_sum(p.gad7_items)",
            "p.blood_pressure.systolic",
            "p.blood_pressure.diastolic",
            *[f"p.screening.{k}" for k in SCREENING],
        ],
    ),
    "consult.completed": (
        "consults",
        {"clinician_id": "VARCHAR", "decision": "VARCHAR", "reason_code": "VARCHAR"},
        ["p.clinician_id", "p.decision", "p.reason_code"],
    ),
    "rems.enrolled": (
        "rems_enrollments",
        {"rems_patient_id": "VARCHAR", "enrolled_on": "DATE"},
        ["p.rems_patient_id", "p.enrolled_on"],
    ),
    "session.scheduled": (
        "sessions_scheduled",
        {"session_id": "VARCHAR", "modality": "VARCHAR", "scheduled_for": "TIMESTAMPTZ", "phase": "VARCHAR"},
        ["p.session_id", "p.modality", "p.scheduled_for", "p.phase"],
    ),
    "session.completed": (
        "sessions_completed",
        SESSION,
        [
            "clinic_id",
            "p.session_id",
            "p.modality",
            "p.phase",
            "p.started_at",
            "p.ended_at",
            "p.dose_mg",
            "p.lot_number",
            "p.weight_kg",
            "p.dose_mg_per_kg",
            "p.infusion_minutes",
            "p.bp_pre.systolic",
            "p.bp_pre.diastolic",
            "p.bp_40min.systolic",
            "p.bp_40min.diastolic",
            "p.bp_discharge.systolic",
            "p.bp_discharge.diastolic",
            "p.spo2_min",
            "p.cadss_total",
            "p.moaa_s_min",
            "p.sedation",
            "p.dissociation",
            "p.respiratory_depression",
            "p.adverse_events",
        ],
    ),
    "session.cancelled": (
        "sessions_cancelled",
        {"session_id": "VARCHAR", "reason": "VARCHAR"},
        ["p.session_id", "p.reason"],
    ),
    "rems.form_submitted": (
        "rems_forms",
        {"session_id": "VARCHAR", "submitted_on": "DATE"},
        ["p.session_id", "p.submitted_on"],
    ),
    "checkin.completed": (
        "checkins",
        {
            "task_id": "VARCHAR",
            "phq9_items": ["INTEGER"],
            "gad7_items": ["INTEGER"],
            "side_effects": ["VARCHAR"],
            "channel": "VARCHAR",
        },
        [
            "p.task_id",
            "p.phq9_items",
            "list_sum(p.phq9_items)",
            "p.phq9_items[9]",
            "p.gad7_items",
            "list_sum(p.gad7_items)",
            "p.side_effects",
            "p.channel",
        ],
    ),
    "adverse_event.reported": (
        "adverse_event_reports",
        {"session_id": "VARCHAR", "code": "VARCHAR", "severity": "VARCHAR", "onset_at": "TIMESTAMPTZ"},
        ["p.session_id", "p.code", "p.severity", "p.onset_at"],
    ),
    "outreach.status": (
        "outreach_statuses",
        {"outreach_id": "VARCHAR", "status": "VARCHAR", "channel": "VARCHAR"},
        ["p.outreach_id", "p.status", "p.channel"],
    ),
}


def insert_statements(source: str = "fresh") -> list[str]:
    """One INSERT ... SELECT per event type, reading the batch's fresh rows."""
    out = []
    for etype, (table, schema, cols) in TYPED.items():
        shape = json.dumps(schema).replace("'", "''")
        out.append(f"""INSERT INTO {table}
            SELECT event_id, patient_id, occurred_at, {", ".join(cols)}
            FROM (SELECT event_id, patient_id, occurred_at, clinic_id,
                         json_transform(event->'$.payload', '{shape}') AS p
                  FROM {source} WHERE event_type = '{etype}')""")
    return out
