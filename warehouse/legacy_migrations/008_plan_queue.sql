-- Patients whose follow-up tasks wait to be re-planned (care.planner.plan_pending).
-- A row is written in the same transaction as the batch that touched the patient, so a
-- crash between landing and planning loses nothing: the next writer plans the patient.
CREATE TABLE care_plan_queue (
    patient_id  VARCHAR PRIMARY KEY,
    queued_at   TIMESTAMPTZ NOT NULL      -- wall clock of the first batch that queued it
);
