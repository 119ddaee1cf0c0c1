-- source_occurred_at (013) for alerts raised before it existed: the source event's occurred_at,
-- else (a source no longer in raw_events) the time it was raised. Its own migration: DuckDB
-- updates no table in the transaction that altered it.
UPDATE clinical_alerts SET source_occurred_at = r.occurred_at FROM raw_events r
WHERE r.event_id = clinical_alerts.source_event_id AND clinical_alerts.source_occurred_at IS NULL;
UPDATE clinical_alerts SET source_occurred_at = raised_at WHERE source_occurred_at IS NULL;
