"""Validate a batch and land it in one DuckDB transaction.

The transaction holds the raw events, their typed rows, quarantine rows for
rejections, an outbox row per message to publish, the consumer offsets and
the batch's ledger. Either all of it is there or none of it: a crash at any
point leaves the warehouse at the previous batch, and the consumer resumes
from the offsets stored with it.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone

import duckdb
import pyarrow as pa

from schemas.events import Envelope
from schemas.messages import Message
from schemas.public import public_errors_json, public_event_id, public_event_type
from schemas.validate import Clock, Rejection, validate_event
from warehouse import care_history, outbox
from warehouse.db import fix_for, retry_busy, transaction
from warehouse.dedupe import known_ids
from warehouse.exceptions import WarehouseError
from warehouse.outbox import headers_json
from warehouse.typed import SPEC, column_names, typed_select

# A hook run inside the batch transaction after the fresh events are in (the care planner).
Planner = Callable[[duckdb.DuckDBPyConnection, str, Clock], None]
QUARANTINE_COLUMNS = (
    'topic, "partition", "offset", received_at, error_kind, errors, event_id, event_type, "key", raw, '
    "headers, batch_id, public_errors, public_event_id, public_event_type"
)


@dataclass(frozen=True)
class LandingConfig:
    """What landing needs to know about where messages came from and go to."""

    group_id: str
    dlq_topic: str
    families: dict[str, str] = field(default_factory=dict)  # topic -> family, for the wrong_topic check
    max_bytes: int = 1_048_576
    pseudonym_key: bytes | None = None  # HMAC key for analysts' patient_key; None: keys are not computed
    planner: Planner | None = None  # the care plan, run inside the batch transaction
    quality: Callable | None = None  # the batch's Great Expectations suite
    # Inside the transaction, first: raises when the batch's partitions went to another worker (leases.py).
    fence: Callable[[duckdb.DuckDBPyConnection, Sequence[Message], str], None] | None = None
    worker: str | None = None  # the ingest worker landing (batches.worker_id); None for load and replay


@dataclass
class BatchResult:
    """What one batch did; summed into the flow run's artifact."""

    batch_id: str
    read: int = 0
    landed: int = 0
    duplicates: int = 0
    quarantined: Counter = field(default_factory=Counter)
    gx_success: bool | None = None

    @property
    def n_quarantined(self) -> int:
        return sum(self.quarantined.values())


@dataclass
class _Validated:
    events: list[tuple[int, Message, Envelope]] = field(default_factory=list)
    rejects: list[tuple[int, Message, Rejection]] = field(default_factory=list)


def validate_batch(
    messages: Sequence[Message], clock: Clock, cfg: LandingConfig, unprocessable: dict[int, str] | None = None
) -> _Validated:
    """Every message becomes an event or a rejection; nothing is dropped.

    `unprocessable` maps positions found to break landing (see land_isolating) to the error's
    one-line description: they become rejections of kind `unprocessable`.
    """
    out = _Validated()
    for pos, msg in enumerate(messages):
        result = validate_event(msg.value, clock, cfg.families.get(msg.topic), cfg.max_bytes)
        if unprocessable and pos in unprocessable and not isinstance(result, Rejection):
            result = Rejection(
                "unprocessable",
                [{"loc": "", "msg": unprocessable[pos]}],
                str(result.event_id),
                result.event_type,
                msg.value,
                ("unprocessable",),
            )
        if isinstance(result, Rejection):
            out.rejects.append((pos, msg, result))
        else:
            out.events.append((pos, msg, result))
    return out


ACTION_TYPES = ("alert.acknowledged", "alert.resolved")


def reject_foreign_actions(conn: duckdb.DuckDBPyConnection, v: _Validated) -> None:
    """An action whose patient_id is not its alert's patient is `schema` at patient_id (docs/ALERTS.md).

    Only alerts already known can be checked; an action waiting for its alert is applied when
    an alert of the same patient appears, and never to another patient's.
    """
    acts = [(pos, msg, e) for pos, msg, e in v.events if e.event_type in ACTION_TYPES]
    if not acts:
        return
    ids = sorted({str(e.payload.alert_id) for _, _, e in acts})
    owner = dict(
        conn.execute(
            "SELECT alert_id, patient_id FROM clinical_alerts WHERE alert_id IN (SELECT unnest(?::VARCHAR[]))", [ids]
        ).fetchall()
    )
    foreign = {pos for pos, _, e in acts if owner.get(str(e.payload.alert_id)) not in (None, e.patient_id)}
    if not foreign:
        return
    for pos, msg, e in acts:
        if pos in foreign:
            error = {
                "loc": "patient_id",
                "msg": f"alert {e.payload.alert_id} belongs to another patient; an action must carry its "
                "alert's patient_id",
            }
            v.rejects.append(
                (
                    pos,
                    msg,
                    Rejection("schema", [error], str(e.event_id), e.event_type, msg.value, ("alert_patient_mismatch",)),
                )
            )
    v.events = [x for x in v.events if x[0] not in foreign]


def _events_table(v: _Validated, batch_id: str, received: datetime) -> pa.Table:
    ev = v.events
    return pa.table(
        {
            "pos": pa.array([p for p, _, _ in ev], pa.int32()),
            "event_id": pa.array([str(e.event_id) for _, _, e in ev], pa.string()),
            "event_type": pa.array([e.event_type for _, _, e in ev], pa.string()),
            "patient_id": pa.array([e.patient_id for _, _, e in ev], pa.string()),
            "clinic_id": pa.array([e.clinic_id for _, _, e in ev], pa.string()),
            "occurred_at": pa.array([e.occurred_at for _, _, e in ev], pa.timestamp("us", tz="UTC")),
            "source_topic": pa.array([m.topic for _, m, _ in ev], pa.string()),
            "source_partition": pa.array([m.partition for _, m, _ in ev], pa.int32()),
            "source_offset": pa.array([m.offset for _, m, _ in ev], pa.int64()),
            "received_at": pa.array([received] * len(ev), pa.timestamp("us", tz="UTC")),
            "batch_id": pa.array([batch_id] * len(ev), pa.string()),
            "event": pa.array([e.model_dump_json() for _, _, e in ev], pa.string()),
            "raw": pa.array([m.value for _, m, _ in ev], pa.binary()),
        }
    )


def dlq_headers(msg: Message, rej: Rejection) -> list[tuple[str, bytes]]:
    """The original headers plus the contract's error headers."""
    ours = [
        ("clinicflow.source.topic", msg.topic.encode()),
        ("clinicflow.source.partition", str(msg.partition).encode()),
        ("clinicflow.source.offset", str(msg.offset).encode()),
        ("clinicflow.error.kind", rej.error_kind.encode()),
        ("clinicflow.errors", rej.errors_json().encode()),
    ]
    return [*msg.headers, *ours]


def _rejects_table(v: _Validated, batch_id: str, received: datetime, dlq_topic: str) -> pa.Table:
    rj = v.rejects
    return pa.table(
        {
            "topic": pa.array([m.topic for _, m, _ in rj], pa.string()),
            "partition": pa.array([m.partition for _, m, _ in rj], pa.int32()),
            "offset": pa.array([m.offset for _, m, _ in rj], pa.int64()),
            "received_at": pa.array([received] * len(rj), pa.timestamp("us", tz="UTC")),
            "error_kind": pa.array([r.error_kind for _, _, r in rj], pa.string()),
            "errors": pa.array([r.errors_json() for _, _, r in rj], pa.string()),
            "event_id": pa.array([r.event_id for _, _, r in rj], pa.string()),
            "event_type": pa.array([r.event_type for _, _, r in rj], pa.string()),
            "key": pa.array([m.key for _, m, _ in rj], pa.binary()),
            "raw": pa.array([m.value for _, m, _ in rj], pa.binary()),
            "headers": pa.array([headers_json(m.headers) for _, m, _ in rj], pa.string()),
            "public_errors": pa.array(
                [public_errors_json(r.errors, r.codes, r.error_kind) for _, _, r in rj], pa.string()
            ),
            "public_event_id": pa.array([public_event_id(r.event_id) for _, _, r in rj], pa.string()),
            "public_event_type": pa.array([public_event_type(r.event_type) for _, _, r in rj], pa.string()),
            "batch_id": pa.array([batch_id] * len(rj), pa.string()),
            "message_id": pa.array([f"dlq:{m.topic}:{m.partition}:{m.offset}" for _, m, _ in rj], pa.string()),
            "dlq_topic": pa.array([dlq_topic] * len(rj), pa.string()),
            "dlq_headers": pa.array([headers_json(dlq_headers(m, r)) for _, m, r in rj], pa.string()),
        }
    )


class _DryRun(Exception):
    """Raised inside a trial landing so that its transaction rolls back."""

    def __init__(self, result: BatchResult):
        super().__init__("trial landing")
        self.result = result


def _land_once(conn, messages, v, batch_id, clock, cfg, started, commit: bool) -> BatchResult:
    with transaction(conn):
        # Registered inside the transaction: outside it, each (un)register is a lake transaction of
        # its own and pays the catalog's lookups (13 ms against 0.5).
        conn.register("batch_events", _events_table(v, batch_id, started))
        conn.register("batch_rejects", _rejects_table(v, batch_id, started, cfg.dlq_topic))
        try:
            with outbox.batched(conn):
                result = _write(conn, messages, v, batch_id, clock, cfg, started)
        finally:
            conn.unregister("batch_events")
            conn.unregister("batch_rejects")
        if not commit:
            raise _DryRun(result)
    return result


def land_batch(
    conn: duckdb.DuckDBPyConnection,
    messages: Sequence[Message],
    clock: Clock,
    cfg: LandingConfig,
    *,
    unprocessable: dict[int, str] | None = None,
    commit: bool = True,
) -> BatchResult:
    """Validate messages and land them, with offsets and outbox, in one transaction.

    The care planner and the batch suite are the config's. With commit=False the batch is
    landed and rolled back: a trial that tells whether it can land.
    """
    started = datetime.now(timezone.utc)
    batch_id = str(uuid.uuid4())
    v = validate_batch(messages, clock, cfg, unprocessable)
    reject_foreign_actions(conn, v)
    try:
        result = retry_busy(lambda: _land_once(conn, messages, v, batch_id, clock, cfg, started, commit))
    except _DryRun as trial:
        return trial.result
    except duckdb.Error as e:
        raise WarehouseError(
            f"landing batch {batch_id} ({len(messages)} messages, {_span(messages)}) failed and was rolled back: "
            f"{e}; nothing of it was kept and its offsets were not advanced; {fix_for(str(e))}"
        ) from e
    return result


_FRESH = """
CREATE OR REPLACE TEMP TABLE fresh AS
SELECT b.* FROM batch_events b ANTI JOIN batch_known USING (event_id)
QUALIFY row_number() OVER (PARTITION BY b.event_id ORDER BY b.pos) = 1
"""


def _select_fresh(conn) -> None:
    """The batch's events not in the lake yet, first occurrence of each id (warehouse/dedupe.py)."""
    conn.register("batch_known", known_ids(conn, "batch_events"))
    try:
        conn.execute(_FRESH)
    finally:
        conn.unregister("batch_known")


def _span(messages: Sequence[Message]) -> str:
    """Where a batch came from, for error messages: topic/partition and the offsets read."""
    parts: dict[tuple[str, int], list[int]] = {}
    for m in messages:
        parts.setdefault((m.topic, m.partition), []).append(m.offset)
    return ", ".join(f"{t}/{p}@{min(o)}-{max(o)}" for (t, p), o in sorted(parts.items())) or "no messages"


RAW_COLUMNS = (
    "event_id, event_type, patient_id, clinic_id, occurred_at, source_topic, source_partition, source_offset, "
    "received_at, batch_id, event, raw"
)


def _write(conn, messages, v, batch_id, clock, cfg, started) -> BatchResult:
    if cfg.fence is not None:
        cfg.fence(conn, messages, batch_id)
    _select_fresh(conn)
    types = {t for (t,) in conn.execute("SELECT DISTINCT event_type FROM fresh").fetchall()}
    # Every statement that reads or writes a lake table costs its catalog lookups: none for nothing.
    if types:
        conn.execute(f"INSERT INTO raw_events ({RAW_COLUMNS}) SELECT {RAW_COLUMNS} FROM fresh")
        _store_typed(conn, types)
        if cfg.pseudonym_key is not None:
            _store_patient_keys(conn, cfg.pseudonym_key)
    if v.rejects:
        _store_rejects(conn)
    if cfg.planner is not None:
        cfg.planner(conn, batch_id, clock)
    fresh_pos = {p for (p,) in conn.execute("SELECT pos FROM fresh").fetchall()}
    result = _account(messages, v, fresh_pos, batch_id)
    if cfg.quality is not None:
        result.gx_success, gx_json = cfg.quality(conn.execute("SELECT * EXCLUDE (raw, event) FROM fresh").df(), clock)
    else:
        gx_json = None
    _store_offsets(conn, cfg.group_id, messages, started, batch_id)
    _store_ledger(conn, messages, v, fresh_pos, batch_id)
    # committed_at: the instant the batch's writes are done, its commit next. DuckDB's now() is
    # the transaction's start, which would date a batch before its care rules and writes.
    conn.execute(
        "INSERT INTO batches (batch_id, started_at, committed_at, clock, n_read, n_landed, n_duplicates, "
        "n_quarantined, gx_success, gx_result, worker_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            batch_id,
            started,
            datetime.now(timezone.utc),
            clock.now,
            result.read,
            result.landed,
            result.duplicates,
            result.n_quarantined,
            result.gx_success,
            gx_json,
            cfg.worker,
        ],
    )
    return result


def _store_typed(conn, types: set[str]) -> None:
    """The typed rows of the event types in the batch, then their care_history rows from them."""
    typed: dict[str, str] = {}
    for etype in sorted(types & SPEC.keys()):
        table = SPEC[etype].table
        conn.execute(f"CREATE OR REPLACE TEMP TABLE typed_{table} AS {typed_select(etype)}")
        conn.execute(f"INSERT INTO {table} ({column_names(etype)}) SELECT * FROM typed_{table}")
        typed[table] = f"typed_{table}"
    care_history.append(conn, "fresh", typed)
    for relation in typed.values():
        conn.execute(f"DROP TABLE {relation}")


def _store_rejects(conn) -> None:
    # One row per source position: a position re-read after a crash is there already.
    conn.execute(f"""INSERT INTO quarantine ({QUARANTINE_COLUMNS}, status) SELECT {QUARANTINE_COLUMNS}, 'open'
                     FROM batch_rejects b WHERE NOT EXISTS (SELECT 1 FROM quarantine q WHERE q.topic = b.topic
                     AND q."partition" = b."partition" AND q."offset" = b."offset")""")
    # Backfill files have no publisher to tell; their rejects stay in quarantine only.
    outbox.stage(
        conn,
        """SELECT message_id, 'dlq', dlq_topic, "key", raw, dlq_headers, received_at, NULL
           FROM batch_rejects WHERE topic NOT LIKE 'file:%'""",
    )


def patient_key(key: bytes, patient_id: str) -> str:
    """The analysts' pseudonym: not derivable from patient_id without the secret."""
    return hmac.new(key, patient_id.encode(), hashlib.sha256).hexdigest()


def _store_patient_keys(conn, key: bytes) -> None:
    # Keyed here for every patient of the batch (a microsecond each) so that one lake statement
    # both reads which are new and inserts them: a read and an insert would be two.
    pids = [p for (p,) in conn.execute("SELECT DISTINCT patient_id FROM fresh").fetchall()]
    conn.register("new_keys", pa.table({"patient_id": pids, "patient_key": [patient_key(key, p) for p in pids]}))
    try:
        conn.execute(
            "INSERT INTO patient_keys SELECT * FROM new_keys "
            "WHERE patient_id NOT IN (SELECT patient_id FROM patient_keys)"
        )
    finally:
        conn.unregister("new_keys")


def _account(messages, v: _Validated, fresh_pos: set[int], batch_id: str) -> BatchResult:
    result = BatchResult(batch_id, read=len(messages), landed=len(fresh_pos))
    result.duplicates = len(v.events) - len(fresh_pos)
    result.quarantined.update(r.error_kind for _, _, r in v.rejects)
    if result.landed + result.duplicates + result.n_quarantined != result.read:
        raise WarehouseError(f"batch {batch_id} does not balance; this is a bug, the batch is rolled back")
    return result


def _store_offsets(conn, group_id: str, messages: Sequence[Message], now: datetime, batch_id: str) -> None:
    nxt: dict[tuple[str, int], int] = {}
    for m in messages:
        nxt[(m.topic, m.partition)] = max(nxt.get((m.topic, m.partition), 0), m.offset + 1)
    if not nxt:
        return
    # Appended, never updated: the newest row per partition wins (stored_offsets).
    conn.executemany(
        "INSERT INTO consumer_offsets VALUES (?, ?, ?, ?, ?, ?)",
        [[group_id, t, p, o, now, batch_id] for (t, p), o in nxt.items()],
    )


def _store_ledger(conn, messages, v: _Validated, fresh_pos: set[int], batch_id: str) -> None:
    rows: dict[tuple[str, int], list[int]] = {}
    outcome = {p: ("landed" if p in fresh_pos else "dup") for p, _, _ in v.events}
    outcome.update({p: "quarantined" for p, _, _ in v.rejects})
    for pos, m in enumerate(messages):
        r = rows.setdefault((m.topic, m.partition), [m.offset, m.offset, 0, 0, 0, 0])
        r[0], r[1], r[2] = min(r[0], m.offset), max(r[1], m.offset), r[2] + 1
        r[3 + ("landed", "dup", "quarantined").index(outcome[pos])] += 1
    if not rows:
        return
    conn.executemany(
        "INSERT INTO partition_ledger VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [[batch_id, t, p, *r] for (t, p), r in rows.items()],
    )


def stored_offsets(conn: duckdb.DuckDBPyConnection, group_id: str) -> dict[tuple[str, int], int]:
    """{(topic, partition): next offset to read} as last committed with a batch."""
    rows = conn.execute(
        'SELECT topic, "partition", max(next_offset) FROM consumer_offsets WHERE group_id = ? GROUP BY ALL',
        [group_id],
    ).fetchall()
    return {(t, p): o for t, p, o in rows}
