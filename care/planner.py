"""The care plan inside the ingest transaction: re-derive tasks and alerts for every patient a batch touched.

Loading is set-wise (one query per event family for all touched patients),
never per event; the rules themselves are pure functions in care.rules.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

import duckdb
import pyarrow as pa

from care.history import (Cancellation, Checkin, ConsentChange, PatientHistory, Phq9, Registration,
                          ReportedAdverseEvent, Screening, Session)
from care.rules import HISTORY_DEPENDENT, Alert, Frozen, Task, alerts_for, plan_tasks
from clinicflow.settings import Settings
from schemas.produce import produced_event
from schemas.validate import Clock

T = "patient_id IN (SELECT patient_id FROM touched)"
LOADERS = {
    "registrations": f"""SELECT patient_id, event_id, occurred_at, timezone, consent_sms, consent_email, consent_phone,
                         preferred_channel, quiet_start, quiet_end FROM patients_registered WHERE {T}""",
    "consent": f"""SELECT patient_id, event_id, occurred_at, sms, email, phone FROM consent_updates WHERE {T}
                   UNION ALL
                   SELECT patient_id, event_id, occurred_at, CASE WHEN channel = 'sms' THEN false END,
                          CASE WHEN channel = 'email' THEN false END, CASE WHEN channel = 'phone' THEN false END
                   FROM outreach_statuses WHERE status = 'opted_out' AND {T}""",
    "phq9": f"""SELECT patient_id, event_id, occurred_at, 'intake', phq9_total, phq9_item9 FROM intake_assessments
                WHERE {T}
                UNION ALL
                SELECT patient_id, event_id, occurred_at, 'checkin', phq9_total, phq9_item9 FROM checkins
                WHERE phq9_total IS NOT NULL AND {T}""",
    "screenings": f"""SELECT patient_id, event_id, occurred_at, aneurysmal_vascular_disease OR arteriovenous_malformation
                      OR intracerebral_hemorrhage_history OR ketamine_hypersensitivity OR pregnant
                      FROM intake_assessments WHERE {T}""",
    "rems": f"SELECT patient_id, enrolled_on FROM rems_enrollments WHERE {T}",
    "sessions": f"""SELECT patient_id, event_id, occurred_at, clinic_id, session_id, modality, started_at, ended_at,
                    bp_pre_systolic, bp_pre_diastolic, bp_40min_systolic, bp_40min_diastolic,
                    bp_discharge_systolic, bp_discharge_diastolic, spo2_min, respiratory_depression,
                    list_contains(CAST(json_extract_string(adverse_events, '$[*].severity') AS VARCHAR[]), 'serious')
                    FROM sessions_completed WHERE {T}""",
    "cancellations": f"SELECT patient_id, event_id, occurred_at, session_id FROM sessions_cancelled WHERE {T}",
    "forms": f"""SELECT patient_id, session_id, arg_min(event_id, occurred_at), min(occurred_at) FROM rems_forms
                 WHERE {T} GROUP BY ALL""",
    "checkins": f"SELECT patient_id, event_id, occurred_at, task_id FROM checkins WHERE {T}",
    "aes": f"SELECT patient_id, event_id, occurred_at, severity = 'serious' FROM adverse_event_reports WHERE {T}",
    "clinics": f"SELECT patient_id, arg_max(clinic_id, occurred_at) FROM raw_events WHERE {T} GROUP BY ALL",
}


def _session(r) -> Session:
    (_, eid, occ, clinic, sid, modality, start, end, ps, pd_, fs, fd, ds, dd, spo2, resp, serious) = r
    bps = tuple(bp for bp in ((ps, pd_), (fs, fd), (ds, dd)) if bp[0] is not None)
    return Session(eid, occ, clinic, sid, modality, start, end, bps, (ps, pd_), spo2, resp, bool(serious))


def load_histories(conn: duckdb.DuckDBPyConnection) -> dict[str, PatientHistory]:
    """Histories of the patients in the temp table `touched`."""
    rows = {name: conn.execute(sql).fetchall() for name, sql in LOADERS.items()}
    hs: dict[str, PatientHistory] = {}

    def h(pid: str) -> PatientHistory:
        found = hs.get(pid)
        return found if found is not None else hs.setdefault(pid, PatientHistory(pid))

    for pid, eid, occ, tz, sms, email, phone, pref, qs, qe in rows["registrations"]:
        h(pid).registrations.append(Registration(eid, occ, tz, {"sms": sms, "email": email, "phone": phone},
                                                 pref, qs, qe))
    for pid, eid, occ, sms, email, phone in rows["consent"]:
        changes = {k: v for k, v in (("sms", sms), ("email", email), ("phone", phone)) if v is not None}
        h(pid).consent_changes.append(ConsentChange(eid, occ, changes))
    for pid, eid, occ, src, total, item9 in rows["phq9"]:
        h(pid).phq9.append(Phq9(eid, occ, src, total, item9))
    for pid, eid, occ, flagged in rows["screenings"]:
        h(pid).screenings.append(Screening(eid, occ, bool(flagged)))
    for pid, day in rows["rems"]:
        h(pid).rems_enrolled_on.append(day)
    for r in rows["sessions"]:
        h(r[0]).sessions.append(_session(r))
    for pid, eid, occ, sid in rows["cancellations"]:
        h(pid).cancellations.append(Cancellation(eid, occ, sid))
    for pid, sid, eid, occ in rows["forms"]:
        h(pid).rems_forms[sid] = (eid, occ)
    for pid, eid, occ, task in rows["checkins"]:
        h(pid).checkins.append(Checkin(eid, occ, task))
    for pid, eid, occ, serious in rows["aes"]:
        h(pid).reported_aes.append(ReportedAdverseEvent(eid, occ, bool(serious)))
    for pid, clinic in rows["clinics"]:
        h(pid).clinic_id = clinic
    return hs


def _frozen(conn) -> dict[str, dict[str, Frozen]]:
    out: dict[str, dict[str, Frozen]] = defaultdict(dict)
    for pid, tid, status, send_after, channel in conn.execute(
            f"""SELECT patient_id, task_id, status, send_after, channel FROM followup_tasks
                WHERE status IN ('dispatched', 'expired') AND {T}""").fetchall():
        out[pid][tid] = Frozen(status, send_after, channel)
    return out


class CarePlanner:
    """The planner hook for land_batch: settings in, a callable over (conn, batch_id, clock)."""

    def __init__(self, settings: Settings):
        self.settings = settings

    def __call__(self, conn: duckdb.DuckDBPyConnection, batch_id: str, clock: Clock) -> None:
        conn.execute("CREATE OR REPLACE TEMP TABLE touched AS SELECT DISTINCT patient_id FROM fresh")
        if not conn.execute("SELECT count(*) FROM touched").fetchall()[0][0]:
            return
        histories = load_histories(conn)
        frozen = _frozen(conn)
        tasks, alerts = [], []
        for pid, h in histories.items():
            tasks += [(pid, t) for t in plan_tasks(h, self.settings, frozen.get(pid, {}))]
            alerts += [(pid, h.clinic_id, a) for a in alerts_for(h, self.settings)]
        write_tasks(conn, tasks, clock.now)
        write_alerts(conn, alerts, clock.now, self.settings.topic_alerts)


def write_tasks(conn, tasks: list[tuple[str, Task]], now: datetime) -> None:
    if not tasks:
        return
    cols = ["task_id", "patient_id", "clinic_id", "kind", "audience", "session_id", "source_event_id", "due_at",
            "send_after", "channel", "status", "completed_at", "completed_by"]
    plan = [t for _, t in tasks]
    data = {c: [getattr(t, c) for t in plan] for c in cols if c != "patient_id"}
    data["patient_id"] = [p for p, _ in tasks]
    table = pa.table({c: data[c] for c in cols})
    conn.register("planned", table)
    try:
        conn.execute(f"""INSERT INTO followup_tasks ({', '.join(cols)}, updated_at)
                         SELECT *, ?::TIMESTAMPTZ FROM planned
                         ON CONFLICT (task_id) DO UPDATE SET
                           source_event_id = excluded.source_event_id, due_at = excluded.due_at,
                           send_after = excluded.send_after, channel = excluded.channel, status = excluded.status,
                           completed_at = excluded.completed_at, completed_by = excluded.completed_by,
                           updated_at = excluded.updated_at
                         WHERE followup_tasks.status IS DISTINCT FROM excluded.status
                            OR followup_tasks.send_after IS DISTINCT FROM excluded.send_after
                            OR followup_tasks.due_at IS DISTINCT FROM excluded.due_at
                            OR followup_tasks.channel IS DISTINCT FROM excluded.channel
                            OR followup_tasks.completed_by IS DISTINCT FROM excluded.completed_by""", [now])
    finally:
        conn.unregister("planned")


def write_alerts(conn, alerts: list[tuple[str, str, Alert]], now: datetime, topic: str) -> None:
    """Insert new alerts with their outbox message; withdraw or reopen history-dependent ones."""
    existing = {aid: status for aid, status in conn.execute(
        f"SELECT alert_id, status FROM clinical_alerts WHERE {T}").fetchall()}
    derived = {a.alert_id for _, _, a in alerts}
    new = [(p, c, a) for p, c, a in alerts if a.alert_id not in existing]
    if new:
        insert_new_alerts(conn, new, now, topic)
    gone = [aid for aid, st in existing.items() if st == "open" and aid not in derived]
    back = [aid for aid, st in existing.items() if st == "withdrawn" and aid in derived]
    if gone:
        conn.execute(f"""UPDATE clinical_alerts SET status = 'withdrawn', withdrawn_at = ?
                         WHERE alert_id IN ({', '.join('?' * len(gone))})
                           AND reason IN ({', '.join(repr(r) for r in sorted(HISTORY_DEPENDENT))})""", [now, *gone])
    if back:
        conn.execute(f"""UPDATE clinical_alerts SET status = 'open', withdrawn_at = NULL
                         WHERE alert_id IN ({', '.join('?' * len(back))})""", back)


def insert_new_alerts(conn, new: list[tuple[str, str, Alert]], now: datetime, topic: str) -> None:
    """New alerts and their outbox messages, column-wise; urgent ones first in the outbox."""
    new = sorted(new, key=lambda x: (("urgent", "high", "routine").index(x[2].severity), x[2].alert_id))
    values = [produced_event("clinical.alert", a.alert_id, now, clinic, pid, {
        "alert_id": a.alert_id, "severity": a.severity, "reason": a.reason, "source_event_id": a.source_event_id,
        "raised_at": now}) for pid, clinic, a in new]
    table = pa.table({
        "alert_id": [a.alert_id for _, _, a in new], "patient_id": [p for p, _, _ in new],
        "clinic_id": [c for _, c, _ in new], "severity": [a.severity for _, _, a in new],
        "reason": [a.reason for _, _, a in new], "source_event_id": [a.source_event_id for _, _, a in new],
        "value": pa.array(values, pa.binary()), "key": pa.array([p.encode() for p, _, _ in new], pa.binary())})
    conn.register("new_alerts", table)
    try:
        conn.execute("""INSERT INTO clinical_alerts SELECT alert_id, patient_id, clinic_id, severity, reason,
                        source_event_id, ?::TIMESTAMPTZ, 'open', NULL FROM new_alerts""", [now])
        # created_at orders the outbox: urgent alerts get the earliest microseconds of the batch.
        conn.execute("""INSERT INTO outbox SELECT alert_id, 'alert', ?, "key", value, '[]',
                        ?::TIMESTAMPTZ + to_microseconds(row_number() OVER () - 1), NULL
                        FROM new_alerts ON CONFLICT DO NOTHING""", [topic, now])
    finally:
        conn.unregister("new_alerts")
