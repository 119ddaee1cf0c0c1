"""The outbox within a landing: DLQ copies and alerts staged apart, written as one insert."""

from __future__ import annotations

import json
from datetime import datetime, timezone

from schemas.messages import Message
from schemas.validate import Clock
from stages.ingest import landing_config
from tests.factories import event
from warehouse import outbox
from warehouse.db import open_warehouse
from warehouse.landing import land_batch

CLOCK = Clock(datetime(2027, 1, 1, tzinfo=timezone.utc))
N = 30


def _outbox_files(conn) -> int:
    sql = "SELECT file_count FROM ducklake_table_info('lake') WHERE table_name = 'outbox'"
    return conn.execute(sql).fetchall()[0][0]


def test_a_landing_stages_its_dlq_copies_and_alerts_as_one_outbox_insert(settings):
    conn = open_warehouse(settings)
    try:
        cfg = landing_config(settings, group_id="g", families=False)
        # More rows of each kind than DuckLake inlines in its catalog: each insert would be a file.
        urgent = [json.dumps(event("checkin.completed", phq9_items=[0] * 8 + [2])).encode() for _ in range(N)]
        messages = [Message("in", 0, i, None, v) for i, v in enumerate(urgent + [b"{not json"] * N)]
        before = _outbox_files(conn)
        land_batch(conn, messages, CLOCK, cfg)
        kinds = dict(conn.execute("SELECT kind, count(*) FROM outbox GROUP BY kind").fetchall())
        assert kinds == {"alert": N, "dlq": N}, kinds
        assert _outbox_files(conn) == before + 1, "one insert, one data file, for both kinds"
        assert not conn.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE table_name = ?", [outbox.STAGED]
        ).fetchall()[0][0], "the staging table goes with the landing"
        land_batch(conn, messages, CLOCK, cfg)  # read again after a crash: nothing staged twice
        assert conn.execute("SELECT count(*) FROM outbox").fetchall()[0][0] == 2 * N
    finally:
        conn.close()


def test_outside_a_landing_stage_writes_straight_to_the_outbox(settings):
    conn = open_warehouse(settings)
    try:
        row = "SELECT 'm1' AS message_id, 'alert', 't', NULL::BLOB, 'v'::BLOB, '[]', now(), NULL::TIMESTAMPTZ"
        outbox.stage(conn, row)
        outbox.stage(conn, row)  # the same id again: kept once
        assert conn.execute("SELECT count(*) FROM outbox").fetchall()[0][0] == 1
    finally:
        conn.close()
