-- Every clinical threshold the views use, written from the settings by every writer, so that
-- views and care rules read one definition (REMS monitoring minutes, REMS form days).
-- (Defaults, then NOT NULL: DuckDB 1.5 adds no column with a constraint in one step.)
ALTER TABLE outcome_params ADD COLUMN rems_monitoring_minutes INTEGER DEFAULT 120;
ALTER TABLE outcome_params ADD COLUMN rems_form_days INTEGER DEFAULT 7;
ALTER TABLE outcome_params ALTER COLUMN rems_monitoring_minutes SET NOT NULL;
ALTER TABLE outcome_params ALTER COLUMN rems_form_days SET NOT NULL;
