"""care_history: what the care planner reads of every event, in one narrow table.

Each statement that reads a DuckLake table pays the catalog's lookups for that table (10 to
30 ms with an SQLite catalog, whatever the rows), so a patient's history gathered from the
twelve typed tables cost twelve of them per load. This table holds, for every landed event,
the envelope and the few typed columns the rules read; the planner loads a batch's patients
from it in one scan (care/planner.py).

It is derived, never written by hand: landing appends the batch's rows from the batch's typed
rows in the same transaction, and `backfill` rebuilds it from the typed tables (a lake from
before this table, an import).
"""

from __future__ import annotations

import duckdb

_FLAGGED = (
    "aneurysmal_vascular_disease OR arteriovenous_malformation OR intracerebral_hemorrhage_history "
    "OR ketamine_hypersensitivity OR pregnant"
)
_BP = tuple(f"bp_{k}_{s}" for k in ("pre", "40min", "discharge") for s in ("systolic", "diastolic"))
_SERIOUS_IN_SESSION = (
    "list_contains(CAST(json_extract_string(adverse_events, '$[*].severity') AS VARCHAR[]), 'serious')"
)
# typed table -> {care_history column: expression over the typed row}
PROJECTIONS: dict[str, dict[str, str]] = {
    "patients_registered": {
        "timezone": "timezone",
        "sms": "consent_sms",
        "email": "consent_email",
        "phone": "consent_phone",
        "preferred_channel": "preferred_channel",
        "quiet_start": "quiet_start",
        "quiet_end": "quiet_end",
    },
    "consent_updates": {"sms": "sms", "email": "email", "phone": "phone"},
    "intake_assessments": {"phq9_total": "phq9_total", "phq9_item9": "phq9_item9", "flagged": _FLAGGED},
    "rems_enrollments": {"enrolled_on": "enrolled_on"},
    "sessions_completed": {
        **{k: k for k in ("session_id", "modality", "started_at", "ended_at", *_BP, "spo2_min")},
        "respiratory_depression": "respiratory_depression",
        "serious": _SERIOUS_IN_SESSION,
    },
    "sessions_cancelled": {"session_id": "session_id"},
    "rems_forms": {"session_id": "session_id"},
    "checkins": {"task_id": "task_id", "phq9_total": "phq9_total", "phq9_item9": "phq9_item9"},
    "adverse_event_reports": {"serious": "severity = 'serious'"},
    "outreach_statuses": {"status": "status", "channel": "channel"},
    "alert_acknowledgements": {"alert_id": "alert_id", "staff_id": "staff_id"},
    "alert_resolutions": {"alert_id": "alert_id", "staff_id": "staff_id", "resolution": "resolution"},
}
ENVELOPE = ("event_id", "event_type", "patient_id", "clinic_id", "occurred_at")
CARE_COLUMNS: dict[str, str] = {
    **{k: "VARCHAR" for k in ("timezone", "preferred_channel", "quiet_start", "quiet_end")},
    **{k: "BOOLEAN" for k in ("sms", "email", "phone", "flagged", "respiratory_depression", "serious")},
    **{k: "INTEGER" for k in ("phq9_total", "phq9_item9", *_BP, "spo2_min")},
    "enrolled_on": "DATE",
    **{k: "VARCHAR" for k in ("session_id", "modality", "task_id", "alert_id", "staff_id", "resolution")},
    **{k: "VARCHAR" for k in ("status", "channel")},
    "started_at": "TIMESTAMPTZ",
    "ended_at": "TIMESTAMPTZ",
}


def rows_sql(events: str, typed: dict[str, str]) -> str:
    """SELECT of care_history rows for the events in `events` (raw_events' envelope columns),
    their care columns read from the typed relations `typed` names ({typed table: relation})."""
    # The empty first part fixes every column's name and type, whichever relations follow.
    parts = ["SELECT NULL::VARCHAR AS event_id, " + ", ".join(f"NULL::{t} AS {c}" for c, t in CARE_COLUMNS.items())]
    for table, relation in typed.items():
        if table not in PROJECTIONS:  # consults, scheduled sessions: the rules read their envelope only
            continue
        cols = ", ".join(f"{expr} AS {col}" for col, expr in PROJECTIONS[table].items())
        parts.append(f"SELECT event_id, {cols} FROM {relation}")
    union = " UNION ALL BY NAME ".join(f"({p})" for p in parts)
    env = ", ".join(f"e.{c}" for c in ENVELOPE)
    care = ", ".join(f"t.{c}" for c in CARE_COLUMNS)
    return f"SELECT {env}, {care} FROM {events} e LEFT JOIN ({union}) t USING (event_id)"


def append(conn: duckdb.DuckDBPyConnection, events: str, typed: dict[str, str]) -> None:
    """Append the care rows of `events` (inside the caller's transaction)."""
    conn.execute(f"INSERT INTO care_history ({', '.join((*ENVELOPE, *CARE_COLUMNS))}) {rows_sql(events, typed)}")


def backfill(conn: duckdb.DuckDBPyConnection) -> None:
    """Rebuild care_history from raw_events and the typed tables (inside the caller's transaction:
    the migration that adds the table, an import)."""
    conn.execute("DELETE FROM care_history")
    append(conn, "raw_events", {t: t for t in PROJECTIONS})
