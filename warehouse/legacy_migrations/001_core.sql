-- Core landing tables. Every message read is accounted for: it lands in
-- raw_events (once per event_id) or in quarantine (once per source position).

CREATE TABLE raw_events (
    event_id     VARCHAR PRIMARY KEY,
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
    PRIMARY KEY (topic, "partition", "offset")
);

CREATE TABLE consumer_offsets (
    group_id     VARCHAR NOT NULL,
    topic        VARCHAR NOT NULL,
    "partition"  INTEGER NOT NULL,
    next_offset  BIGINT NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (group_id, topic, "partition")
);

CREATE TABLE outbox (
    message_id   VARCHAR PRIMARY KEY,   -- deterministic: consumers can dedupe
    kind         VARCHAR NOT NULL,      -- dlq | alert | outreach
    topic        VARCHAR NOT NULL,
    "key"        BLOB,
    value        BLOB NOT NULL,
    headers      JSON NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    sent_at      TIMESTAMPTZ
);

CREATE TABLE batches (
    batch_id     VARCHAR PRIMARY KEY,
    source       VARCHAR NOT NULL,
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
    batch_id     VARCHAR NOT NULL,
    topic        VARCHAR NOT NULL,
    "partition"  INTEGER NOT NULL,
    first_offset BIGINT NOT NULL,
    last_offset  BIGINT NOT NULL,
    n_read       INTEGER NOT NULL,
    n_landed     INTEGER NOT NULL,
    n_duplicates INTEGER NOT NULL,
    n_quarantined INTEGER NOT NULL
);
