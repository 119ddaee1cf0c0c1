"""Landing against a real DuckDB file, no broker."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from schemas.messages import Message
from schemas.validate import Clock
from tests.factories import ALL_TYPES, NOW, event, racemic_session, raw
from warehouse.db import connect, migrate
from warehouse.exceptions import WarehouseError
from warehouse.landing import LandingConfig, land_batch, stored_offsets
from warehouse.quality import check_batch
from warehouse.reconcile import reconciliation

CLOCK = Clock(NOW)
CFG = LandingConfig(group_id="g", dlq_topic="dlq", families={"in": "intake", "se": "sessions", "fu": "followups"})
INBOUND = ALL_TYPES[:12]
TOPIC = {
    "patient.registered": "in",
    "consent.updated": "in",
    "intake.assessed": "in",
    "consult.completed": "in",
    "rems.enrolled": "in",
    "session.scheduled": "se",
    "session.completed": "se",
    "session.cancelled": "se",
    "rems.form_submitted": "se",
    "checkin.completed": "fu",
    "adverse_event.reported": "fu",
    "outreach.status": "fu",
}


@pytest.fixture()
def conn(tmp_path):
    c = connect(tmp_path / "w.duckdb")
    yield c
    c.close()


def msgs(events, start=0, topic=None):
    return [
        Message(topic or TOPIC[e["event_type"]], 0, start + i, e["patient_id"].encode(), raw(e), (("trace", b"1"),))
        for i, e in enumerate(events)
    ]


def count(conn, table):
    return conn.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]


TABLES = {
    "patient.registered": "patients_registered",
    "consent.updated": "consent_updates",
    "intake.assessed": "intake_assessments",
    "consult.completed": "consults",
    "rems.enrolled": "rems_enrollments",
    "session.scheduled": "sessions_scheduled",
    "session.completed": "sessions_completed",
    "session.cancelled": "sessions_cancelled",
    "rems.form_submitted": "rems_forms",
    "checkin.completed": "checkins",
    "adverse_event.reported": "adverse_event_reports",
    "outreach.status": "outreach_statuses",
}


def test_every_type_lands_once_in_its_typed_table(conn):
    events = [event(t) for t in INBOUND]
    r = land_batch(conn, msgs(events), CLOCK, CFG)
    assert (r.read, r.landed, r.duplicates, r.n_quarantined) == (12, 12, 0, 0)
    for e in events:
        table = TABLES[e["event_type"]]
        assert conn.execute(f"SELECT count(*) FROM {table} WHERE event_id = ?", [e["event_id"]]).fetchall()[0][0] == 1
    assert count(conn, "raw_events") == 12


def test_typed_columns_carry_the_values(conn):
    e = event("session.completed", body=racemic_session(), spo2_min=88)
    land_batch(conn, msgs([e]), CLOCK, CFG)
    row = conn.execute(
        "SELECT modality, weight_kg, dose_mg_per_kg, infusion_minutes, dose_mg, spo2_min, "
        "bp_pre_systolic, epoch(ended_at) - epoch(started_at) FROM sessions_completed"
    ).fetchall()[0]
    assert row == ("racemic_iv", 80.5, 0.5, 40, None, 88, 128, 130 * 60)
    c = event("checkin.completed", phq9_items=[3, 3, 3, 3, 3, 3, 3, 3, 2])
    land_batch(conn, msgs([c], start=1), CLOCK, CFG)
    assert conn.execute("SELECT phq9_total, phq9_item9 FROM checkins").fetchall()[0] == (26, 2)


def test_offset_timestamps_are_normalised(conn):
    e = event("consent.updated")
    e["occurred_at"] = "2026-02-28T07:00:00.123456789-05:00"
    land_batch(conn, msgs([e]), CLOCK, CFG)
    got = conn.execute("SELECT occurred_at FROM raw_events").fetchall()[0][0]
    assert got.isoformat() == "2026-02-28T12:00:00.123456+00:00"


def test_the_same_event_twice_lands_once_and_is_counted(conn):
    e = event("checkin.completed")
    r1 = land_batch(conn, msgs([e, e]), CLOCK, CFG)
    r2 = land_batch(conn, msgs([e], start=5), CLOCK, CFG)
    assert (r1.landed, r1.duplicates, r2.landed, r2.duplicates) == (1, 1, 0, 1)
    assert count(conn, "checkins") == 1 and count(conn, "raw_events") == 1


def test_rejections_are_quarantined_with_bytes_and_an_outbox_dlq_copy(conn):
    bad = [b"{oops", raw(event("session.completed", dose_mg=83)), raw(event("consent.updated"))]
    messages = [Message("se", 2, 10 + i, b"P0001", b_, (("trace", b"x"),)) for i, b_ in enumerate(bad)]
    r = land_batch(conn, messages, CLOCK, CFG)
    assert dict(r.quarantined) == {"malformed_json": 1, "schema": 1, "wrong_topic": 1}
    rows = conn.execute('SELECT "offset", raw, "key", error_kind, errors FROM quarantine ORDER BY "offset"').fetchall()
    assert [bytes(x[1]) for x in rows] == bad and all(bytes(x[2]) == b"P0001" for x in rows)
    assert json.loads(rows[1][4])[0]["loc"] == "payload.dose_mg"
    out = conn.execute("SELECT message_id, topic, value, headers FROM outbox ORDER BY message_id").fetchall()
    assert [o[0] for o in out] == ["dlq:se:2:10", "dlq:se:2:11", "dlq:se:2:12"]
    assert all(o[1] == "dlq" for o in out) and [bytes(o[2]) for o in out] == bad
    headers = dict(json.loads(out[0][3]))
    assert {
        "trace",
        "clinicflow.source.topic",
        "clinicflow.source.partition",
        "clinicflow.source.offset",
        "clinicflow.error.kind",
        "clinicflow.errors",
    } <= set(headers)


def test_replayed_rejection_is_not_quarantined_twice(conn):
    m = [Message("in", 0, 3, None, b"nope")]
    land_batch(conn, m, CLOCK, CFG)
    land_batch(conn, m, CLOCK, CFG)
    assert count(conn, "quarantine") == 1 and count(conn, "outbox") == 1


def test_offsets_and_ledger_are_committed_with_the_batch(conn):
    events = [event("checkin.completed") for _ in range(5)]
    land_batch(conn, msgs(events, start=100), CLOCK, CFG)
    assert stored_offsets(conn, "g") == {("fu", 0): 105}
    [rec] = reconciliation(conn)
    assert rec["consumed"] == 5 and rec["landed"] == 5 and rec["balanced"]


def test_a_failing_batch_leaves_nothing_behind(conn):
    def broken_planner(c, batch_id, clock):
        c.execute("SELECT * FROM no_such_table")

    with pytest.raises(WarehouseError, match="rolled back"):
        land_batch(conn, msgs([event("checkin.completed")]), CLOCK, replace(CFG, planner=broken_planner))
    for table in ("raw_events", "checkins", "consumer_offsets", "batches", "partition_ledger", "outbox"):
        assert count(conn, table) == 0, table


def test_gx_failure_is_recorded_and_valid_events_still_land(conn):
    def strict_quality(df, clock):
        return check_batch(df, Clock(NOW.replace(year=2020)))  # everything looks "in the future"

    r = land_batch(conn, msgs([event("checkin.completed")]), CLOCK, replace(CFG, quality=strict_quality))
    assert r.gx_success is False and r.landed == 1
    ok, result = conn.execute("SELECT gx_success, gx_result FROM batches").fetchall()[0]
    assert ok is False and "occurred_at_epoch_s" in result
    assert count(conn, "checkins") == 1


def test_gx_passes_on_a_clean_batch(conn):
    r = land_batch(conn, msgs([event(t) for t in INBOUND]), CLOCK, replace(CFG, quality=check_batch))
    assert r.gx_success is True


def test_migrations_are_applied_once(tmp_path):
    c = connect(tmp_path / "m.duckdb")
    assert migrate(c) == []
    assert [n for (n,) in c.execute("SELECT name FROM schema_migrations ORDER BY number").fetchall()][:1] == [
        "001_lake.sql"
    ]
