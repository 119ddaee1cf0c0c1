-- batches.source was written (kafka, replay) and never read: where a batch came from is in
-- partition_ledger (its topics) and raw_events (source_topic).
ALTER TABLE batches DROP COLUMN source;
