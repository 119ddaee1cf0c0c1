"""The outbox: what the pipeline must publish, written in the transaction that decided it.

This module owns the table. Producers of outbound messages (landing's DLQ copies,
the planner's alerts, outreach requests) stage rows through `stage`; publishing reads
what is unsent through `publish`, which takes the sending function from the caller,
so the warehouse never imports a Kafka client.
"""

from __future__ import annotations

import base64
import json
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Protocol

import duckdb
import pyarrow as pa

from warehouse.db import retry_busy, transaction

COLUMNS = 'message_id, kind, topic, "key", value, headers, created_at, sent_at'
# A provider channel (topic `provider:<name>`) delivers its own rows, never Kafka.
PROVIDER_PREFIX = "provider:"


@dataclass(frozen=True)
class Record:
    """One unsent outbox row, ready to send."""

    message_id: str
    kind: str  # dlq | alert | outreach
    topic: str
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]] = field(default_factory=list)


class Outcome(Protocol):
    """What a sender reports: ids acknowledged, ids refused for good with the error, a transient failure."""

    sent: list[str]
    parked: list[tuple[str, str]]
    transient: Exception | None
    positions: dict[tuple[str, int], int]  # next offset per (topic, partition) after what was sent


def headers_json(headers: Sequence[tuple[str, bytes | None]]) -> str:
    """Kafka headers as stored: values are bytes, so base64."""
    return json.dumps([[k, base64.b64encode(v or b"").decode()] for k, v in headers])


def _headers(text: str) -> list[tuple[str, bytes]]:
    return [(k, base64.b64decode(v)) for k, v in json.loads(text)]


# Connections inside `batched`: their staged rows wait in the temp table STAGED.
_BATCHED: weakref.WeakSet = weakref.WeakSet()
STAGED = "outbox_staged"
_INSERT = f"""INSERT INTO outbox ({COLUMNS}) SELECT * FROM ({{rows}}) s
              WHERE NOT EXISTS (SELECT 1 FROM outbox o WHERE o.message_id = s.message_id)
              QUALIFY row_number() OVER (PARTITION BY s.message_id) = 1"""


def stage(conn: duckdb.DuckDBPyConnection, select_sql: str, params: Sequence = ()) -> None:
    """Insert rows selected as (message_id, kind, topic, key, value, headers, created_at, sent_at); ids dedupe."""
    if conn in _BATCHED:
        conn.execute(f"INSERT INTO {STAGED} SELECT * FROM ({select_sql})", list(params))
    else:
        conn.execute(_INSERT.format(rows=select_sql), list(params))


@contextmanager
def batched(conn: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """Inside a transaction: what is staged meanwhile goes into the outbox as one insert at the end.

    A landing stages its DLQ copies and its alerts apart; each insert into a lake table costs its
    catalog lookups, the outbox's dedupe scan and a data file in the commit (about 10 ms at 1,500
    events). Nothing reaches the outbox if the body raises (the transaction rolls back anyway).
    """
    conn.execute(
        f"""CREATE OR REPLACE TEMP TABLE {STAGED} (message_id VARCHAR, kind VARCHAR, topic VARCHAR, "key" BLOB,
            value BLOB, headers JSON, created_at TIMESTAMPTZ, sent_at TIMESTAMPTZ)"""
    )
    _BATCHED.add(conn)
    try:
        yield
        if conn.execute(f"SELECT count(*) FROM {STAGED}").fetchall()[0][0]:
            conn.execute(_INSERT.format(rows=f"SELECT * FROM {STAGED}"))
    finally:
        _BATCHED.discard(conn)
        conn.execute(f"DROP TABLE IF EXISTS {STAGED}")


def stage_rows(
    conn: duckdb.DuckDBPyConnection,
    kind: str,
    topic: str,
    rows: Sequence[tuple[str, bytes | None, bytes]],
    created_at,
    spread: bool = False,
) -> None:
    """Stage (message_id, key, value) rows of one kind for one topic. With `spread`, created_at grows by
    a microsecond per row, so they are sent in the order given (urgent alerts first)."""
    if not rows:
        return
    conn.register(
        "staged_rows",
        pa.table(
            {
                "message_id": pa.array([r[0] for r in rows], pa.string()),
                "key": pa.array([r[1] for r in rows], pa.binary()),
                "value": pa.array([r[2] for r in rows], pa.binary()),
                "pos": pa.array(range(len(rows)), pa.int64()),
            }
        ),
    )
    offset = "to_microseconds(pos)" if spread else "INTERVAL 0 SECOND"
    try:
        stage(
            conn,
            f"""SELECT message_id, ?, ?, "key", value, '[]', ?::TIMESTAMPTZ + {offset}, NULL FROM staged_rows""",
            [kind, topic, created_at],
        )
    finally:
        conn.unregister("staged_rows")


def unsent(conn: duckdb.DuckDBPyConnection, limit: int, kinds: Sequence[str] | None = None) -> list[Record]:
    """Unsent, unparked rows for Kafka, oldest first (urgent alerts of a batch come first by created_at)."""
    kind_filter = f"AND kind IN ({', '.join('?' * len(kinds))})" if kinds else ""
    rows = conn.execute(
        f"""SELECT message_id, kind, topic, "key", value, headers FROM outbox
            WHERE sent_at IS NULL AND parked_at IS NULL AND NOT starts_with(topic, ?) {kind_filter}
            ORDER BY created_at, message_id LIMIT ?""",
        [PROVIDER_PREFIX, *(kinds or ()), limit],
    ).fetchall()
    return [Record(mid, kind, topic, key, value, _headers(h)) for mid, kind, topic, key, value, h in rows]


def mark(
    conn: duckdb.DuckDBPyConnection,
    sent: Sequence[str],
    parked: Sequence[tuple[str, str]],
    positions: dict[tuple[str, int], int] | None = None,
) -> None:
    """Sent rows get sent_at; rows refused for good get parked_at and the error (shown by status);
    `positions` are appended for a successor's scan.

    One transaction: on a lake, every statement outside one (a register too) is a catalog
    transaction of its own.
    """
    retry_busy(lambda: _mark(conn, sent, parked, positions or {}))  # publishing beside writers conflicts now and then


def _mark(conn, sent: Sequence[str], parked: Sequence[tuple[str, str]], positions: dict) -> None:
    with transaction(conn):
        if sent:
            conn.register("sent_ids", pa.table({"message_id": pa.array(list(sent), pa.string())}))
            try:
                conn.execute(
                    """UPDATE outbox SET sent_at = now()
                       WHERE sent_at IS NULL AND message_id IN (SELECT message_id FROM sent_ids)"""
                )
            finally:
                conn.unregister("sent_ids")
        for message_id, error in parked:
            conn.execute(
                "UPDATE outbox SET parked_at = now(), park_error = ? WHERE message_id = ?", [error, message_id]
            )
        if positions:  # one statement: on a lake each pays the catalog's lookups, executemany one per row
            rows = ", ".join(["(?, ?, ?, now())"] * len(positions))
            conn.execute(
                f'INSERT INTO outbox_positions (topic, "partition", next_offset, written_at) VALUES {rows}',
                [v for (t, p), o in positions.items() for v in (t, p, o)],
            )


def positions(conn: duckdb.DuckDBPyConnection) -> dict[tuple[str, int], int]:
    """The furthest position recorded per (topic, partition)."""
    rows = conn.execute('SELECT topic, "partition", max(next_offset) FROM outbox_positions GROUP BY ALL').fetchall()
    return {(t, p): o for t, p, o in rows}


def publish(
    conn: duckdb.DuckDBPyConnection,
    send: Callable[[list[Record]], Outcome],
    limit: int = 50_000,
    kinds: Sequence[str] | None = None,
) -> int:
    """Send what is unsent and record the outcome; a transient failure is raised after the marks.

    A publisher that stops between the send and the mark leaves rows on Kafka that the lake
    calls unsent: its successor finds them (`reconcile`) before it sends. Returns how many were sent.
    """
    records = unsent(conn, limit, kinds)
    if not records:
        return 0
    outcome = send(records)
    mark(conn, outcome.sent, outcome.parked, outcome.positions)
    if outcome.transient is not None:
        raise outcome.transient
    return len(outcome.sent)


def reconcile(
    conn: duckdb.DuckDBPyConnection,
    find: Callable[[list[Record], dict[tuple[str, int], int]], Outcome],
    limit: int = 50_000,
) -> list[str]:
    """Mark sent the unsent rows that are on Kafka already: `find` reads their topics from the
    recorded positions. Run by a publisher that has just fenced its predecessors (so the topics
    hold all they will ever commit), before its first round. Returns the ids it marked."""
    records = unsent(conn, limit)
    if not records:
        return []
    outcome = find(records, positions(conn))
    mark(conn, outcome.sent, [], outcome.positions)
    return outcome.sent
