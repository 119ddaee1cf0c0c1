"""Quarantine replay: a message rejected for clock skew lands when replayed at a later clock, exactly once."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from flows.replay import replay_flow
from stages.ingest import run_load
from stages.replay import run_replay
from tests.factories import event, raw
from warehouse.db import open_warehouse
from warehouse.reconcile import reconciliation

T = datetime(2026, 3, 1, 12, tzinfo=timezone.utc)


def test_skewed_event_lands_when_replayed_later_exactly_once(settings, tmp_path):
    ahead = event("checkin.completed", at=T + timedelta(hours=2))  # 2 h ahead of the clock at load
    broken = b'{"still": "broken"'
    f = tmp_path / "h.jsonl"
    f.write_bytes(raw(ahead) + b"\n" + broken + b"\n")
    r = run_load(settings, f, T)
    assert r.landed == 0 and dict(r.quarantined) == {"schema": 1, "malformed_json": 1}

    too_early = run_replay(settings, T + timedelta(minutes=30))  # still ahead: stays, new errors
    assert (too_early["landed"], too_early["still_failing"]) == (0, 2)
    first = run_replay(settings, T + timedelta(hours=3))
    again = run_replay(settings, T + timedelta(hours=4))
    assert (first["landed"], first["still_failing"]) == (1, 1)
    assert (again["examined"], again["landed"]) == (1, 0)

    conn = open_warehouse(settings)
    try:
        assert (
            conn.execute("SELECT count(*) FROM raw_events WHERE event_id = ?", [ahead["event_id"]]).fetchall()[0][0]
            == 1
        )
        assert conn.execute("SELECT source_topic FROM raw_events").fetchall() == [("replay:file:h.jsonl",)]
        rows = dict(conn.execute("SELECT error_kind, status FROM quarantine").fetchall())
        assert rows == {"schema": "replayed", "malformed_json": "open"}
        assert all(r["balanced"] for r in reconciliation(conn))
        errs = json.loads(conn.execute("SELECT errors FROM quarantine WHERE status = 'open'").fetchall()[0][0])
        assert errs and errs[0]["msg"]
    finally:
        conn.close()


@pytest.mark.prefect
def test_replay_flow_runs_under_prefect(prefect_harness, settings, tmp_path):
    f = tmp_path / "h.jsonl"
    f.write_bytes(raw(event("consent.updated", at=T + timedelta(hours=1))) + b"\n")
    run_load(settings, f, T)
    assert replay_flow(T + timedelta(hours=2), settings)["landed"] == 1
