-- Follow-up tasks and clinical alerts (contract/CARE_PLAN.md).

CREATE TABLE followup_tasks (
    task_id          VARCHAR PRIMARY KEY,    -- deterministic: uuid5 of (patient, session or kind)
    patient_id       VARCHAR NOT NULL,
    clinic_id        VARCHAR NOT NULL,
    kind             VARCHAR NOT NULL,       -- checkin_day1 | checkin_month1/3/6/12 | rems_form_due
    audience         VARCHAR NOT NULL,       -- patient | staff
    session_id       VARCHAR,
    source_event_id  VARCHAR NOT NULL,
    due_at           TIMESTAMPTZ NOT NULL,
    send_after       TIMESTAMPTZ NOT NULL,
    channel          VARCHAR,                -- for patient tasks with consent
    status           VARCHAR NOT NULL,       -- open | dispatched | completed | cancelled | blocked_no_consent | expired
    completed_at     TIMESTAMPTZ,
    completed_by     VARCHAR,                -- the event that completed it
    outreach_id      VARCHAR,
    dispatched_at    TIMESTAMPTZ,
    expired_at       TIMESTAMPTZ,
    updated_at       TIMESTAMPTZ NOT NULL
);

CREATE TABLE clinical_alerts (
    alert_id         VARCHAR PRIMARY KEY,    -- uuid5 of (source event, reason): one alert per pair, ever
    patient_id       VARCHAR NOT NULL,
    clinic_id        VARCHAR NOT NULL,
    severity         VARCHAR NOT NULL,
    reason           VARCHAR NOT NULL,
    source_event_id  VARCHAR NOT NULL,
    raised_at        TIMESTAMPTZ NOT NULL,
    status           VARCHAR NOT NULL DEFAULT 'open',   -- open | withdrawn (later history no longer supports it)
    withdrawn_at     TIMESTAMPTZ
);
