-- Pseudonyms for analysts: patient_key = HMAC-SHA256(pseudonym secret, patient_id), computed in
-- Python at landing (the secret never enters SQL) and kept here, outside the analytics schema.
CREATE TABLE patient_keys (
    patient_id  VARCHAR PRIMARY KEY,
    patient_key VARCHAR NOT NULL
);

CREATE SCHEMA analytics;

-- The views over these tables are in warehouse/views.sql (re-applied after every migration).
