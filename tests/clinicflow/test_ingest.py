"""The ingest loop against the real broker and a real DuckDB file."""

from __future__ import annotations

import json

import pytest

from stages.ingest import run_ingest
from tests.connectors.test_publish import FAMILY  # the contract's topic per type, written out once
from tests.factories import ALL_TYPES, event, raw
from tests.kafka_helpers import produce, read_all
from warehouse.db import open_warehouse
from warehouse.reconcile import reconciliation

pytestmark = pytest.mark.integration


def topic_of(s, event_type):
    return getattr(s, f"topic_{FAMILY[event_type]}")


def publish_events(s, events):
    for e in events:
        produce(s, topic_of(s, e["event_type"]), [(e["patient_id"].encode(), raw(e))])


def snapshot(s):
    conn = open_warehouse(s)
    try:
        tables = ["raw_events", "quarantine", "outbox", "sessions_completed", "checkins", "patients_registered"]
        counts = {t: conn.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0] for t in tables}
        ids = sorted(r[0] for r in conn.execute("SELECT event_id FROM raw_events").fetchall())
        return counts, ids, reconciliation(conn)
    finally:
        conn.close()


def test_drain_lands_valid_quarantines_invalid_and_dead_letters_them(kafka_settings):
    s = kafka_settings
    good = [event(t, patient_id=f"P{i:04d}") for i, t in enumerate(ALL_TYPES[:12])]
    publish_events(s, good)
    bad = [
        (b"P0100", b"{not json", [("trace", b"abc")]),
        (b"P0101", raw(event("session.completed", patient_id="P0101", dose_mg=83)), [("trace", b"def")]),
        (b"P0102", raw(event("checkin.completed", patient_id="P0102")), []),
    ]  # wrong topic
    produce(s, s.topic_sessions, bad)

    report = run_ingest(s, "drain")
    assert (report.read, report.landed, report.duplicates) == (15, 12, 0)
    assert dict(report.quarantined) == {"malformed_json": 1, "schema": 1, "wrong_topic": 1}
    assert sum(report.lag_left.values()) == 0

    counts, ids, rec = snapshot(s)
    assert ids == sorted(e["event_id"] for e in good)
    assert counts["quarantine"] == 3 and all(r["balanced"] for r in rec)

    dlq = read_all(s, s.topic_dlq, expect=3)
    by_value = {r.value: r for r in dlq}
    assert set(by_value) == {b[1] for b in bad}, "DLQ carries the original bytes"
    first = by_value[b"{not json"]
    headers = dict(first.headers)
    assert first.key == b"P0100" and headers["trace"] == b"abc"
    assert headers["clinicflow.source.topic"] == s.topic_sessions.encode()
    assert headers["clinicflow.error.kind"] == b"malformed_json"
    assert json.loads(headers["clinicflow.errors"])[0]["msg"]
    assert headers["clinicflow.source.partition"].isdigit() and headers["clinicflow.source.offset"].isdigit()
    conn = open_warehouse(s)
    assert conn.execute("SELECT count(*) FROM outbox WHERE sent_at IS NULL").fetchall()[0][0] == 0
    conn.close()


def test_drain_twice_and_replay_from_zero_change_nothing(kafka_settings):
    s = kafka_settings
    publish_events(s, [event(t, patient_id="P0001") for t in ALL_TYPES[:12]])
    produce(s, s.topic_intake, [(b"P0001", b"garbage")])
    run_ingest(s, "drain")
    before = snapshot(s)[:2]

    again = run_ingest(s, "drain")
    assert again.read == 0 and snapshot(s)[:2] == before

    replay = s.model_copy(update={"consumer_group": s.consumer_group + "-replay"})  # no stored offsets: from 0
    r = run_ingest(replay, "drain")
    assert (r.read, r.landed, r.duplicates, sum(r.quarantined.values())) == (13, 0, 12, 1)
    assert snapshot(s)[:2] == before
    assert len(read_all(s, s.topic_dlq, expect=1)) == 1, "a replayed reject is not dead-lettered twice"


def test_status_shows_zero_lag_and_balanced_reconciliation_after_drain(kafka_settings):
    from clinicflow.status import collect

    s = kafka_settings
    publish_events(s, [event("checkin.completed", patient_id=f"P{i:04d}") for i in range(30)])
    produce(s, s.topic_followups, [(b"P0001", b"not json")])
    before = collect(s)
    assert isinstance(before["consumer_lag"], dict), before
    assert sum(before["consumer_lag"].values()) == 31 and not before["warehouse"]["available"]
    report = run_ingest(s, "drain")
    assert report.planned == 30, "a drain plans every queued patient before it ends"
    after = collect(s)
    assert after["healthy"] and sum(after["consumer_lag"].values()) == 0
    wh = after["warehouse"]
    assert wh["landed_total"] == 30 and wh["quarantined_open"] == 1 and wh["reconciliation_balanced"]
    assert wh["patients_queued_for_planning"] == 0
    assert sum(r["consumed"] for r in wh["reconciliation"]) == 31
    # The one worker of the group held every partition, each with its lag (none left).
    (worker,) = after["workers"]
    assert len(worker["partitions"]) == len(s.inbound_topics) * s.topic_partitions and worker["lag"] == 0
