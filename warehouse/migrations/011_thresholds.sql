-- Every clinical threshold the views use, written from the settings by every writer, so that
-- views and care rules read one definition (REMS monitoring minutes, REMS form days).
ALTER TABLE outcome_params ADD COLUMN rems_monitoring_minutes INTEGER NOT NULL DEFAULT 120;
ALTER TABLE outcome_params ADD COLUMN rems_form_days INTEGER NOT NULL DEFAULT 7;
