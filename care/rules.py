"""The care plan as pure functions of a patient's history: the same history always gives the same
tasks and alerts, whatever order its events arrived in and however they were batched."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from care.consent import channel_at
from care.history import PatientHistory, Session
from care.policy import CarePolicy, as_policy
from care.schedule import hm, local_day, place

NAMESPACE = uuid.UUID("5b0f3c1e-8f4d-4a43-9a55-6f1d2c7e9b10")
SEVERITY = {
    "phq9_item9_positive": "urgent",
    "bp_crisis": "urgent",
    "serious_adverse_event": "urgent",
    "respiratory_depression": "urgent",
    "rems_monitoring_short": "high",
    "dosed_above_bp_threshold": "high",
    "dosed_despite_contraindication": "high",
    "esketamine_without_rems_enrollment": "high",
    "rems_form_overdue": "routine",
    "worsening": "routine",
}
# Reasons that depend on other events than their source; a late event can withdraw them.
HISTORY_DEPENDENT = {"worsening", "dosed_despite_contraindication", "esketamine_without_rems_enrollment"}
MONTH_KINDS = ("checkin_month1", "checkin_month3", "checkin_month6", "checkin_month12")


_NS = NAMESPACE.bytes


def stable_id(*parts: str) -> str:
    """str(uuid5(NAMESPACE, ':'.join(parts))) without building UUID objects: planning calls it per task.

    No cache: a cache big enough to hit on a large clinic grew the process by ~80 MB.
    """
    h = bytearray(hashlib.sha1(_NS + ":".join(parts).encode()).digest()[:16])
    h[6] = (h[6] & 0x0F) | 0x50  # version 5
    h[8] = (h[8] & 0x3F) | 0x80  # RFC 4122 variant
    x = h.hex()
    return f"{x[:8]}-{x[8:12]}-{x[12:16]}-{x[16:20]}-{x[20:]}"


@dataclass(frozen=True)
class Alert:
    alert_id: str
    reason: str
    severity: str
    source_event_id: str
    source_occurred_at: datetime  # orders the alerts of an episode (docs/ALERTS.md)


def alert(source_event_id: str, reason: str, source_occurred_at: datetime) -> Alert:
    return Alert(stable_id(source_event_id, reason), reason, SEVERITY[reason], source_event_id, source_occurred_at)


# --- alerts ---------------------------------------------------------------------------------
def alerts_for(h: PatientHistory, s: CarePolicy) -> list[Alert]:
    """Every alert the history supports, one per (source event, reason)."""
    s = as_policy(s)
    out = [alert(p.event_id, "phq9_item9_positive", p.occurred_at) for p in h.phq9 if p.item9 >= s.item9_threshold]
    out += _worsening(h, s)
    for sess in h.sessions:
        out += [alert(sess.event_id, r, sess.occurred_at) for r in _session_reasons(h, sess, s)]
    out += [alert(ae.event_id, "serious_adverse_event", ae.occurred_at) for ae in h.reported_aes if ae.serious]
    return sorted(set(out), key=lambda a: a.alert_id)


def baseline(h: PatientHistory):
    """The PHQ-9 of the patient's first intake.assessed (by occurred_at)."""
    intakes = [p for p in h.phq9 if p.source == "intake"]
    return min(intakes, key=lambda p: (p.occurred_at, p.event_id), default=None)


def _worsening(h: PatientHistory, s: CarePolicy) -> list[Alert]:
    base = baseline(h)
    if base is None:
        return []
    return [
        alert(p.event_id, "worsening", p.occurred_at)
        for p in h.phq9
        if p.event_id != base.event_id and p.total >= base.total + s.worsening_points
    ]


def _session_reasons(h: PatientHistory, sess: Session, s: CarePolicy) -> list[str]:
    reasons = []
    if any(sy >= s.bp_crisis_systolic or di >= s.bp_crisis_diastolic for sy, di in sess.bps):
        reasons.append("bp_crisis")
    if sess.serious_adverse_event:
        reasons.append("serious_adverse_event")
    if sess.respiratory_depression or (sess.spo2_min is not None and sess.spo2_min < s.spo2_min):
        reasons.append("respiratory_depression")
    minutes = (sess.ended_at - sess.started_at).total_seconds() / 60
    if sess.modality == "esketamine_nasal" and minutes < s.rems_monitoring_minutes:
        reasons.append("rems_monitoring_short")
    if sess.bp_pre[0] > s.dosing_bp_systolic or sess.bp_pre[1] > s.dosing_bp_diastolic:
        reasons.append("dosed_above_bp_threshold")
    if _contraindicated(h, sess):
        reasons.append("dosed_despite_contraindication")
    if sess.modality == "esketamine_nasal" and not _enrolled(h, sess):
        reasons.append("esketamine_without_rems_enrollment")
    return reasons


def _contraindicated(h: PatientHistory, sess: Session) -> bool:
    """The latest screening taken by the end of the session flags a contraindication or pregnancy."""
    before = [sc for sc in h.screenings if sc.occurred_at <= sess.ended_at]
    latest = max(before, key=lambda sc: (sc.occurred_at, sc.event_id), default=None)
    return latest is not None and latest.contraindicated


def _enrolled(h: PatientHistory, sess: Session) -> bool:
    """REMS enrollment comes before the first dose: enrolled on or before the session's local day."""
    day = local_day(sess.started_at, _zone(h))
    return any(d <= day for d in h.rems_enrolled_on)


def _zone(h: PatientHistory) -> ZoneInfo:
    reg = h.registration
    return ZoneInfo(reg.timezone if reg else "UTC")


# --- tasks ----------------------------------------------------------------------------------
@dataclass
class Task:
    task_id: str
    kind: str
    audience: str
    session_id: str | None
    source_event_id: str
    clinic_id: str
    due_at: datetime
    send_after: datetime | None = None
    channel: str | None = None
    status: str = "open"
    completed_at: datetime | None = None
    completed_by: str | None = None


@dataclass(frozen=True)
class Frozen:
    """What the outreach flow decided about a task; planning never undoes it."""

    status: str  # dispatched | expired
    send_after: datetime
    channel: str | None


def counting_sessions(h: PatientHistory) -> tuple[list[Session], set[str]]:
    """The latest completion per session_id, and the session_ids cancelled after it."""
    latest: dict[str, Session] = {}
    for sess in sorted(h.sessions, key=lambda x: (x.occurred_at, x.event_id)):
        latest[sess.session_id] = sess
    cancelled = {
        c.session_id
        for c in h.cancellations
        if c.session_id in latest and c.occurred_at > latest[c.session_id].occurred_at
    }
    return sorted(latest.values(), key=lambda x: (x.ended_at, x.event_id)), cancelled


def plan_tasks(h: PatientHistory, s: CarePolicy, frozen: dict[str, Frozen]) -> list[Task]:
    """Every task the history calls for, scheduled, with consent, completion and status."""
    s = as_policy(s)
    sessions, cancelled = counting_sessions(h)
    tasks = _create(h, sessions, s)
    _schedule(h, tasks, s, frozen)
    _complete(h, tasks, s, cancelled)
    for t in tasks:
        t.status = _status(t, cancelled, frozen.get(t.task_id))
    return tasks


def _create(h: PatientHistory, sessions: list[Session], s: CarePolicy) -> list[Task]:
    tasks = []
    for sess in sessions:
        tasks.append(
            Task(
                stable_id(sess.clinic_id, sess.session_id, "checkin_day1"),
                "checkin_day1",
                "patient",
                sess.session_id,
                sess.event_id,
                sess.clinic_id,
                sess.ended_at + timedelta(hours=s.day1_hours),
            )
        )
        if sess.modality == "esketamine_nasal":
            tasks.append(
                Task(
                    stable_id(sess.clinic_id, sess.session_id, "rems_form_due"),
                    "rems_form_due",
                    "staff",
                    sess.session_id,
                    sess.event_id,
                    sess.clinic_id,
                    sess.ended_at + timedelta(days=s.rems_form_days),
                )
            )
    if sessions:
        first = sessions[0]
        for kind, days in zip(MONTH_KINDS, s.month_days):
            tasks.append(
                Task(
                    stable_id(h.patient_id, kind),
                    kind,
                    "patient",
                    None,
                    first.event_id,
                    first.clinic_id,
                    first.ended_at + timedelta(days=days),
                )
            )
    return tasks


def _schedule(h: PatientHistory, tasks: list[Task], s: CarePolicy, frozen: dict[str, Frozen]) -> None:
    reg = h.registration
    zone = _zone(h)
    start = hm(reg.quiet_start if reg and reg.quiet_start else s.quiet_start)
    end = hm(reg.quiet_end if reg and reg.quiet_end else s.quiet_end)
    taken = {local_day(f.send_after, zone) for tid, f in frozen.items() if any(t.task_id == tid for t in tasks)}
    for t in sorted(tasks, key=lambda t: (t.due_at, t.task_id)):
        if t.audience == "staff":
            t.send_after = t.due_at
        elif t.task_id in frozen:
            t.send_after, t.channel = frozen[t.task_id].send_after, frozen[t.task_id].channel
        else:
            t.send_after = place(t.due_at, zone, start, end, taken)
            t.channel = channel_at(h, t.send_after)


def _complete(h: PatientHistory, tasks: list[Task], s: CarePolicy, cancelled: set[str]) -> None:
    by_id = {t.task_id: t for t in tasks}
    checkin_tasks = [t for t in tasks if t.kind.startswith("checkin") and t.session_id not in cancelled]
    for t in tasks:
        if t.kind == "rems_form_due" and t.session_id in h.rems_forms:
            t.completed_by, t.completed_at = h.rems_forms[t.session_id]
    checkins = sorted(h.checkins, key=lambda c: (c.occurred_at, c.event_id))
    unlinked = []
    for c in checkins:
        if c.task_id is None:
            unlinked.append(c)
            continue
        # A linked check-in completes its own task only; if that task is not planned yet
        # (the session has not arrived), it will be when the session lands.
        target = by_id.get(c.task_id)
        if target is not None and target in checkin_tasks and target.completed_by is None:
            target.completed_by, target.completed_at = c.event_id, c.occurred_at
    window = timedelta(days=s.checkin_match_days)
    for c in unlinked:
        open_ = [t for t in checkin_tasks if t.completed_by is None and abs(t.due_at - c.occurred_at) <= window]
        if open_:
            best = min(open_, key=lambda t: (abs(t.due_at - c.occurred_at), t.due_at, t.task_id))
            best.completed_by, best.completed_at = c.event_id, c.occurred_at


def _status(t: Task, cancelled: set[str], frozen: Frozen | None) -> str:
    if t.session_id in cancelled and t.kind in ("checkin_day1", "rems_form_due"):
        return "cancelled"
    if t.completed_by is not None:
        return "completed"
    if frozen is not None:
        return frozen.status
    if t.audience == "patient" and t.channel is None:
        return "blocked_no_consent"
    return "open"
