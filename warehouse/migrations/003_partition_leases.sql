-- Which worker holds which partition, and the fence that stops one that lost it (warehouse/leases.py).
-- Appended, never updated: the row with the highest generation per partition is the holder.
CREATE TABLE partition_leases (
    group_id     VARCHAR NOT NULL,
    topic        VARCHAR NOT NULL,
    "partition"  INTEGER NOT NULL,
    generation   BIGINT NOT NULL,
    worker_id    VARCHAR NOT NULL,
    acquired_at  TIMESTAMPTZ NOT NULL
);

-- Every landing of a worker in a consumer group appends a row here; a takeover deletes them all.
-- DuckLake refuses to commit an insert into a table another transaction deleted from after it
-- began: that conflict is what stops a landing that started before a takeover.
CREATE TABLE lease_beacons (
    worker_id    VARCHAR NOT NULL,
    batch_id     VARCHAR,
    written_at   TIMESTAMPTZ NOT NULL
);

-- Which ingest worker landed each batch (NULL: load, replay, or a release before workers).
ALTER TABLE batches ADD COLUMN worker_id VARCHAR;
