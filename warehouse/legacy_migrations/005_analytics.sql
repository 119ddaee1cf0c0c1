-- The analysts' thresholds table (views: warehouse/views.sql).

-- Outcome thresholds from settings (care_outcome_min_baseline, care_remission_below), one row.
CREATE TABLE outcome_params (min_baseline INTEGER NOT NULL, remission_below INTEGER NOT NULL);
INSERT INTO outcome_params VALUES (10, 5);

-- The views are in warehouse/views.sql (re-applied after every migration).
