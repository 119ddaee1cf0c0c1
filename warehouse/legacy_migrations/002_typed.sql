-- Typed rows per event type, derived in SQL from raw_events.event (already validated).
-- No primary keys here: rows come only from a batch's fresh events, which raw_events' key
-- already makes unique, and twelve more indexes would tax every batch's commit.

CREATE TABLE patients_registered (
    event_id VARCHAR NOT NULL, patient_id VARCHAR NOT NULL, occurred_at TIMESTAMPTZ NOT NULL,
    clinic_id VARCHAR NOT NULL, timezone VARCHAR NOT NULL, birth_year INTEGER NOT NULL,
    consent_sms BOOLEAN NOT NULL, consent_email BOOLEAN NOT NULL, consent_phone BOOLEAN NOT NULL,
    preferred_channel VARCHAR NOT NULL, quiet_start VARCHAR, quiet_end VARCHAR
);
CREATE TABLE consent_updates (
    event_id VARCHAR NOT NULL, patient_id VARCHAR NOT NULL, occurred_at TIMESTAMPTZ NOT NULL,
    sms BOOLEAN, email BOOLEAN, phone BOOLEAN
);
CREATE TABLE intake_assessments (
    event_id VARCHAR NOT NULL, patient_id VARCHAR NOT NULL, occurred_at TIMESTAMPTZ NOT NULL,
    diagnosis_codes VARCHAR[] NOT NULL, failed_antidepressant_trials INTEGER NOT NULL,
    phq9_items INTEGER[] NOT NULL, phq9_total INTEGER NOT NULL, phq9_item9 INTEGER NOT NULL,
    gad7_items INTEGER[], gad7_total INTEGER, bp_systolic INTEGER NOT NULL, bp_diastolic INTEGER NOT NULL,
    aneurysmal_vascular_disease BOOLEAN NOT NULL, arteriovenous_malformation BOOLEAN NOT NULL,
    intracerebral_hemorrhage_history BOOLEAN NOT NULL, ketamine_hypersensitivity BOOLEAN NOT NULL,
    pregnant BOOLEAN NOT NULL, active_substance_use_disorder BOOLEAN NOT NULL, psychosis_history BOOLEAN NOT NULL
);
CREATE TABLE consults (
    event_id VARCHAR NOT NULL, patient_id VARCHAR NOT NULL, occurred_at TIMESTAMPTZ NOT NULL,
    clinician_id VARCHAR NOT NULL, decision VARCHAR NOT NULL, reason_code VARCHAR NOT NULL
);
CREATE TABLE rems_enrollments (
    event_id VARCHAR NOT NULL, patient_id VARCHAR NOT NULL, occurred_at TIMESTAMPTZ NOT NULL,
    rems_patient_id VARCHAR NOT NULL, enrolled_on DATE NOT NULL
);
CREATE TABLE sessions_scheduled (
    event_id VARCHAR NOT NULL, patient_id VARCHAR NOT NULL, occurred_at TIMESTAMPTZ NOT NULL,
    session_id VARCHAR NOT NULL, modality VARCHAR NOT NULL, scheduled_for TIMESTAMPTZ NOT NULL, phase VARCHAR NOT NULL
);
CREATE TABLE sessions_completed (
    event_id VARCHAR NOT NULL, patient_id VARCHAR NOT NULL, occurred_at TIMESTAMPTZ NOT NULL,
    clinic_id VARCHAR NOT NULL, session_id VARCHAR NOT NULL, modality VARCHAR NOT NULL,
    phase VARCHAR NOT NULL, started_at TIMESTAMPTZ NOT NULL, ended_at TIMESTAMPTZ NOT NULL,
    dose_mg INTEGER, lot_number VARCHAR, weight_kg DOUBLE, dose_mg_per_kg DOUBLE, infusion_minutes INTEGER,
    bp_pre_systolic INTEGER NOT NULL, bp_pre_diastolic INTEGER NOT NULL,
    bp_40min_systolic INTEGER, bp_40min_diastolic INTEGER,
    bp_discharge_systolic INTEGER NOT NULL, bp_discharge_diastolic INTEGER NOT NULL,
    spo2_min INTEGER, cadss_total INTEGER, moaa_s_min INTEGER,
    sedation BOOLEAN NOT NULL, dissociation BOOLEAN NOT NULL, respiratory_depression BOOLEAN NOT NULL,
    adverse_events JSON NOT NULL
);
CREATE TABLE sessions_cancelled (
    event_id VARCHAR NOT NULL, patient_id VARCHAR NOT NULL, occurred_at TIMESTAMPTZ NOT NULL,
    session_id VARCHAR NOT NULL, reason VARCHAR NOT NULL
);
CREATE TABLE rems_forms (
    event_id VARCHAR NOT NULL, patient_id VARCHAR NOT NULL, occurred_at TIMESTAMPTZ NOT NULL,
    session_id VARCHAR NOT NULL, submitted_on DATE NOT NULL
);
CREATE TABLE checkins (
    event_id VARCHAR NOT NULL, patient_id VARCHAR NOT NULL, occurred_at TIMESTAMPTZ NOT NULL,
    task_id VARCHAR, phq9_items INTEGER[], phq9_total INTEGER, phq9_item9 INTEGER,
    gad7_items INTEGER[], gad7_total INTEGER, side_effects VARCHAR[] NOT NULL, channel VARCHAR NOT NULL
);
CREATE TABLE adverse_event_reports (
    event_id VARCHAR NOT NULL, patient_id VARCHAR NOT NULL, occurred_at TIMESTAMPTZ NOT NULL,
    session_id VARCHAR, code VARCHAR NOT NULL, severity VARCHAR NOT NULL, onset_at TIMESTAMPTZ NOT NULL
);
CREATE TABLE outreach_statuses (
    event_id VARCHAR NOT NULL, patient_id VARCHAR NOT NULL, occurred_at TIMESTAMPTZ NOT NULL,
    outreach_id VARCHAR NOT NULL, status VARCHAR NOT NULL, channel VARCHAR NOT NULL
);
