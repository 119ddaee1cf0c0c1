-- The warehouse as a DuckLake: every table of the file warehouse (legacy migrations 001-014),
-- as one schema. DuckLake has no primary keys or unique constraints, so the writers keep
-- each table's key themselves (the comment on each table says how), and the tables the hot
-- path writes are append-only: a re-sent event is found by an anti-join restricted to the
-- batch's own occurred_at window (cost flat with the history), offsets are a log whose
-- newest row per partition wins.

-- One row per event_id: landing inserts only events not already here (warehouse/landing.py).
CREATE TABLE raw_events (
    event_id     VARCHAR NOT NULL,
    event_type   VARCHAR NOT NULL,
    patient_id   VARCHAR NOT NULL,
    clinic_id    VARCHAR NOT NULL,
    occurred_at  TIMESTAMPTZ NOT NULL,
    source_topic VARCHAR NOT NULL,
    source_partition INTEGER NOT NULL,
    source_offset BIGINT NOT NULL,
    received_at  TIMESTAMPTZ NOT NULL,
    batch_id     VARCHAR NOT NULL,
    event        JSON NOT NULL,      -- normalised by the models: UTC-safe timestamps, canonical ids
    raw          BLOB NOT NULL       -- the bytes as received, for audit and replay
);

-- One row per source position (topic, partition, offset): landing skips positions already here.
CREATE TABLE quarantine (
    topic        VARCHAR NOT NULL,
    "partition"  INTEGER NOT NULL,
    "offset"     BIGINT NOT NULL,
    received_at  TIMESTAMPTZ NOT NULL,
    error_kind   VARCHAR NOT NULL,
    errors       JSON NOT NULL,
    event_id     VARCHAR,
    event_type   VARCHAR,
    "key"        BLOB,
    raw          BLOB NOT NULL,
    headers      JSON NOT NULL,
    batch_id     VARCHAR NOT NULL,
    status       VARCHAR NOT NULL DEFAULT 'open',   -- open | replayed
    public_errors JSON,
    public_event_id VARCHAR,
    public_event_type VARCHAR
);

-- A log: each landed batch appends the next offset of each partition it read; the newest wins
-- (max(next_offset) per group, topic and partition), so concurrent writers never update a row.
CREATE TABLE consumer_offsets (
    group_id     VARCHAR NOT NULL,
    topic        VARCHAR NOT NULL,
    "partition"  INTEGER NOT NULL,
    next_offset  BIGINT NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL,
    batch_id     VARCHAR
);

-- One row per message_id (deterministic, so consumers can dedupe): staging skips ids already here.
CREATE TABLE outbox (
    message_id   VARCHAR NOT NULL,
    kind         VARCHAR NOT NULL,      -- dlq | alert | outreach | escalation
    topic        VARCHAR NOT NULL,
    "key"        BLOB,
    value        BLOB NOT NULL,
    headers      JSON NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    sent_at      TIMESTAMPTZ,
    parked_at    TIMESTAMPTZ,
    park_error   VARCHAR
);

-- One row per batch_id (a fresh uuid per batch).
CREATE TABLE batches (
    batch_id     VARCHAR NOT NULL,
    started_at   TIMESTAMPTZ NOT NULL,
    committed_at TIMESTAMPTZ NOT NULL,
    clock        TIMESTAMPTZ NOT NULL,
    n_read       INTEGER NOT NULL,
    n_landed     INTEGER NOT NULL,
    n_duplicates INTEGER NOT NULL,
    n_quarantined INTEGER NOT NULL,
    gx_success   BOOLEAN,
    gx_result    JSON
);

CREATE TABLE partition_ledger (
    batch_id VARCHAR NOT NULL, topic VARCHAR NOT NULL, "partition" INTEGER NOT NULL,
    first_offset BIGINT NOT NULL, last_offset BIGINT NOT NULL, n_read INTEGER NOT NULL,
    n_landed INTEGER NOT NULL, n_duplicates INTEGER NOT NULL, n_quarantined INTEGER NOT NULL
);

-- Typed rows, one table per event type; rows come only from a batch's fresh events.
CREATE TABLE patients_registered (event_id VARCHAR NOT NULL, patient_id VARCHAR NOT NULL, occurred_at TIMESTAMPTZ NOT NULL, clinic_id VARCHAR NOT NULL, timezone VARCHAR NOT NULL, birth_year INTEGER NOT NULL, consent_sms BOOLEAN NOT NULL, consent_email BOOLEAN NOT NULL, consent_phone BOOLEAN NOT NULL, preferred_channel VARCHAR NOT NULL, quiet_start VARCHAR, quiet_end VARCHAR);
CREATE TABLE consent_updates (event_id VARCHAR NOT NULL, patient_id VARCHAR NOT NULL, occurred_at TIMESTAMPTZ NOT NULL, sms BOOLEAN, email BOOLEAN, phone BOOLEAN);
CREATE TABLE intake_assessments (event_id VARCHAR NOT NULL, patient_id VARCHAR NOT NULL, occurred_at TIMESTAMPTZ NOT NULL, diagnosis_codes VARCHAR[] NOT NULL, failed_antidepressant_trials INTEGER NOT NULL, phq9_items INTEGER[] NOT NULL, phq9_total INTEGER NOT NULL, phq9_item9 INTEGER NOT NULL, gad7_items INTEGER[], gad7_total INTEGER, bp_systolic INTEGER NOT NULL, bp_diastolic INTEGER NOT NULL, aneurysmal_vascular_disease BOOLEAN NOT NULL, arteriovenous_malformation BOOLEAN NOT NULL, intracerebral_hemorrhage_history BOOLEAN NOT NULL, ketamine_hypersensitivity BOOLEAN NOT NULL, pregnant BOOLEAN NOT NULL, active_substance_use_disorder BOOLEAN NOT NULL, psychosis_history BOOLEAN NOT NULL);
CREATE TABLE consults (event_id VARCHAR NOT NULL, patient_id VARCHAR NOT NULL, occurred_at TIMESTAMPTZ NOT NULL, clinician_id VARCHAR NOT NULL, decision VARCHAR NOT NULL, reason_code VARCHAR NOT NULL);
CREATE TABLE rems_enrollments (event_id VARCHAR NOT NULL, patient_id VARCHAR NOT NULL, occurred_at TIMESTAMPTZ NOT NULL, rems_patient_id VARCHAR NOT NULL, enrolled_on DATE NOT NULL);
CREATE TABLE sessions_scheduled (event_id VARCHAR NOT NULL, patient_id VARCHAR NOT NULL, occurred_at TIMESTAMPTZ NOT NULL, session_id VARCHAR NOT NULL, modality VARCHAR NOT NULL, scheduled_for TIMESTAMPTZ NOT NULL, phase VARCHAR NOT NULL);
CREATE TABLE sessions_completed (event_id VARCHAR NOT NULL, patient_id VARCHAR NOT NULL, occurred_at TIMESTAMPTZ NOT NULL, clinic_id VARCHAR NOT NULL, session_id VARCHAR NOT NULL, modality VARCHAR NOT NULL, phase VARCHAR NOT NULL, started_at TIMESTAMPTZ NOT NULL, ended_at TIMESTAMPTZ NOT NULL, dose_mg INTEGER, lot_number VARCHAR, weight_kg DOUBLE, dose_mg_per_kg DOUBLE, infusion_minutes INTEGER, bp_pre_systolic INTEGER NOT NULL, bp_pre_diastolic INTEGER NOT NULL, bp_40min_systolic INTEGER, bp_40min_diastolic INTEGER, bp_discharge_systolic INTEGER NOT NULL, bp_discharge_diastolic INTEGER NOT NULL, spo2_min INTEGER, cadss_total INTEGER, moaa_s_min INTEGER, sedation BOOLEAN NOT NULL, dissociation BOOLEAN NOT NULL, respiratory_depression BOOLEAN NOT NULL, adverse_events JSON NOT NULL);
CREATE TABLE sessions_cancelled (event_id VARCHAR NOT NULL, patient_id VARCHAR NOT NULL, occurred_at TIMESTAMPTZ NOT NULL, session_id VARCHAR NOT NULL, reason VARCHAR NOT NULL);
CREATE TABLE rems_forms (event_id VARCHAR NOT NULL, patient_id VARCHAR NOT NULL, occurred_at TIMESTAMPTZ NOT NULL, session_id VARCHAR NOT NULL, submitted_on DATE NOT NULL);
CREATE TABLE checkins (event_id VARCHAR NOT NULL, patient_id VARCHAR NOT NULL, occurred_at TIMESTAMPTZ NOT NULL, task_id VARCHAR, phq9_items INTEGER[], phq9_total INTEGER, phq9_item9 INTEGER, gad7_items INTEGER[], gad7_total INTEGER, side_effects VARCHAR[] NOT NULL, channel VARCHAR NOT NULL);
CREATE TABLE adverse_event_reports (event_id VARCHAR NOT NULL, patient_id VARCHAR NOT NULL, occurred_at TIMESTAMPTZ NOT NULL, session_id VARCHAR, code VARCHAR NOT NULL, severity VARCHAR NOT NULL, onset_at TIMESTAMPTZ NOT NULL);
CREATE TABLE outreach_statuses (event_id VARCHAR NOT NULL, patient_id VARCHAR NOT NULL, occurred_at TIMESTAMPTZ NOT NULL, outreach_id VARCHAR NOT NULL, status VARCHAR NOT NULL, channel VARCHAR NOT NULL);
CREATE TABLE alert_acknowledgements (event_id VARCHAR NOT NULL, patient_id VARCHAR NOT NULL, occurred_at TIMESTAMPTZ NOT NULL, alert_id VARCHAR NOT NULL, staff_id VARCHAR NOT NULL);
CREATE TABLE alert_resolutions (event_id VARCHAR NOT NULL, patient_id VARCHAR NOT NULL, occurred_at TIMESTAMPTZ NOT NULL, alert_id VARCHAR NOT NULL, staff_id VARCHAR NOT NULL, resolution VARCHAR NOT NULL);

-- Care state, one row per key (task_id, alert_id, episode_id, (episode_id, level)): the planner
-- re-derives a patient's rows in the transaction that lands its events (care/planner.py), and one
-- patient's events stay on one partition, so one writer owns each row.
CREATE TABLE followup_tasks (task_id VARCHAR NOT NULL, patient_id VARCHAR NOT NULL, clinic_id VARCHAR NOT NULL, kind VARCHAR NOT NULL, audience VARCHAR NOT NULL, session_id VARCHAR, source_event_id VARCHAR NOT NULL, due_at TIMESTAMPTZ NOT NULL, send_after TIMESTAMPTZ NOT NULL, channel VARCHAR, status VARCHAR NOT NULL, completed_at TIMESTAMPTZ, completed_by VARCHAR, outreach_id VARCHAR, dispatched_at TIMESTAMPTZ, expired_at TIMESTAMPTZ, updated_at TIMESTAMPTZ NOT NULL);
CREATE TABLE clinical_alerts (alert_id VARCHAR NOT NULL, patient_id VARCHAR NOT NULL, clinic_id VARCHAR NOT NULL, severity VARCHAR NOT NULL, reason VARCHAR NOT NULL, source_event_id VARCHAR NOT NULL, raised_at TIMESTAMPTZ NOT NULL, status VARCHAR NOT NULL DEFAULT 'open', withdrawn_at TIMESTAMPTZ, source_occurred_at TIMESTAMPTZ, episode_id VARCHAR);
CREATE TABLE alert_episodes (episode_id VARCHAR NOT NULL, patient_id VARCHAR NOT NULL, clinic_id VARCHAR NOT NULL, reason VARCHAR NOT NULL, severity VARCHAR NOT NULL, first_alert_id VARCHAR NOT NULL, opened_at TIMESTAMPTZ NOT NULL, occurrences INTEGER NOT NULL, status VARCHAR NOT NULL, acknowledged_at TIMESTAMPTZ, acknowledged_by VARCHAR, resolved_at TIMESTAMPTZ, resolved_by VARCHAR, resolution VARCHAR, withdrawn_at TIMESTAMPTZ, updated_at TIMESTAMPTZ NOT NULL);
CREATE TABLE alert_escalations (episode_id VARCHAR NOT NULL, "level" INTEGER NOT NULL, message_id VARCHAR NOT NULL, severity VARCHAR NOT NULL, reason VARCHAR NOT NULL, due_at TIMESTAMPTZ NOT NULL, escalated_at TIMESTAMPTZ NOT NULL, notified_at TIMESTAMPTZ);
-- One row per patient waiting to be (re)planned, and per patient whose planning failed.
CREATE TABLE care_plan_queue (patient_id VARCHAR NOT NULL, queued_at TIMESTAMPTZ NOT NULL);
CREATE TABLE care_plan_parked (patient_id VARCHAR NOT NULL, "error" VARCHAR NOT NULL, parked_at TIMESTAMPTZ NOT NULL, attempts INTEGER NOT NULL);

-- One row per (run_id, suite).
CREATE TABLE quality_runs (run_id VARCHAR NOT NULL, checked_at TIMESTAMPTZ NOT NULL, suite VARCHAR NOT NULL, success BOOLEAN NOT NULL, rows_checked INTEGER NOT NULL, result JSON NOT NULL);

-- Pseudonyms for analysts: patient_key = HMAC-SHA256(pseudonym secret, patient_id), computed in
-- Python at landing (the secret never enters SQL); one row per patient_id.
CREATE TABLE patient_keys (patient_id VARCHAR NOT NULL, patient_key VARCHAR NOT NULL);

-- Publisher identifiers shown to analysts (session ids, task ids derived from them) may embed
-- patient identity: analysts see them keyed with a random pepper that lives only in this lake,
-- never in the analysts' lake. warehouse.db fills it once, from Python's secrets module.
CREATE TABLE pepper (value VARCHAR NOT NULL);
CREATE MACRO main.pseudo(x) AS (SELECT substr(sha256(p.value || ':' || x), 1, 32) FROM main.pepper p);

-- Outcome and REMS thresholds from settings, one row (warehouse.analytics.apply_params).
CREATE TABLE outcome_params (min_baseline INTEGER NOT NULL, remission_below INTEGER NOT NULL,
                             rems_monitoring_minutes INTEGER NOT NULL DEFAULT 120, rems_form_days INTEGER NOT NULL DEFAULT 7);
INSERT INTO outcome_params VALUES (10, 5, 120, 7);

CREATE SCHEMA analytics;
-- The views are in warehouse/views.sql, applied by a writer whenever its text is not the one
-- recorded here (every catalog change is a lake snapshot: not one per connection).
CREATE TABLE view_versions (sha256 VARCHAR NOT NULL, applied_at TIMESTAMPTZ NOT NULL);
