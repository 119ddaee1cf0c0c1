"""The care plan inside the ingest transaction, and the re-planning of queued patients after it.

Alerts are raised in the batch that lands their event. A new event can only
add alerts of its own, unless it changes what other events' alerts are judged
against (a registration's zone, an intake's screening and baseline, a REMS
enrollment): then that patient's alerts are re-derived from full history.

Follow-up tasks are a pure function of a patient's full history. Events that
change consent or cancel a session re-plan their patient inside the batch;
the bulk (completed sessions, check-ins, REMS forms) queue the patient in
care_plan_queue, in the same transaction, and plan_pending re-plans each
queued patient once per care_plan_delay_s however many of its events landed
meanwhile. Every run plans the whole queue before it ends, and the outreach
flow before it dispatches, so no task is ever sent from a stale plan.

Loading is set-wise (one query a load, for all patients in the temp table `touched`,
read as one Arrow table and turned into histories in Python), never per event; the rules
are pure functions in care.rules. Histories come from care_history
(warehouse/care_history.py), copied for a batch's patients once per batch: every lake table
a statement reads costs catalog lookups.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from care.exceptions import CareError
from care.history import (
    Cancellation,
    Checkin,
    ConsentChange,
    PatientHistory,
    Phq9,
    Registration,
    ReportedAdverseEvent,
    Screening,
    Session,
)
from care.lifecycle import AlertChanges, finish, reconcile
from care.policy import CarePolicy, as_policy
from care.rules import Frozen, Task, alerts_for, plan_tasks
from schemas.validate import Clock
from warehouse.db import retry_busy, transaction
from warehouse.poison import describe, isolatable

log = logging.getLogger("clinicflow.care")

# Events whose arrival changes how other events' alerts are judged.
ALERT_CONTEXT = ("patient.registered", "intake.assessed", "rems.enrolled")
# Events that can raise alerts of their own.
ALERTING = ("intake.assessed", "session.completed", "checkin.completed", "adverse_event.reported")
# Events that change consent or cancel a session: their patient is re-planned in the batch.
PLAN_NOW = ("patient.registered", "consent.updated", "session.cancelled")
# The on-call queue's answers: their patient's episodes are re-derived.
ACTING = ("alert.acknowledged", "alert.resolved")
# Events that add or complete tasks: their patient is queued for plan_pending.
PLAN_LATER = ("session.completed", "checkin.completed", "rems.form_submitted")

T = "patient_id IN (SELECT patient_id FROM touched)"


@dataclass(frozen=True)
class Loads:
    """Which families of a patient's history a load reads; events of the `fresh_types` only from
    the batch's own events (the temp table `fresh`)."""

    families: frozenset[str]
    fresh_types: frozenset[str] = frozenset()

    @property
    def types(self) -> frozenset[str]:
        """The event types the families are read from (FAMILY_TYPES)."""
        return frozenset(t for f in self.families for t in FAMILY_TYPES[f])


# The event types each family is read from ("clinics": the clinic of the patient's latest event, any type).
FAMILY_TYPES: dict[str, tuple[str, ...]] = {
    "registrations": ("patient.registered",),
    "consent": ("consent.updated", "outreach.status"),
    "phq9": ("intake.assessed", "checkin.completed"),
    "screenings": ("intake.assessed",),
    "rems": ("rems.enrolled",),
    "sessions": ("session.completed",),
    "cancellations": ("session.cancelled",),
    "forms": ("rems.form_submitted",),
    "checkins": ("checkin.completed",),
    "aes": ("adverse_event.reported",),
    "clinics": (),
}
# Full history: everything the rules read.
LOADERS = Loads(frozenset(FAMILY_TYPES))
# What tasks need (plan_tasks reads no PHQ-9, screening, enrollment or adverse event).
TASK_LOADERS = Loads(frozenset({"registrations", "consent", "sessions", "cancellations", "forms", "checkins"}))
# What the fresh events' own alerts need: the patient's alert context in full, the events themselves only.
FRESH_ALERT_LOADERS = Loads(
    frozenset({"registrations", "screenings", "rems", "clinics", "phq9", "sessions", "aes"}),
    fresh_types=frozenset({"checkin.completed", "session.completed", "adverse_event.reported"}),
)
_SESSION_COLUMNS = (
    "patient_id", "event_id", "occurred_at", "clinic_id", "session_id", "modality", "started_at", "ended_at",
    "bp_pre_systolic", "bp_pre_diastolic", "bp_40min_systolic", "bp_40min_diastolic",
    "bp_discharge_systolic", "bp_discharge_diastolic", "spo2_min", "respiratory_depression", "serious",
)  # fmt: skip
_CARE_READ = (
    *_SESSION_COLUMNS, "event_type", "timezone", "sms", "email", "phone", "preferred_channel", "quiet_start",
    "quiet_end", "phq9_total", "phq9_item9", "flagged", "enrolled_on", "task_id", "status", "channel",
)  # fmt: skip


def _session(r) -> Session:
    (_, eid, occ, clinic, sid, modality, start, end, ps, pd_, fs, fd, ds, dd, spo2, resp, serious) = r
    bps = tuple(bp for bp in ((ps, pd_), (fs, fd), (ds, dd)) if bp[0] is not None)
    return Session(eid, occ, clinic, sid, modality, start, end, bps, (ps, pd_), spo2, resp, bool(serious))


def _read_rows(conn, loads: Loads, source: str) -> pa.Table:
    """The touched patients' care rows the load needs, as one Arrow table: one statement, where a
    statement per family cost 1 to 3 ms each on a temporary table (33 a batch) and more on the lake."""
    where = f"event_type IN ({_quoted(loads.types - loads.fresh_types)})"
    fresh = "NULL::BOOLEAN"
    if loads.fresh_types:
        fresh = "event_id IN (SELECT event_id FROM fresh)"
        where = f"({where} OR (event_type IN ({_quoted(loads.types & loads.fresh_types)}) AND {fresh}))"
    return conn.execute(
        f"SELECT {', '.join(_CARE_READ)}, {fresh} AS is_fresh FROM {source} WHERE {T} AND {where}"
    ).to_arrow_table()


def _quoted(types: frozenset[str]) -> str:
    return ", ".join(sorted(repr(t) for t in types)) or "NULL"


class _Rows:
    """Rows of one event type (and condition) off the Arrow table, as tuples of the columns asked for."""

    def __init__(self, table: pa.Table, loads: Loads):
        self.table, self.loads = table, loads

    def __call__(self, event_type: str, *columns: str, where=None) -> list[tuple]:
        if event_type not in self.loads.types:
            # The query fetched only FAMILY_TYPES' types: asked for another, a family would be
            # silently empty and its alerts never raised.
            raise CareError(
                f"a history reader asked for {event_type} rows, which its family's FAMILY_TYPES entry does "
                "not list; add the type there (care/planner.py)"
            )
        mask = pc.equal(self.table["event_type"], event_type)
        if where is not None:
            mask = pc.and_(mask, where)
        if event_type in self.loads.fresh_types:
            mask = pc.and_(mask, pc.fill_null(self.table["is_fresh"], False))
        rows = self.table.filter(mask)
        return list(zip(*(_py(rows[c]) for c in columns))) if rows.num_rows else []


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_US = timedelta(microseconds=1)


def _py(column: pa.ChunkedArray) -> list:
    """A column as Python values; instants as UTC datetimes built from their microseconds, five
    times faster than Arrow's conversion with a time zone (2.7 µs a value, measured)."""
    if pa.types.is_timestamp(column.type) and column.type.tz is not None:
        micros = column.cast(pa.timestamp("us", tz=column.type.tz)).cast(pa.int64()).to_pylist()
        return [None if m is None else _EPOCH + m * _US for m in micros]
    return column.to_pylist()


def load_histories(
    conn: duckdb.DuckDBPyConnection,
    loads: Loads = LOADERS,
    source: str = "care_history",
    known: dict[str, PatientHistory] | None = None,
) -> dict[str, PatientHistory]:
    """Histories of the patients in the temp table `touched`, as far as `loads` reach, read from
    `source`: care_history, or a batch's copy of its patients' rows (CarePlanner).

    `known`: full histories (LOADERS) read from the same source in the same transaction, reused
    as they are for the patients they hold (they reach further than any load)."""
    table = _read_rows(conn, loads, source)
    hs: dict[str, PatientHistory] = {}
    if known:
        reused = [p for (p,) in conn.execute("SELECT patient_id FROM touched").fetchall() if p in known]
        hs.update((p, known[p]) for p in reused)
        table = table.filter(pc.invert(pc.is_in(table["patient_id"], value_set=pa.array(reused, pa.string()))))
    rows = _Rows(table, loads)

    def h(pid: str) -> PatientHistory:
        found = hs.get(pid)
        return found if found is not None else hs.setdefault(pid, PatientHistory(pid))

    for family, read in _FAMILY_READERS.items():
        if family in loads.families:
            read(rows, h)
    if "clinics" in loads.families:
        _latest_clinics(conn, source, h)
    return hs


_ENV = ("patient_id", "event_id", "occurred_at")


def _registrations(rows: _Rows, h) -> None:
    cols = ("timezone", "sms", "email", "phone", "preferred_channel", "quiet_start", "quiet_end")
    for pid, eid, occ, tz, sms, email, phone, pref, qs, qe in rows("patient.registered", *_ENV, *cols):
        h(pid).registrations.append(
            Registration(eid, occ, tz, {"sms": sms, "email": email, "phone": phone}, pref, qs, qe)
        )


def _consent(rows: _Rows, h) -> None:
    for pid, eid, occ, sms, email, phone in rows("consent.updated", *_ENV, "sms", "email", "phone"):
        changes = {k: v for k, v in (("sms", sms), ("email", email), ("phone", phone)) if v is not None}
        h(pid).consent_changes.append(ConsentChange(eid, occ, changes))
    opted_out = pc.fill_null(pc.equal(rows.table["status"], "opted_out"), False)
    for pid, eid, occ, channel in rows("outreach.status", *_ENV, "channel", where=opted_out):
        changes = {channel: False} if channel in ("sms", "email", "phone") else {}
        h(pid).consent_changes.append(ConsentChange(eid, occ, changes))


def _phq9(rows: _Rows, h) -> None:
    for pid, eid, occ, total, item9 in rows("intake.assessed", *_ENV, "phq9_total", "phq9_item9"):
        h(pid).phq9.append(Phq9(eid, occ, "intake", total, item9))
    answered = pc.is_valid(rows.table["phq9_total"])
    for pid, eid, occ, total, item9 in rows("checkin.completed", *_ENV, "phq9_total", "phq9_item9", where=answered):
        h(pid).phq9.append(Phq9(eid, occ, "checkin", total, item9))


def _screenings(rows: _Rows, h) -> None:
    for pid, eid, occ, flagged in rows("intake.assessed", *_ENV, "flagged"):
        h(pid).screenings.append(Screening(eid, occ, bool(flagged)))


def _rems(rows: _Rows, h) -> None:
    for pid, day in rows("rems.enrolled", "patient_id", "enrolled_on"):
        h(pid).rems_enrolled_on.append(day)


def _sessions(rows: _Rows, h) -> None:
    for r in rows("session.completed", *_SESSION_COLUMNS):
        h(r[0]).sessions.append(_session(r))


def _cancellations(rows: _Rows, h) -> None:
    for pid, eid, occ, sid in rows("session.cancelled", *_ENV, "session_id"):
        h(pid).cancellations.append(Cancellation(eid, occ, sid))


def _forms(rows: _Rows, h) -> None:
    """The first form per session, by occurred_at, then event_id: order of arrival never matters."""
    for pid, eid, occ, sid in rows("rems.form_submitted", *_ENV, "session_id"):
        first = h(pid).rems_forms.get(sid)
        if first is None or (occ, eid) < (first[1], first[0]):
            h(pid).rems_forms[sid] = (eid, occ)


def _checkins(rows: _Rows, h) -> None:
    for pid, eid, occ, task in rows("checkin.completed", *_ENV, "task_id"):
        h(pid).checkins.append(Checkin(eid, occ, task))


def _aes(rows: _Rows, h) -> None:
    for pid, eid, occ, serious in rows("adverse_event.reported", *_ENV, "serious"):
        h(pid).reported_aes.append(ReportedAdverseEvent(eid, occ, bool(serious)))


_FAMILY_READERS = {
    "registrations": _registrations,
    "consent": _consent,
    "phq9": _phq9,
    "screenings": _screenings,
    "rems": _rems,
    "sessions": _sessions,
    "cancellations": _cancellations,
    "forms": _forms,
    "checkins": _checkins,
    "aes": _aes,
}


def _latest_clinics(conn, source: str, h) -> None:
    """Each patient's clinic: that of their latest event (an aggregate per patient, in DuckDB)."""
    for pid, clinic in conn.execute(
        f"SELECT patient_id, arg_max(clinic_id, occurred_at) FROM {source} WHERE {T} GROUP BY ALL"
    ).fetchall():
        h(pid).clinic_id = clinic


def _current_tasks(conn) -> dict[str, dict[str, Frozen]]:
    """Copy the touched patients' tasks into the temp table `current_tasks` (the one read of
    followup_tasks a plan makes: write_tasks compares against the copy); their frozen tasks."""
    conn.execute(
        f"""CREATE OR REPLACE TEMP TABLE current_tasks AS SELECT task_id, patient_id, status, send_after, due_at,
            channel, completed_by FROM followup_tasks WHERE {T}"""
    )
    out: dict[str, dict[str, Frozen]] = defaultdict(dict)
    for pid, tid, status, send_after, channel in conn.execute(
        "SELECT patient_id, task_id, status, send_after, channel FROM current_tasks "
        "WHERE status IN ('dispatched', 'expired')"
    ).fetchall():
        out[pid][tid] = Frozen(status, send_after, channel)
    return out


def _in(types: tuple[str, ...]) -> str:
    return "event_type IN (" + ", ".join(f"'{t}'" for t in types) + ")"


# Per patient of the batch: what its fresh events call for.
_WORK = f"""
CREATE OR REPLACE TEMP TABLE care_work AS
SELECT patient_id,
       bool_or({_in(ALERT_CONTEXT)}) AS context,
       bool_or({_in(ALERTING)}) AS alerting,
       bool_or({_in(ACTING)}) AS acting,
       bool_or({_in(PLAN_NOW)} OR (event_type = 'outreach.status'
               AND json_extract_string(event, '$.payload.status') = 'opted_out')) AS plan_now,
       bool_or({_in(PLAN_LATER)}) AS plan_later
FROM fresh GROUP BY patient_id
"""


def _count(conn, sql: str) -> int:
    return conn.execute(sql).fetchall()[0][0]


def _touch(conn, where: str) -> int:
    """Point the temp table `touched` at the patients of care_work matching `where`; how many."""
    conn.execute(f"CREATE OR REPLACE TEMP TABLE touched AS SELECT patient_id FROM care_work WHERE {where}")
    return _count(conn, "SELECT count(*) FROM touched")


def wall_now() -> datetime:
    return datetime.now(timezone.utc)


BATCH_CTX = "care_batch_ctx"
BATCH_ALERTS = "care_batch_alerts"


class CarePlanner:
    """The planner hook for land_batch: a care policy in, a callable over (conn, batch_id, clock)."""

    def __init__(self, policy: CarePolicy):
        self.policy = as_policy(policy)

    def __call__(self, conn: duckdb.DuckDBPyConnection, batch_id: str, clock: Clock) -> None:
        conn.execute(_WORK)
        # Every patient the batch's planning can touch is in care_work: one lake scan for all the
        # loads below (alerts twice, episodes, tasks), each a lake scan of its own otherwise.
        conn.execute(
            f"CREATE OR REPLACE TEMP TABLE {BATCH_CTX} AS SELECT * FROM care_history "
            "WHERE patient_id IN (SELECT patient_id FROM care_work)"
        )
        full: dict[str, PatientHistory] = {}  # read for the alerts, reused for the tasks
        try:
            self._alerts(conn, clock.now, full)
            self._tasks(conn, clock.now, full)
        finally:
            conn.execute(f"DROP TABLE IF EXISTS {BATCH_CTX}")
            conn.execute(f"DROP TABLE IF EXISTS {BATCH_ALERTS}")

    def _alerts(self, conn, now: datetime, full: dict[str, PatientHistory]) -> None:
        if not _count(conn, "SELECT count(*) FROM care_work WHERE context OR alerting OR acting"):
            return
        # The stored alerts of the batch's patients, read once: checked twice below and loaded
        # again for the episodes, each a lake scan of clinical_alerts otherwise.
        conn.execute(
            f"CREATE OR REPLACE TEMP TABLE {BATCH_ALERTS} AS SELECT * FROM clinical_alerts "
            "WHERE patient_id IN (SELECT patient_id FROM care_work)"
        )
        changes = AlertChanges()
        # Only a changed context can withdraw alerts: those patients are judged on full history.
        if _touch(conn, "context"):
            full.update(load_histories(conn, LOADERS, BATCH_CTX))
            changes.merge(raise_alerts(conn, full, self.policy, now, withdraw=True, alerts=BATCH_ALERTS))
        if _touch(conn, "alerting AND NOT context"):
            fresh = load_histories(conn, FRESH_ALERT_LOADERS, BATCH_CTX)
            changes.merge(raise_alerts(conn, fresh, self.policy, now, withdraw=False, alerts=BATCH_ALERTS))
        # Episodes change with new alerts, withdrawals and reopenings (context) and on-call actions.
        # Every patient with a new alert is touched: finish() writes the new alerts.
        raised = sorted({p for p, _, _ in changes.new})
        if touch_ids(conn, raised, also="SELECT patient_id FROM care_work WHERE context OR acting"):
            finish(conn, changes, now, self.policy.alerts_topic, source=BATCH_CTX, alerts=BATCH_ALERTS)

    def _tasks(self, conn, now: datetime, full: dict[str, PatientHistory]) -> None:
        deferred = self.policy.plan_delay_s > 0
        if _touch(conn, "plan_now" if deferred else "plan_now OR plan_later"):
            try:
                plan_touched(conn, self.policy, now, source=BATCH_CTX, known=full)
                conn.execute(f"DELETE FROM care_plan_queue WHERE {T}")
            except duckdb.Error:
                raise
            except Exception as e:  # noqa: BLE001 - one patient's plan must not stop the batch from landing
                # The rules failed in Python (nothing was written): queue these patients, and
                # plan_pending finds the one whose plan cannot be computed and parks it alone.
                log.warning("planning patients in the batch failed (%s); they are queued for plan_pending", e)
                conn.execute(
                    """INSERT INTO care_plan_queue SELECT patient_id, ?::TIMESTAMPTZ FROM touched
                       WHERE patient_id NOT IN (SELECT patient_id FROM care_plan_queue)""",
                    [datetime(2000, 1, 1, tzinfo=timezone.utc)],
                )
        # The queue is a lake table: reading it costs catalog lookups, so only when there is work.
        if deferred and _count(conn, "SELECT count(*) FROM care_work WHERE plan_later AND NOT plan_now"):
            conn.execute(
                """INSERT INTO care_plan_queue SELECT patient_id, ?::TIMESTAMPTZ FROM care_work
                   WHERE plan_later AND NOT plan_now AND patient_id NOT IN (SELECT patient_id FROM care_plan_queue)""",
                [wall_now()],
            )


def raise_alerts(
    conn,
    histories: dict[str, PatientHistory],
    policy: CarePolicy,
    now: datetime,
    withdraw: bool,
    alerts: str = "clinical_alerts",
) -> AlertChanges:
    """Alerts of the patients in `touched`, from their `histories`; episodes and messages follow."""
    derived = [(pid, h.clinic_id, a) for pid, h in histories.items() for a in alerts_for(h, policy)]
    return reconcile(conn, derived, now, withdraw=withdraw, alerts=alerts)


def plan_touched(
    conn, policy: CarePolicy, now: datetime, source: str = "care_history", known: dict | None = None
) -> None:
    """Re-derive the follow-up tasks of the patients in `touched` from their full history (`known`:
    see load_histories)."""
    histories = load_histories(conn, TASK_LOADERS, source, known)
    frozen = _current_tasks(conn)
    try:
        tasks = [(pid, t) for pid, h in histories.items() for t in plan_tasks(h, policy, frozen.get(pid, {}))]
        write_tasks(conn, tasks, now)
    finally:
        conn.execute("DROP TABLE IF EXISTS current_tasks")


def plan_pending(
    conn: duckdb.DuckDBPyConnection, policy: CarePolicy, now: datetime, *, all_: bool = False, progress=None
) -> int:
    """Re-plan queued patients: those queued care_plan_delay_s ago or earlier, or all of them.

    One transaction per chunk of care_plan_chunk_patients, so memory stays bounded
    however long the queue; returns how many patients were planned.
    """
    policy = as_policy(policy)
    cutoff = datetime.max.replace(tzinfo=timezone.utc) if all_ else wall_now() - timedelta(seconds=policy.plan_delay_s)
    planned = 0
    while True:
        n = _plan_chunk(conn, policy, now, cutoff)
        planned += n
        if n and progress:
            progress(f"planned follow-up tasks of {planned} queued patients")
        if n < policy.plan_chunk_patients:
            return planned


class PendingPlans:
    """plan_pending between batches, the queue read only when an entry can be due.

    A patient is due care_plan_delay_s after it was queued. After a read, nothing queued later
    is due before read time + delay, nor anything left before its queued_at + delay: the next
    read waits for the earlier of the two, and never more than RECHECK_S (each read of the lake
    table costs its catalog lookups, 15 to 25 ms, and the ingest loop runs about once a
    second). The bound covers what the rule cannot see: a batch whose rules failed queues its
    patients as due at once, and another writer's entry can commit after a read that missed it.
    """

    RECHECK_S = 5.0

    def __init__(self, policy: CarePolicy):
        self.policy = as_policy(policy)
        self.next_read: datetime | None = None

    def __call__(self, conn: duckdb.DuckDBPyConnection, now: datetime) -> int:
        read_at = wall_now()
        if self.next_read is not None and read_at < self.next_read:
            return 0
        delay = timedelta(seconds=self.policy.plan_delay_s)
        earliest, planned = _first_queued(conn), 0
        if earliest is not None and earliest + delay <= read_at:  # only then is plan_pending's read worth it
            planned = plan_pending(conn, self.policy, now)
            earliest = _first_queued(conn)
        self.next_read = min(min(read_at, earliest or read_at) + delay, read_at + timedelta(seconds=self.RECHECK_S))
        return planned


def _first_queued(conn) -> datetime | None:
    return conn.execute("SELECT min(queued_at) FROM care_plan_queue").fetchall()[0][0]


def _plan_chunk(conn, policy: CarePolicy, now: datetime, cutoff: datetime) -> int:
    ids = [
        p
        for (p,) in conn.execute(
            """SELECT patient_id FROM care_plan_queue WHERE queued_at <= ?
                                         ORDER BY queued_at, patient_id LIMIT ?""",
            [cutoff, policy.plan_chunk_patients],
        ).fetchall()
    ]
    if ids:
        _plan_group(conn, policy, now, ids)
    return len(ids)


def _plan_group(conn, policy: CarePolicy, now: datetime, ids: list[str]) -> None:
    """Plan these queued patients in one transaction; on a defect, halve the group until the
    patient whose plan cannot be computed stands alone, and park that patient."""
    try:
        retry_busy(lambda: _plan_ids(conn, policy, now, ids))
    except Exception as e:
        if not isolatable(e):
            raise CareError(
                f"re-planning {len(ids)} queued patient(s) failed and was rolled back: {e}; they stay "
                "queued and the next writer (ingest, load or outreach) plans them"
            ) from e
        if len(ids) == 1:
            _park(conn, ids[0], describe(e), now)
            return
        mid = len(ids) // 2
        _plan_group(conn, policy, now, ids[:mid])
        _plan_group(conn, policy, now, ids[mid:])


def _plan_ids(conn, policy: CarePolicy, now: datetime, ids: list[str]) -> None:
    with transaction(conn):
        touch_ids(conn, ids)
        plan_touched(conn, policy, now)
        conn.execute(f"DELETE FROM care_plan_queue WHERE {T}")
        conn.execute(f"DELETE FROM care_plan_parked WHERE {T}")


def touch_ids(conn, ids: list[str], also: str | None = None) -> int:
    """Point `touched` at these patients (and those the query `also` selects); how many."""
    conn.register("touch_ids", pa.table({"patient_id": pa.array(ids, pa.string())}))
    union = f" UNION SELECT patient_id FROM ({also})" if also else ""
    try:
        conn.execute(f"CREATE OR REPLACE TEMP TABLE touched AS SELECT patient_id FROM touch_ids{union}")
    finally:
        conn.unregister("touch_ids")
    return conn.execute("SELECT count(*) FROM touched").fetchall()[0][0]


def _park(conn, patient_id: str, error: str, now: datetime) -> None:
    """Take the patient off the queue with the error, for `clinicflow status`; a new event re-queues them."""
    log.error(
        "the follow-up plan of patient %s cannot be computed (%s); parked, see `clinicflow status`", patient_id, error
    )
    with transaction(conn):
        conn.execute("DELETE FROM care_plan_queue WHERE patient_id = ?", [patient_id])
        attempts = conn.execute("SELECT max(attempts) FROM care_plan_parked WHERE patient_id = ?", [patient_id])
        attempts = (attempts.fetchall()[0][0] or 0) + 1
        conn.execute("DELETE FROM care_plan_parked WHERE patient_id = ?", [patient_id])
        conn.execute("INSERT INTO care_plan_parked VALUES (?, ?, ?, ?)", [patient_id, error, now, attempts])


TASK_COLUMNS = (
    "task_id",
    "patient_id",
    "clinic_id",
    "kind",
    "audience",
    "session_id",
    "source_event_id",
    "due_at",
    "send_after",
    "channel",
    "status",
    "completed_at",
    "completed_by",
)


def write_tasks(conn, tasks: list[tuple[str, Task]], now: datetime) -> None:
    """Write the planned tasks of the patients in `touched`; plan_touched's copy `current_tasks`
    of their stored tasks must be there."""
    if not tasks:
        return
    plan = [t for _, t in tasks]
    data = {c: [getattr(t, c) for t in plan] for c in TASK_COLUMNS if c != "patient_id"}
    data["patient_id"] = [p for p, _ in tasks]
    table = pa.table({c: data[c] for c in TASK_COLUMNS})
    conn.register("planned", table)
    try:
        _upsert(conn, now)
    finally:
        conn.unregister("planned")


_DIFFERS = """c.status IS DISTINCT FROM p.status OR c.send_after IS DISTINCT FROM p.send_after
              OR c.due_at IS DISTINCT FROM p.due_at OR c.channel IS DISTINCT FROM p.channel
              OR c.completed_by IS DISTINCT FROM p.completed_by"""


def _upsert(conn, now: datetime) -> None:
    """`planned` into followup_tasks, an upsert in two statements (DuckLake has no keys): the changed
    tasks, then the new ones. Which are which is decided against `current_tasks`, the copy read
    in the same transaction: a lake statement is sent only when it has rows to write. The UPDATE
    joins on patient_id too (a task belongs to one patient): DuckDB then skips the data files
    outside the batch's patients' range, where task_id alone read every file (870 to 1,040 ms
    against 180 to 200 at five million events, measured)."""
    conn.execute(
        f"""CREATE OR REPLACE TEMP TABLE task_changes AS
            SELECT p.task_id, c.task_id IS NULL AS is_new FROM planned p LEFT JOIN current_tasks c USING (task_id)
            WHERE c.task_id IS NULL OR {_DIFFERS}"""
    )
    try:
        changed, new = conn.execute(
            "SELECT count(*) FILTER (NOT is_new), count(*) FILTER (is_new) FROM task_changes"
        ).fetchall()[0]
        if changed:
            conn.execute(
                """UPDATE followup_tasks f SET
                     source_event_id = p.source_event_id, due_at = p.due_at, send_after = p.send_after,
                     channel = p.channel, status = p.status, completed_at = p.completed_at,
                     completed_by = p.completed_by, updated_at = ?::TIMESTAMPTZ
                   FROM planned p
                   WHERE f.patient_id = p.patient_id AND f.task_id = p.task_id
                     AND p.task_id IN (SELECT task_id FROM task_changes WHERE NOT is_new)""",
                [now],
            )
        if new:
            conn.execute(
                f"""INSERT INTO followup_tasks ({", ".join(TASK_COLUMNS)}, updated_at)
                    SELECT *, ?::TIMESTAMPTZ FROM planned p
                    WHERE p.task_id IN (SELECT task_id FROM task_changes WHERE is_new)""",
                [now],
            )
    finally:
        conn.execute("DROP TABLE IF EXISTS task_changes")
