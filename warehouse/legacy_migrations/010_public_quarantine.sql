-- Quarantine as analysts may see it: the error kind and where, never what the publisher sent.
-- Written at landing (schemas/public.py): fixed messages by error code, loc segments outside the
-- contract replaced, event_id only when a well-formed UUID, event_type only when a known type.
ALTER TABLE quarantine ADD COLUMN public_errors JSON;
ALTER TABLE quarantine ADD COLUMN public_event_id VARCHAR;
ALTER TABLE quarantine ADD COLUMN public_event_type VARCHAR;

-- Rows landed before this migration: keep what is safe to keep.
UPDATE quarantine SET
    public_errors = '[]',
    public_event_id = CASE WHEN regexp_full_match(event_id,
        '[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}') THEN event_id END,
    public_event_type = CASE WHEN event_type IN ('patient.registered', 'consent.updated', 'intake.assessed',
        'consult.completed', 'rems.enrolled', 'session.scheduled', 'session.completed', 'session.cancelled',
        'rems.form_submitted', 'checkin.completed', 'adverse_event.reported', 'outreach.status',
        'outreach.requested', 'clinical.alert') THEN event_type END;

-- analytics.quarantine shows only these columns: warehouse/views.sql.
