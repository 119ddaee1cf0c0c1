-- Where the outbox's publisher had got to on each topic partition it writes (warehouse/outbox.py):
-- appended with every round's marks. A publisher taking the role over reads the topics from here
-- to find rows its predecessor committed to Kafka but had not marked sent.
CREATE TABLE outbox_positions (
    topic        VARCHAR NOT NULL,
    "partition"  INTEGER NOT NULL,
    next_offset  BIGINT NOT NULL,
    written_at   TIMESTAMPTZ NOT NULL
);
