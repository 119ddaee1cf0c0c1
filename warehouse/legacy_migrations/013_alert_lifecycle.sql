-- The alert lifecycle (docs/ALERTS.md): the on-call queue's actions, episodes, escalations.

-- Typed rows of the two action types, like every inbound event type (warehouse/typed.py).
CREATE TABLE alert_acknowledgements (
    event_id VARCHAR NOT NULL, patient_id VARCHAR NOT NULL, occurred_at TIMESTAMPTZ NOT NULL,
    alert_id VARCHAR NOT NULL, staff_id VARCHAR NOT NULL
);
CREATE TABLE alert_resolutions (
    event_id VARCHAR NOT NULL, patient_id VARCHAR NOT NULL, occurred_at TIMESTAMPTZ NOT NULL,
    alert_id VARCHAR NOT NULL, staff_id VARCHAR NOT NULL, resolution VARCHAR NOT NULL
);

-- Episodes order their alerts by the source event's occurred_at: kept beside the alert
-- (filled for existing alerts by 014: DuckDB updates no table in the transaction that altered it).
ALTER TABLE clinical_alerts ADD COLUMN source_occurred_at TIMESTAMPTZ;
-- NULL until the episodes of its key are computed (a warehouse from before this migration
-- gets them when a writer next opens it).
ALTER TABLE clinical_alerts ADD COLUMN episode_id VARCHAR;

-- One row per episode, re-derived from the key's alerts and actions whenever either changes.
CREATE TABLE alert_episodes (
    episode_id       VARCHAR PRIMARY KEY,    -- uuid5 of the first alert's alert_id
    patient_id       VARCHAR NOT NULL,
    clinic_id        VARCHAR NOT NULL,
    reason           VARCHAR NOT NULL,
    severity         VARCHAR NOT NULL,
    first_alert_id   VARCHAR NOT NULL,
    opened_at        TIMESTAMPTZ NOT NULL,   -- the first alert's raised_at
    occurrences      INTEGER NOT NULL,
    status           VARCHAR NOT NULL,       -- open | acknowledged | resolved | withdrawn
    acknowledged_at  TIMESTAMPTZ,
    acknowledged_by  VARCHAR,
    resolved_at      TIMESTAMPTZ,
    resolved_by      VARCHAR,
    resolution       VARCHAR,
    withdrawn_at     TIMESTAMPTZ,            -- when the last of its alerts was withdrawn
    updated_at       TIMESTAMPTZ NOT NULL
);

-- Each level once per episode; message_id is the published message's deterministic id.
CREATE TABLE alert_escalations (
    episode_id       VARCHAR NOT NULL,
    level            INTEGER NOT NULL,
    message_id       VARCHAR NOT NULL,
    severity         VARCHAR NOT NULL,
    reason           VARCHAR NOT NULL,
    due_at           TIMESTAMPTZ NOT NULL,   -- opened_at + the level's threshold
    escalated_at     TIMESTAMPTZ NOT NULL,   -- the escalation run's clock
    notified_at      TIMESTAMPTZ,            -- the Prefect event was emitted
    PRIMARY KEY (episode_id, level)
);
