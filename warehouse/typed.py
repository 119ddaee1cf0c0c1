"""SQL that derives typed rows from the validated JSON in a batch's fresh events.

The JSON was produced by the models (model_dump_json), so every path exists
with the right type; DuckDB extracts column-wise, no Python per event.
"""

from __future__ import annotations

P = "event->'$.payload'"


def s(path: str) -> str:
    return f"json_extract_string({P}, '$.{path}')"


def i(path: str) -> str:
    return f"CAST({s(path)} AS INTEGER)"


def b(path: str) -> str:
    return f"CAST({s(path)} AS BOOLEAN)"


def t(path: str) -> str:
    return f"CAST({s(path)} AS TIMESTAMPTZ)"


def ints(path: str) -> str:
    return f"CAST(json_extract({P}, '$.{path}') AS INTEGER[])"


def strs(path: str) -> str:
    return f"CAST(json_extract({P}, '$.{path}') AS VARCHAR[])"


def _bp(prefix: str) -> list[str]:
    return [i(f"{prefix}.systolic"), i(f"{prefix}.diastolic")]


BASE = ["event_id", "patient_id", "occurred_at"]
SCREENING = ["aneurysmal_vascular_disease", "arteriovenous_malformation", "intracerebral_hemorrhage_history",
             "ketamine_hypersensitivity", "pregnant", "active_substance_use_disorder", "psychosis_history"]

# event_type -> (table, select expressions after the base columns)
TYPED: dict[str, tuple[str, list[str]]] = {
    "patient.registered": ("patients_registered", [
        "clinic_id", s("timezone"), i("birth_year"), b("consent.sms"), b("consent.email"), b("consent.phone"),
        s("preferred_channel"), s("quiet_hours.start"), s("quiet_hours.end")]),
    "consent.updated": ("consent_updates", [b("sms"), b("email"), b("phone")]),
    "intake.assessed": ("intake_assessments", [
        strs("diagnosis_codes"), i("failed_antidepressant_trials"), ints("phq9_items"),
        f"list_sum({ints('phq9_items')})", f"{ints('phq9_items')}[9]", ints("gad7_items"),
        f"list_sum({ints('gad7_items')})", *_bp("blood_pressure"), *[b(f"screening.{k}") for k in SCREENING]]),
    "consult.completed": ("consults", [s("clinician_id"), s("decision"), s("reason_code")]),
    "rems.enrolled": ("rems_enrollments", [s("rems_patient_id"), f"CAST({s('enrolled_on')} AS DATE)"]),
    "session.scheduled": ("sessions_scheduled", [s("session_id"), s("modality"), t("scheduled_for"), s("phase")]),
    "session.completed": ("sessions_completed", [
        "clinic_id", s("session_id"), s("modality"), s("phase"), t("started_at"), t("ended_at"), i("dose_mg"),
        s("lot_number"), f"CAST({s('weight_kg')} AS DOUBLE)", f"CAST({s('dose_mg_per_kg')} AS DOUBLE)",
        i("infusion_minutes"), *_bp("bp_pre"), *_bp("bp_40min"), *_bp("bp_discharge"), i("spo2_min"),
        i("cadss_total"), i("moaa_s_min"), b("sedation"), b("dissociation"), b("respiratory_depression"),
        f"json_extract({P}, '$.adverse_events')"]),
    "session.cancelled": ("sessions_cancelled", [s("session_id"), s("reason")]),
    "rems.form_submitted": ("rems_forms", [s("session_id"), f"CAST({s('submitted_on')} AS DATE)"]),
    "checkin.completed": ("checkins", [
        s("task_id"), ints("phq9_items"), f"list_sum({ints('phq9_items')})", f"{ints('phq9_items')}[9]",
        ints("gad7_items"), f"list_sum({ints('gad7_items')})", strs("side_effects"), s("channel")]),
    "adverse_event.reported": ("adverse_event_reports", [s("session_id"), s("code"), s("severity"), t("onset_at")]),
    "outreach.status": ("outreach_statuses", [s("outreach_id"), s("status"), s("channel")]),
}


def insert_statements(source: str = "fresh") -> list[str]:
    """One INSERT ... SELECT per event type, reading the batch's fresh rows."""
    return [f"INSERT INTO {table} SELECT {', '.join(BASE + cols)} FROM {source} WHERE event_type = '{etype}'"
            for etype, (table, cols) in TYPED.items()]
