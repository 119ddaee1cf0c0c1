"""The analysts' data dictionary: every column of every analytics view, described.

docs/DATA_DICTIONARY.md is generated from this and the views themselves; a test
fails when a view gains a column nobody described, or the file is stale.
"""

from __future__ import annotations

import duckdb

KEY = "Pseudonymous patient key: HMAC-SHA256 of patient_id under the pseudonym secret. Never the patient_id."
VIEWS: dict[str, tuple[str, dict[str, str]]] = {
    "patients": (
        "One row per patient with any landed event.",
        {
            "patient_key": KEY,
            "clinic_id": "Clinic of the latest registration (else of the latest event).",
            "registered_at": "First patient.registered occurred_at.",
            "birth_year": "Birth year from the latest registration.",
            "first_session_at": "started_at of the first completed session.",
            "latest_modality": "Modality of the latest completed session (by ended_at): the patient's modality "
            "for outcomes.",
            "sessions_completed": "Completed sessions (latest session.completed per session_id).",
            "baseline_phq9": "PHQ-9 total of the first intake.assessed (by occurred_at).",
            "latest_phq9": "The most recent PHQ-9 total from any source.",
            "responder": "latest_phq9 at most half of baseline_phq9; null unless baseline >= "
            "care_outcome_min_baseline (10).",
            "remitter": "latest_phq9 below care_remission_below (5); null unless baseline >= 10.",
        },
    ),
    "sessions": (
        "One row per completed session: its latest session.completed event.",
        {
            "session_id": "Pseudonymous session key (keyed hash of clinic and the publisher's session id, which may "
            "embed identifiers); stable within this warehouse.",
            "patient_key": KEY,
            "clinic_id": "The clinic.",
            "modality": "esketamine_nasal or racemic_iv.",
            "phase": "induction, maintenance or booster.",
            "started_at": "Dosing start.",
            "ended_at": "Discharge, the end of monitoring.",
            "monitoring_minutes": "Minutes from started_at to ended_at (REMS: at least 120 for esketamine).",
            "dose_mg": "Esketamine dose (28, 56 or 84 mg); null for racemic.",
            "dose_mg_per_kg": "Racemic dose in mg/kg; null for esketamine.",
            "bp_pre_systolic": "Blood pressure before dosing, systolic mmHg.",
            "bp_pre_diastolic": "Blood pressure before dosing, diastolic mmHg.",
            "adverse_event_count": "Adverse events recorded in the session.",
            "rems_form_submitted": "A REMS Patient Monitoring Form was filed for the session.",
        },
    ),
    "phq9_scores": (
        "One row per PHQ-9 measurement (intake or check-in).",
        {
            "patient_key": KEY,
            "measured_at": "occurred_at of the assessment or check-in.",
            "source": "intake or checkin.",
            "total": "PHQ-9 total, 0..27.",
            "item9": "Item 9 (thoughts of self-harm), 0..3.",
            "severity": "minimal 0-4, mild 5-9, moderate 10-14, moderately_severe 15-19, severe 20-27.",
        },
    ),
    "followup_tasks": (
        "One row per follow-up task of the care plan.",
        {
            "task_id": "Pseudonymous task key (keyed hash of the task id, which derives from publisher ids).",
            "patient_key": KEY,
            "kind": "checkin_day1, checkin_month1/3/6/12 or rems_form_due.",
            "due_at": "When the task is due (an exact duration after the session).",
            "send_after": "due_at moved out of the patient's quiet hours and to a free local day (staff: due_at).",
            "status": "open, dispatched, completed, cancelled, blocked_no_consent or expired.",
            "source_event_id": "The session.completed event that created it.",
            "completed_at": "When the check-in or REMS form that completed it occurred.",
            "audience": "patient or staff.",
            "channel": "sms, email or phone: the consented channel as of send_after; null for staff or blocked tasks.",
            "dispatched_at": "The outreach flow's clock when it dispatched the task.",
            "expired_at": "The outreach flow's clock when it expired the task.",
        },
    ),
    "alerts": (
        "One row per clinical alert (one per source event and reason, ever).",
        {
            "alert_id": "Deterministic alert id: uuid5 of (source event, reason).",
            "patient_key": KEY,
            "severity": "urgent, high or routine.",
            "reason": "The care-plan rule that fired (CARE_PLAN.md).",
            "source_event_id": "The event behind it (for rems_form_overdue: the session).",
            "raised_at": "The pipeline's clock when it was raised.",
            "status": "open, or withdrawn when later events no longer support a history-dependent alert.",
            "withdrawn_at": "When it was withdrawn.",
            "episode_id": "The episode it belongs to (alert_episodes); one patient, one reason, one queue item.",
        },
    ),
    "alert_episodes": (
        "One row per alert episode: the alerts of one patient and reason until someone resolves them "
        "(ALERTS.md). This is what the on-call queue shows as one item.",
        {
            "episode_id": "Deterministic: uuid5 of the first alert's alert_id.",
            "patient_key": KEY,
            "reason": "The care-plan rule that fired (CARE_PLAN.md).",
            "severity": "urgent, high or routine.",
            "opened_at": "raised_at of the episode's first alert: the moment the pipeline raised it.",
            "occurrences": "Alerts in the episode (alerts withdrawn later do not count).",
            "status": "open, acknowledged, resolved, or withdrawn (every alert of it withdrawn).",
            "acknowledged_at": "occurred_at of the earliest acknowledgement or resolution; null while nobody has.",
            "resolved_at": "occurred_at of the earliest resolution; null while unresolved.",
            "resolution": "actioned, no_action_needed, false_positive or duplicate; null while unresolved.",
            "escalation_level": "Highest escalation published: 0 none, 1 or 2.",
            "minutes_to_acknowledge": "acknowledged_at - opened_at in minutes (negative when the answer is "
            "dated before the pipeline raised it, e.g. history loaded late).",
            "minutes_to_resolve": "resolved_at - opened_at in minutes.",
        },
    ),
    "outcomes_by_modality": (
        "One row per modality (the patient's latest completed session).",
        {
            "modality": "esketamine_nasal or racemic_iv.",
            "patients_with_baseline": "Treated patients with a baseline PHQ-9 of 10 or more: the denominator.",
            "responders": "Of those, latest PHQ-9 at most half of baseline.",
            "response_rate": "responders / patients_with_baseline (0..1).",
            "remitters": "Of those, latest PHQ-9 below 5.",
            "remission_rate": "remitters / patients_with_baseline (0..1).",
            "patients_treated": "All patients whose latest completed session has this modality.",
        },
    ),
    "quarantine": (
        "One row per rejected message.",
        {
            "topic": "Source topic, or file:<name> for a backfill.",
            "partition": "Source partition (0 for files).",
            "offset": "Source offset (line number for files).",
            "received_at": "When the pipeline read it.",
            "error_kind": "malformed_json, schema, wrong_topic, unknown_event_type, unsupported_version, or "
            "unprocessable (valid, but the pipeline could not land it).",
            "errors": "JSON list of {loc, msg}: where, and a fixed message per kind of error; never the input. A loc "
            "segment the contract does not define reads <field not in the contract>.",
            "event_id": "The event_id, when it could be read and is a well-formed UUID.",
            "event_type": "The event_type, when it could be read and is a type of the contract.",
            "status": "open, or replayed after it landed through the quarantine-replay flow.",
        },
    ),
    "phq9_trajectory": (
        "PHQ-9 by modality and whole weeks since each patient's first session.",
        {
            "modality": "The patient's modality (latest completed session).",
            "weeks_since_first_session": "Whole weeks from first_session_at to the measurement (negative: before).",
            "patients": "Patients measured in that week.",
            "mean_total": "Mean PHQ-9 total.",
            "median_total": "Median PHQ-9 total.",
        },
    ),
    "rems_compliance": (
        "One row per esketamine session: the REMS monitoring and form obligations.",
        {
            "session_id": "Pseudonymous session key, as in analytics.sessions.",
            "patient_key": KEY,
            "clinic_id": "The clinic.",
            "started_at": "Dosing start.",
            "monitoring_minutes": "Minutes of monitoring.",
            "monitoring_ok": "At least 120 minutes.",
            "form_submitted_on": "Date the Patient Monitoring Form was filed (first filing).",
            "form_on_time": "Filed within 7 calendar days of discharge.",
        },
    ),
    "outreach_funnel": (
        "One row per patient task kind: what became of the planned check-ins.",
        {
            "kind": "checkin_day1 or checkin_month1/3/6/12.",
            "planned": "Tasks planned.",
            "dispatched": "Tasks ever dispatched (have an outreach_id).",
            "completed": "Completed by a check-in.",
            "expired": "Expired unanswered.",
            "blocked": "Blocked: no consented channel.",
            "cancelled": "Cancelled with their session.",
            "still_open": "Not yet due or not yet dispatched.",
        },
    ),
    "data_quality": (
        "The latest result of each warehouse data-quality suite (the data-quality flow).",
        {
            "suite": "The suite: referential integrity, ranges, freshness, reconciliation and the like.",
            "checked_at": "The clock of the run that produced it.",
            "success": "true when every expectation of the suite held.",
            "rows_checked": "Rows the suite examined.",
            "expectations_evaluated": "Expectations evaluated.",
            "failed_expectations": "List of {expectation, column, unexpected_count} that failed; never sample values.",
        },
    ),
    "quarantine_daily": (
        "Rejected messages per day and error kind.",
        {
            "day": "UTC day received.",
            "error_kind": "The rejection kind.",
            "messages": "Messages rejected.",
        },
    ),
}


def view_columns(conn: duckdb.DuckDBPyConnection) -> dict[str, list[tuple[str, str]]]:
    """{view: [(column, type)]} for the analytics schema, as DuckDB sees it."""
    rows = conn.execute("""SELECT table_name, column_name, data_type FROM information_schema.columns
                           WHERE table_schema = 'analytics' ORDER BY table_name, ordinal_position""").fetchall()
    out: dict[str, list[tuple[str, str]]] = {}
    for view, col, typ in rows:
        out.setdefault(view, []).append((col, typ))
    return out


def markdown(conn: duckdb.DuckDBPyConnection) -> str:
    lines = [
        "# Data dictionary: the `analytics` views",
        "",
        "Generated from the views and `warehouse/dictionary.py`; a test keeps it current. Analysts query these",
        "through `clinicflow sql` or by attaching the analysts' lake (`var/analytics.lake/`) read-only, where",
        "each view is a table of the same name and `snapshot_info` says which warehouse snapshot it carries.",
        "",
    ]
    for view, cols in view_columns(conn).items():
        doc, described = VIEWS[view]
        lines += [f"## analytics.{view}", "", doc, "", "| column | type | meaning |", "| --- | --- | --- |"]
        lines += [f"| `{c}` | {t} | {described.get(c, '**UNDOCUMENTED**')} |" for c, t in cols]
        lines.append("")
    return "\n".join(lines)
