-- Nothing that one patient or one message does may stop everyone else.
-- A patient whose follow-up plan cannot be computed is parked here, with the error, instead
-- of failing the planning of every other patient; the next event of theirs tries again.
CREATE TABLE care_plan_parked (
    patient_id  VARCHAR PRIMARY KEY,
    error       VARCHAR NOT NULL,
    parked_at   TIMESTAMPTZ NOT NULL,
    attempts    INTEGER NOT NULL
);

-- An outbox row the broker refuses for good (too large, topic not authorised) is parked
-- with the error instead of blocking every row behind it; `clinicflow status` shows it.
ALTER TABLE outbox ADD COLUMN parked_at TIMESTAMPTZ;
ALTER TABLE outbox ADD COLUMN park_error VARCHAR;
