-- Every view of the warehouse, in one file, re-applied by every writer after the migrations
-- (migrations change tables only). Analysts' views live in schema `analytics`: they show
-- patient_key, never patient_id; docs/DATA_DICTIONARY.md documents every column.
-- Clinical thresholds come from main.outcome_params, one row written from the settings by
-- every writer (warehouse.analytics.apply_params): the rules and the views read the same values.

-- The counting record of each session: its latest session.completed.
CREATE OR REPLACE VIEW main.counted_sessions AS
SELECT * FROM main.sessions_completed
QUALIFY row_number() OVER (PARTITION BY clinic_id, session_id ORDER BY occurred_at DESC, event_id DESC) = 1;

CREATE OR REPLACE VIEW main.phq9_measurements AS
SELECT patient_id, event_id, occurred_at, 'intake' AS source, phq9_total AS total, phq9_item9 AS item9
FROM main.intake_assessments
UNION ALL
SELECT patient_id, event_id, occurred_at, 'checkin', phq9_total, phq9_item9 FROM main.checkins
WHERE phq9_total IS NOT NULL;

CREATE OR REPLACE VIEW main.patient_outcomes AS
WITH reg AS (
    SELECT patient_id, min(occurred_at) AS registered_at, arg_max(birth_year, occurred_at) AS birth_year,
           arg_max(clinic_id, occurred_at) AS clinic_id
    FROM main.patients_registered GROUP BY patient_id),
ses AS (
    SELECT patient_id, min(started_at) AS first_session_at, arg_max(modality, (ended_at, event_id)) AS latest_modality,
           count(*) AS sessions_completed
    FROM main.counted_sessions GROUP BY patient_id),
base AS (SELECT patient_id, arg_min(phq9_total, (occurred_at, event_id)) AS baseline_phq9
         FROM main.intake_assessments GROUP BY patient_id),
latest AS (SELECT patient_id, arg_max(total, (occurred_at, event_id)) AS latest_phq9
           FROM main.phq9_measurements GROUP BY patient_id),
clinic AS (SELECT patient_id, arg_max(clinic_id, occurred_at) AS clinic_id FROM main.raw_events GROUP BY patient_id)
SELECT k.patient_id, k.patient_key, coalesce(reg.clinic_id, clinic.clinic_id) AS clinic_id, reg.registered_at,
       reg.birth_year, ses.first_session_at, ses.latest_modality,
       coalesce(ses.sessions_completed, 0)::INTEGER AS sessions_completed, base.baseline_phq9, latest.latest_phq9,
       CASE WHEN base.baseline_phq9 >= p.min_baseline THEN latest.latest_phq9 * 2 <= base.baseline_phq9 END
         AS responder,
       CASE WHEN base.baseline_phq9 >= p.min_baseline THEN latest.latest_phq9 < p.remission_below END AS remitter
FROM main.patient_keys k
LEFT JOIN reg USING (patient_id) LEFT JOIN ses USING (patient_id) LEFT JOIN base USING (patient_id)
LEFT JOIN latest USING (patient_id) LEFT JOIN clinic USING (patient_id) CROSS JOIN main.outcome_params p;

CREATE OR REPLACE VIEW analytics.patients AS SELECT * EXCLUDE (patient_id) FROM main.patient_outcomes;

-- PHQ-9 severity bands are the instrument's own (Kroenke et al., 2001), not clinic settings.
CREATE OR REPLACE VIEW analytics.phq9_scores AS
SELECT k.patient_key, m.occurred_at AS measured_at, m.source, m.total, m.item9,
       CASE WHEN m.total >= 20 THEN 'severe' WHEN m.total >= 15 THEN 'moderately_severe'
            WHEN m.total >= 10 THEN 'moderate' WHEN m.total >= 5 THEN 'mild' ELSE 'minimal' END AS severity
FROM main.phq9_measurements m JOIN main.patient_keys k USING (patient_id);

-- Publisher identifiers (session and task ids) may embed patient identity: analysts see them keyed
-- with the pepper, which lives only in the writer's file (main.pseudo, migration 006).
CREATE OR REPLACE VIEW analytics.sessions AS
SELECT main.pseudo(s.clinic_id || '/' || s.session_id) AS session_id, k.patient_key, s.clinic_id, s.modality,
       s.phase, s.started_at, s.ended_at,
       (epoch(s.ended_at) - epoch(s.started_at)) / 60.0 AS monitoring_minutes,
       s.dose_mg, s.dose_mg_per_kg, s.bp_pre_systolic, s.bp_pre_diastolic,
       json_array_length(s.adverse_events)::INTEGER AS adverse_event_count,
       EXISTS (SELECT 1 FROM main.rems_forms f WHERE f.session_id = s.session_id AND f.patient_id = s.patient_id)
         AS rems_form_submitted
FROM main.counted_sessions s JOIN main.patient_keys k USING (patient_id);

CREATE OR REPLACE VIEW analytics.followup_tasks AS
SELECT main.pseudo(t.task_id) AS task_id, k.patient_key, t.kind, t.due_at, t.send_after, t.status,
       t.source_event_id, t.completed_at, t.audience, t.channel, t.dispatched_at, t.expired_at
FROM main.followup_tasks t JOIN main.patient_keys k USING (patient_id);

CREATE OR REPLACE VIEW analytics.alerts AS
SELECT a.alert_id, k.patient_key, a.severity, a.reason, a.source_event_id, a.raised_at, a.status, a.withdrawn_at,
       a.episode_id
FROM main.clinical_alerts a JOIN main.patient_keys k USING (patient_id);

-- One row per episode (docs/ALERTS.md); staff ids stay in the writer's warehouse.
CREATE OR REPLACE VIEW analytics.alert_episodes AS
SELECT e.episode_id, k.patient_key, e.reason, e.severity, e.opened_at, e.occurrences, e.status,
       e.acknowledged_at, e.resolved_at, e.resolution,
       coalesce((SELECT max(x.level) FROM main.alert_escalations x WHERE x.episode_id = e.episode_id), 0)
         AS escalation_level,
       round(epoch(e.acknowledged_at - e.opened_at) / 60, 1) AS minutes_to_acknowledge,
       round(epoch(e.resolved_at - e.opened_at) / 60, 1) AS minutes_to_resolve
FROM main.alert_episodes e JOIN main.patient_keys k USING (patient_id);

CREATE OR REPLACE VIEW analytics.outcomes_by_modality AS
SELECT latest_modality AS modality,
       count(*) FILTER (WHERE responder IS NOT NULL)::INTEGER AS patients_with_baseline,
       count(*) FILTER (WHERE responder)::INTEGER AS responders,
       round(count(*) FILTER (WHERE responder) / nullif(count(*) FILTER (WHERE responder IS NOT NULL), 0), 4)
         AS response_rate,
       count(*) FILTER (WHERE remitter)::INTEGER AS remitters,
       round(count(*) FILTER (WHERE remitter) / nullif(count(*) FILTER (WHERE remitter IS NOT NULL), 0), 4)
         AS remission_rate,
       count(*)::INTEGER AS patients_treated
FROM main.patient_outcomes WHERE latest_modality IS NOT NULL
GROUP BY latest_modality;

-- Quarantine as analysts may see it (schemas/public.py): never what the publisher sent.
CREATE OR REPLACE VIEW analytics.quarantine AS
SELECT topic, "partition", "offset", received_at, error_kind, coalesce(public_errors, '[]') AS errors,
       public_event_id AS event_id, public_event_type AS event_type, status
FROM main.quarantine;

CREATE OR REPLACE VIEW analytics.phq9_trajectory AS
SELECT o.latest_modality AS modality,
       floor((epoch(m.occurred_at) - epoch(o.first_session_at)) / 604800)::INTEGER AS weeks_since_first_session,
       count(DISTINCT m.patient_id)::INTEGER AS patients, round(avg(m.total), 2) AS mean_total,
       median(m.total) AS median_total
FROM main.phq9_measurements m JOIN main.patient_outcomes o USING (patient_id)
WHERE o.first_session_at IS NOT NULL
GROUP BY ALL;

CREATE OR REPLACE VIEW analytics.rems_compliance AS
SELECT main.pseudo(s.clinic_id || '/' || s.session_id) AS session_id, k.patient_key, s.clinic_id, s.started_at,
       (epoch(s.ended_at) - epoch(s.started_at)) / 60.0 AS monitoring_minutes,
       (epoch(s.ended_at) - epoch(s.started_at)) / 60.0 >= p.rems_monitoring_minutes AS monitoring_ok,
       f.submitted_on AS form_submitted_on,
       coalesce(f.submitted_on <= (s.ended_at + to_days(p.rems_form_days))::DATE, false) AS form_on_time
FROM main.counted_sessions s JOIN main.patient_keys k USING (patient_id)
LEFT JOIN (SELECT patient_id, session_id, min(submitted_on) AS submitted_on FROM main.rems_forms GROUP BY ALL) f
  USING (patient_id, session_id)
CROSS JOIN main.outcome_params p
WHERE s.modality = 'esketamine_nasal';

CREATE OR REPLACE VIEW analytics.outreach_funnel AS
SELECT kind,
       count(*)::INTEGER AS planned,
       count(*) FILTER (WHERE outreach_id IS NOT NULL)::INTEGER AS dispatched,
       count(*) FILTER (WHERE status = 'completed')::INTEGER AS completed,
       count(*) FILTER (WHERE status = 'expired')::INTEGER AS expired,
       count(*) FILTER (WHERE status = 'blocked_no_consent')::INTEGER AS blocked,
       count(*) FILTER (WHERE status = 'cancelled')::INTEGER AS cancelled,
       count(*) FILTER (WHERE status = 'open')::INTEGER AS still_open
FROM main.followup_tasks WHERE audience = 'patient'
GROUP BY kind;

CREATE OR REPLACE VIEW analytics.quarantine_daily AS
SELECT received_at::DATE AS day, error_kind, count(*)::INTEGER AS messages
FROM main.quarantine GROUP BY ALL;

-- The latest data-quality result of each warehouse suite, readable offline in the report
-- (GX's Data Docs load their styles from CDNs). Failed expectations by type, column and count;
-- never GX's sample of unexpected values, which can hold identifiers.
CREATE OR REPLACE VIEW analytics.data_quality AS
SELECT suite, checked_at, success, rows_checked,
       CASE WHEN json_valid(result) THEN (result->>'$.evaluated')::INTEGER END AS expectations_evaluated,
       CASE WHEN json_valid(result) THEN
         json_transform(result->'$.failed', '[{"expectation": "VARCHAR", "column": "VARCHAR",
                                               "unexpected_count": "BIGINT"}]') END AS failed_expectations
FROM main.quality_runs
QUALIFY row_number() OVER (PARTITION BY suite ORDER BY checked_at DESC, run_id DESC) = 1;
