-- Pseudonyms for analysts: patient_key = HMAC-SHA256(pseudonym secret, patient_id), computed in
-- Python at landing (the secret never enters SQL) and kept here, outside the analytics schema.
CREATE TABLE patient_keys (
    patient_id  VARCHAR PRIMARY KEY,
    patient_key VARCHAR NOT NULL
);

CREATE SCHEMA analytics;

CREATE VIEW analytics.followup_tasks AS
SELECT t.task_id, k.patient_key, t.kind, t.due_at, t.send_after, t.status, t.source_event_id, t.completed_at,
       t.audience, t.channel, t.dispatched_at, t.expired_at
FROM main.followup_tasks t JOIN main.patient_keys k USING (patient_id);

CREATE VIEW analytics.alerts AS
SELECT a.alert_id, k.patient_key, a.severity, a.reason, a.source_event_id, a.raised_at, a.status, a.withdrawn_at
FROM main.clinical_alerts a JOIN main.patient_keys k USING (patient_id);
