"""Deduplication on event_id without unique keys: exact ("the same id twice lands once", whatever
else the re-sent event says), across batches, connections and writers, at a cost per batch that
reads only the batch's suspects."""

from __future__ import annotations

from datetime import timedelta

import numpy as np

from tests.factories import NOW, event
from tests.warehouse.test_landing import CFG, CLOCK, count, msgs
from warehouse.db import connect
from warehouse.dedupe import _MERGE_AT, EventIndex, index_for
from warehouse.landing import land_batch


def test_an_id_resent_with_another_occurred_at_still_lands_once(tmp_path):
    conn = connect(tmp_path / "w.duckdb")
    try:
        first = event("checkin.completed", at=NOW - timedelta(days=30))
        land_batch(conn, msgs([first]), CLOCK, CFG)
        for k in range(3):  # later batches, far from the first one's occurred_at window
            land_batch(conn, msgs([event("checkin.completed", at=NOW - timedelta(hours=k))], start=10 + k), CLOCK, CFG)
        again = {**first, "occurred_at": (NOW - timedelta(hours=1)).isoformat()}  # same id, another time
        r = land_batch(conn, msgs([again], start=20), CLOCK, CFG)
        assert (r.landed, r.duplicates) == (0, 1)
        assert count(conn, f"raw_events WHERE event_id = '{first['event_id']}'") == 1
    finally:
        conn.close()


def test_a_new_connection_and_another_writer_see_every_id(tmp_path):
    ev = event("consent.updated")
    one = connect(tmp_path / "w.duckdb")
    land_batch(one, msgs([ev]), CLOCK, CFG)
    one.close()
    two = connect(tmp_path / "w.duckdb")  # a fresh process's index loads what is in the lake
    try:
        assert land_batch(two, msgs([ev], start=5), CLOCK, CFG).duplicates == 1
        index = index_for(two)
        before = index.snapshot
        # Another writer's batch (here: rows appended behind this connection's back) is followed
        # snapshot by snapshot, not reloaded.
        other = event("consent.updated")
        two.execute(
            "INSERT INTO raw_events SELECT * REPLACE (? AS event_id) FROM raw_events LIMIT 1", [other["event_id"]]
        )
        index.follow(two)
        assert index.snapshot > before
        h = two.execute("SELECT hash(?)", [other["event_id"]]).fetchall()[0][0]
        assert index.contains(np.array([h], np.uint64))[0]
    finally:
        two.close()


def test_the_index_merges_what_it_follows_and_finds_every_hash():
    index = EventIndex()
    rng = np.random.default_rng(1)
    chunks = [rng.integers(0, 2**63, 40_000, dtype=np.uint64) for _ in range(4)]
    for c in chunks:
        index._add(c)
    index._add(chunks[1][:_MERGE_AT])  # followed twice (a re-read): held once
    index._add(np.zeros(0, np.uint64))
    everything = np.concatenate(chunks)
    assert index.contains(everything).all()
    assert not index.pending
    assert (index.sorted[1:] > index.sorted[:-1]).all() and len(index.sorted) == len(np.unique(everything))
    assert not index.contains(rng.integers(0, 2**63, 1000, dtype=np.uint64)).any()
