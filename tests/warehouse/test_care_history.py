"""care_history: landing's rows equal those derived from the typed tables, for every event type."""

from __future__ import annotations

import pytest

from schemas.messages import Message
from schemas.validate import Clock
from tests.factories import ALL_TYPES, NOW, event, raw
from warehouse import care_history
from warehouse.db import connect, transaction
from warehouse.landing import LandingConfig, land_batch

CFG = LandingConfig(group_id="g", dlq_topic="dlq")
ORDER = "ORDER BY event_id"


@pytest.fixture()
def conn(tmp_path):
    c = connect(tmp_path / "w.duckdb")
    yield c
    c.close()


def land(conn, events):
    messages = [Message("in", 0, i, None, raw(e)) for i, e in enumerate(events)]
    return land_batch(conn, messages, Clock(NOW), CFG)


def rows(conn):
    return conn.execute(f"SELECT * FROM care_history {ORDER}").fetchall()


def test_every_landed_event_has_one_row_with_its_care_columns(conn):
    inbound = [t for t in ALL_TYPES if t not in ("outreach.requested", "clinical.alert")]
    r = land(conn, [event(t) for t in inbound])
    assert r.landed == len(inbound)
    assert conn.execute("SELECT count(*), count(DISTINCT event_id) FROM care_history").fetchall() == [
        (len(inbound), len(inbound))
    ]
    # The columns the rules read are there, not NULL for want of a projection.
    session = conn.execute(
        "SELECT session_id, modality, bp_pre_systolic, serious FROM care_history WHERE event_type = 'session.completed'"
    ).fetchall()[0]
    assert None not in session[:3] and session[3] in (True, False)
    registration = conn.execute(
        "SELECT timezone, sms FROM care_history WHERE event_type = 'patient.registered'"
    ).fetchall()[0]
    assert None not in registration


def test_landing_and_backfill_derive_the_same_rows(conn):
    land(conn, [event(t) for t in ALL_TYPES if t not in ("outreach.requested", "clinical.alert")])
    landed = rows(conn)
    with transaction(conn):
        care_history.backfill(conn)
    assert rows(conn) == landed


def test_a_lake_from_before_the_table_is_backfilled_when_opened(tmp_path):
    c = connect(tmp_path / "w.duckdb")
    land(c, [event("checkin.completed"), event("patient.registered")])
    expected = rows(c)
    # As the previous release left it: no care rows, migration 2 not applied.
    c.execute("DELETE FROM care_history")
    c.execute("DELETE FROM schema_migrations WHERE number = 2")
    c.execute("DROP TABLE care_history")
    c.close()
    c = connect(tmp_path / "w.duckdb")
    try:
        assert rows(c) == expected
    finally:
        c.close()


def test_the_table_and_its_projections_agree(conn):
    columns = [
        c
        for (c,) in conn.execute(
            "SELECT column_name FROM duckdb_columns() WHERE table_name = 'care_history' "
            "AND database_name = 'lake' ORDER BY column_index"
        ).fetchall()
    ]
    # Rows are inserted by column name: the same columns, in any order.
    assert sorted(columns) == sorted([*care_history.ENVELOPE, *care_history.CARE_COLUMNS])
    for table, projection in care_history.PROJECTIONS.items():
        assert set(projection) <= set(care_history.CARE_COLUMNS), table
