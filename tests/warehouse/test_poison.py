"""No message stops the pipeline: a batch that cannot land gives up its culprit, everything else lands.

Failures are injected into the real landing path (the care planner hook and the rules),
against a real DuckDB file; the integration test runs ingest against the real broker.
"""

from __future__ import annotations

import base64
import dataclasses
import json

import duckdb
import pytest

import care.planner
from care.planner import plan_pending
from schemas.messages import Message
from schemas.validate import Clock
from stages.ingest import landing_config, run_ingest
from tests.care.conftest import CLOCK
from tests.factories import event, raw
from tests.kafka_helpers import produce, read_all
from warehouse.db import open_warehouse
from warehouse.exceptions import WarehouseError
from warehouse.poison import land_isolating
from warehouse.reconcile import reconciliation


def failing_planner(planner, bad_event_id: str, error: Exception):
    """The care planner, raising `error` whenever the batch holds the chosen event."""

    def run(conn, batch_id, clock):
        if conn.execute("SELECT count(*) FROM fresh WHERE event_id = ?", [bad_event_id]).fetchall()[0][0]:
            raise error
        planner(conn, batch_id, clock)

    return run


def rules_failing_for(monkeypatch, patient_id: str, error: Exception):
    """The task rules raise `error` for one patient; returns the real rules, to put back."""
    real = care.planner.plan_tasks

    def plan_tasks(h, s, frozen):
        if h.patient_id == patient_id:
            raise error
        return real(h, s, frozen)

    monkeypatch.setattr(care.planner, "plan_tasks", plan_tasks)
    return real


def history(n_patients: int = 12) -> list[dict]:
    out = []
    for i in range(n_patients):
        pid = f"P{i:04d}"
        out += [
            event("patient.registered", patient_id=pid),
            event("session.completed", patient_id=pid, session_id=f"s-{pid}"),
        ]
    return out


def messages(events, topic="clinic.sessions.v1") -> list[Message]:
    return [Message(topic, 0, i, e["patient_id"].encode(), raw(e)) for i, e in enumerate(events)]


@pytest.fixture()
def conn(settings):
    c = open_warehouse(settings)
    yield c
    c.close()


def test_the_message_that_breaks_landing_is_quarantined_and_the_rest_lands(settings, conn):
    events = history()
    bad = events[13]  # one patient's session.completed
    cfg = landing_config(settings, group_id="g", families=False)
    cfg = dataclasses.replace(
        cfg, planner=failing_planner(cfg.planner, bad["event_id"], OverflowError("date value out of range"))
    )
    result = land_isolating(conn, messages(events), Clock(CLOCK), cfg)
    plan_pending(conn, settings, CLOCK, all_=True)

    assert result.landed == len(events) - 1 and dict(result.quarantined) == {"unprocessable": 1}
    landed = {r[0] for r in conn.execute("SELECT event_id FROM raw_events").fetchall()}
    assert landed == {e["event_id"] for e in events} - {bad["event_id"]}
    [(kind, errors, event_id, raw_bytes)] = conn.execute(
        "SELECT error_kind, errors, event_id, raw FROM quarantine"
    ).fetchall()
    assert (kind, event_id, raw_bytes) == ("unprocessable", bad["event_id"], raw(bad))
    assert json.loads(errors) == [{"loc": "", "msg": "OverflowError: date value out of range"}]
    [(headers, value)] = conn.execute("SELECT headers, value FROM outbox WHERE kind = 'dlq'").fetchall()
    headers = {k: base64.b64decode(v) for k, v in json.loads(headers)}
    assert value == raw(bad) and headers["clinicflow.error.kind"] == b"unprocessable"
    # Every other patient was planned: a day-one check-in per completed session that landed.
    planned = conn.execute("SELECT count(*) FROM followup_tasks WHERE kind = 'checkin_day1'").fetchall()[0][0]
    assert planned == len(events) // 2 - 1
    assert all(r["balanced"] for r in reconciliation(conn))


def test_several_culprits_in_one_batch_are_each_isolated(settings, conn):
    events = history()
    bad = {events[0]["event_id"], events[7]["event_id"], events[23]["event_id"]}
    cfg = landing_config(settings, group_id="g", families=False)
    planner = cfg.planner
    for b in bad:
        planner = failing_planner(planner, b, TypeError("can't compare offset-naive and offset-aware datetimes"))
    result = land_isolating(conn, messages(events), Clock(CLOCK), dataclasses.replace(cfg, planner=planner))
    assert result.quarantined["unprocessable"] == 3 and result.landed == len(events) - 3
    assert {r[0] for r in conn.execute("SELECT event_id FROM quarantine").fetchall()} == bad


def test_a_failure_of_the_machine_is_not_blamed_on_a_message(settings, conn):
    events = history(3)
    cfg = landing_config(settings, group_id="g", families=False)
    cfg = dataclasses.replace(
        cfg, planner=failing_planner(cfg.planner, events[1]["event_id"], duckdb.IOException("No space left on device"))
    )
    with pytest.raises(WarehouseError, match="No space left on device") as raised:
        land_isolating(conn, messages(events), Clock(CLOCK), cfg)
    assert isinstance(raised.value.__cause__, duckdb.IOException)
    assert conn.execute("SELECT count(*) FROM quarantine").fetchall()[0][0] == 0
    assert conn.execute("SELECT count(*) FROM raw_events").fetchall()[0][0] == 0


def test_a_patient_whose_plan_cannot_be_computed_is_parked_and_the_others_are_planned(settings, conn, monkeypatch):
    events = history(6)
    cfg = landing_config(settings, group_id="g", families=False)
    msgs = messages(events)
    land_isolating(conn, msgs[0::2], Clock(CLOCK), cfg)  # registrations: planned in their batch
    land_isolating(conn, msgs[1::2], Clock(CLOCK), cfg)  # sessions: queued, not yet planned
    assert conn.execute("SELECT count(*) FROM care_plan_queue").fetchall()[0][0] == 6
    real = rules_failing_for(monkeypatch, "P0003", OverflowError("date value out of range"))
    planned = plan_pending(conn, settings, CLOCK, all_=True)
    assert planned == 6
    by_patient = dict(conn.execute("SELECT patient_id, count(*) FROM followup_tasks GROUP BY 1").fetchall())
    assert set(by_patient) == {f"P{i:04d}" for i in range(6)} - {"P0003"}
    [(pid, error, attempts)] = conn.execute("SELECT patient_id, error, attempts FROM care_plan_parked").fetchall()
    assert (pid, attempts) == ("P0003", 1) and error == "OverflowError: date value out of range"
    assert conn.execute("SELECT count(*) FROM care_plan_queue").fetchall()[0][0] == 0

    from warehouse.status import warehouse_figures

    figures = warehouse_figures(conn, "g")
    assert figures["patients_parked"] == [
        {"patient_id": "P0003", "error": error, "attempts": 1, "parked_at": figures["patients_parked"][0]["parked_at"]}
    ]
    # Fixed (here: the injection removed), the patient's next event plans them and unparks them.
    monkeypatch.setattr(care.planner, "plan_tasks", real)
    more = [event("checkin.completed", patient_id="P0003")]
    land_isolating(conn, [Message("clinic.followups.v1", 0, 100, b"P0003", raw(more[0]))], Clock(CLOCK), cfg)
    plan_pending(conn, settings, CLOCK, all_=True)
    assert conn.execute("SELECT count(*) FROM care_plan_parked").fetchall()[0][0] == 0
    assert conn.execute("SELECT count(*) FROM followup_tasks WHERE patient_id = 'P0003'").fetchall()[0][0] > 0


def test_a_plan_that_fails_inside_the_batch_does_not_stop_the_batch(settings, conn, monkeypatch):
    rules_failing_for(monkeypatch, "P0001", TypeError("boom"))
    events = history(3)  # registrations are planned inside the batch
    cfg = landing_config(settings, group_id="g", families=False)
    result = land_isolating(conn, messages(events), Clock(CLOCK), cfg)
    assert result.landed == len(events) and not result.quarantined
    plan_pending(conn, settings, CLOCK, all_=True)
    assert [r[0] for r in conn.execute("SELECT patient_id FROM care_plan_parked").fetchall()] == ["P0001"]


@pytest.mark.integration
def test_ingest_quarantines_the_culprit_and_lands_and_plans_everything_else(kafka_settings):
    s = kafka_settings
    events = history(20)
    bad = events[21]
    produce(
        s,
        s.topic_intake,
        [(e["patient_id"].encode(), raw(e)) for e in events if e["event_type"] == "patient.registered"],
    )
    produce(
        s,
        s.topic_sessions,
        [(e["patient_id"].encode(), raw(e)) for e in events if e["event_type"] == "session.completed"],
    )
    from stages.ingest import default_land

    def land(conn, msgs, clock, cfg):
        cfg = dataclasses.replace(
            cfg, planner=failing_planner(cfg.planner, bad["event_id"], OverflowError("date value out of range"))
        )
        return default_land(conn, msgs, clock, cfg)

    report = run_ingest(s, "drain", land=land)
    assert report.landed == len(events) - 1 and dict(report.quarantined) == {"unprocessable": 1}
    conn = open_warehouse(s)
    try:
        assert all(r["balanced"] for r in reconciliation(conn))
        assert conn.execute("SELECT count(DISTINCT patient_id) FROM followup_tasks").fetchall()[0][0] == 19
    finally:
        conn.close()
    [copy] = read_all(s, s.topic_dlq, expect=1)
    headers = dict(copy.headers)
    assert copy.value == raw(bad) and headers["clinicflow.error.kind"] == b"unprocessable"
    assert b"OverflowError" in headers["clinicflow.errors"]
