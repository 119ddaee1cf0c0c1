-- Publisher identifiers shown to analysts (session ids, task ids derived from them) may embed
-- patient identity. Analysts see them keyed with a random pepper that lives only in this
-- file, never in the analysts' snapshot. warehouse.db fills the pepper once, from Python's
-- secrets module.
CREATE TABLE pepper (value VARCHAR NOT NULL);
CREATE MACRO main.pseudo(x) AS (SELECT substr(sha256(p.value || ':' || x), 1, 32) FROM main.pepper p);

CREATE OR REPLACE VIEW analytics.sessions AS
SELECT main.pseudo(s.clinic_id || '/' || s.session_id) AS session_id, k.patient_key, s.clinic_id, s.modality,
       s.phase, s.started_at, s.ended_at,
       (epoch(s.ended_at) - epoch(s.started_at)) / 60.0 AS monitoring_minutes,
       s.dose_mg, s.dose_mg_per_kg, s.bp_pre_systolic, s.bp_pre_diastolic,
       json_array_length(s.adverse_events)::INTEGER AS adverse_event_count,
       EXISTS (SELECT 1 FROM main.rems_forms f WHERE f.session_id = s.session_id AND f.patient_id = s.patient_id)
         AS rems_form_submitted
FROM main.counted_sessions s JOIN main.patient_keys k USING (patient_id);

CREATE OR REPLACE VIEW analytics.rems_compliance AS
SELECT main.pseudo(s.clinic_id || '/' || s.session_id) AS session_id, k.patient_key, s.clinic_id, s.started_at,
       (epoch(s.ended_at) - epoch(s.started_at)) / 60.0 AS monitoring_minutes,
       (epoch(s.ended_at) - epoch(s.started_at)) / 60.0 >= 120 AS monitoring_ok,
       f.submitted_on AS form_submitted_on,
       coalesce(f.submitted_on <= (s.ended_at + INTERVAL 7 DAY)::DATE, false) AS form_on_time
FROM main.counted_sessions s JOIN main.patient_keys k USING (patient_id)
LEFT JOIN (SELECT patient_id, session_id, min(submitted_on) AS submitted_on FROM main.rems_forms GROUP BY ALL) f
  USING (patient_id, session_id)
WHERE s.modality = 'esketamine_nasal';

CREATE OR REPLACE VIEW analytics.followup_tasks AS
SELECT main.pseudo(t.task_id) AS task_id, k.patient_key, t.kind, t.due_at, t.send_after, t.status,
       t.source_event_id, t.completed_at, t.audience, t.channel, t.dispatched_at, t.expired_at
FROM main.followup_tasks t JOIN main.patient_keys k USING (patient_id);
