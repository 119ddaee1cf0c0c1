-- Warehouse-level data quality results, one row per suite per run, kept as history.
CREATE TABLE quality_runs (
    run_id      VARCHAR NOT NULL,
    checked_at  TIMESTAMPTZ NOT NULL,
    suite       VARCHAR NOT NULL,
    success     BOOLEAN NOT NULL,
    rows_checked INTEGER NOT NULL,
    result      JSON NOT NULL,
    PRIMARY KEY (run_id, suite)
);
