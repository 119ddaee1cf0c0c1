"""Partition leases fence a worker that lost its partitions: its batch does not land, before or
during another worker's takeover (two connections to one lake, as two workers have)."""

from __future__ import annotations

import threading
import time

import pytest

from schemas.messages import Message
from schemas.validate import Clock
from tests.factories import NOW, event, raw
from warehouse.db import Lake, connect
from warehouse.exceptions import PartitionsLostError
from warehouse.landing import LandingConfig, land_batch
from warehouse.leases import Leases, exclusive, holders
from warehouse.poison import land_isolating

P0, P1 = ("in", 0), ("in", 1)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.integration)])
def lake(request, tmp_path, topic_prefix):
    """The embedded catalog, and the PostgreSQL one that several hosts share. SQLite serialises
    writers itself (a stale snapshot cannot write: "database is locked"); with PostgreSQL the
    fence rests on DuckLake's conflict check alone."""
    if request.param == "sqlite":
        yield Lake.beside(tmp_path / "shared.duckdb")
        return
    server = request.getfixturevalue("postgres_server")
    assert server._psql(f"CREATE DATABASE {topic_prefix}").returncode == 0
    dsn = f"host=127.0.0.1 port={server.port} dbname={topic_prefix} user=clinicflow password={server.password}"
    yield Lake(f"postgres:{dsn}", tmp_path / "data")
    server._psql(f"DROP DATABASE IF EXISTS {topic_prefix} WITH (FORCE)")


@pytest.fixture()
def workers(tmp_path, lake):
    """Two writers on one lake, each with its own local file, as on two hosts."""
    a, b = connect(tmp_path / "a" / "w.duckdb", lake=lake), connect(tmp_path / "b" / "w.duckdb", lake=lake)
    yield a, b
    a.close()
    b.close()


def only_with_a_server_catalog(lake) -> None:
    """An embedded lake's writers take turns (db.transaction): one cannot commit while another's
    transaction is open, so these interleavings exist only with PostgreSQL (and would wait forever
    here, in one thread)."""
    if lake.kind == "sqlite":
        pytest.skip("writers of an embedded lake take turns: no transaction commits inside another's")


def test_an_embedded_lakes_writers_take_turns(workers, lake):
    """A takeover on an embedded lake waits for the landing in flight instead of racing it."""
    if lake.kind != "sqlite":
        pytest.skip("PostgreSQL catalogs rely on DuckLake's conflict check (the tests above)")
    a, b = workers
    la, lb = Leases("g", "worker-a"), Leases("g", "worker-b")
    la.acquire(a, [P0])
    events = []

    def slow_check(conn, messages, batch_id):
        la.check(conn, messages, batch_id)
        taker = threading.Thread(target=lambda: (lb.acquire(b, [P0]), events.append("taken over")))
        taker.start()
        taker.join(timeout=1.0)
        events.append("landing commits")

    assert land_batch(a, batch(0), Clock(NOW), cfg(la, slow_check)).landed == 3
    deadline = time.monotonic() + 30
    while "taken over" not in events and time.monotonic() < deadline:
        time.sleep(0.05)
    assert events == ["landing commits", "taken over"], "the takeover waited for the landing's turn"
    assert not la.confirm(a, P0) and lb.confirm(a, P0)


def batch(partition: int, n: int = 3) -> list[Message]:
    return [Message("in", partition, i, None, raw(event("patient.registered"))) for i in range(n)]


def cfg(leases: Leases, fence=None) -> LandingConfig:
    return LandingConfig(group_id=leases.group_id, dlq_topic="dlq", fence=fence or leases.check)


def landed(conn) -> int:
    return conn.execute("SELECT count(*) FROM raw_events").fetchone()[0]


def test_each_acquire_is_a_new_generation_and_names_the_holder(workers):
    a, b = workers
    la, lb = Leases("g", "worker-a"), Leases("g", "worker-b")
    la.acquire(a, [P0, P1])
    lb.acquire(b, [P1])
    assert la.held == {P0: 1, P1: 1} and lb.held == {P1: 2}
    now = {(h["topic"], h["partition"]): (h["worker_id"], h["generation"]) for h in holders(a, "g")}
    assert now == {P0: ("worker-a", 1), P1: ("worker-b", 2)}
    # What a worker asks before publishing: the lake's word, not its memory.
    assert la.confirm(a, P0) and not la.confirm(a, P1) and lb.confirm(a, P1) and not lb.confirm(a, P0)


def test_the_holder_lands_and_a_superseded_worker_does_not(workers):
    a, b = workers
    la, lb = Leases("g", "worker-a"), Leases("g", "worker-b")
    la.acquire(a, [P0, P1])
    assert land_batch(a, batch(0), Clock(NOW), cfg(la)).landed == 3
    lb.acquire(b, [P1])
    with pytest.raises(PartitionsLostError, match="in/1"):
        land_batch(a, batch(1), Clock(NOW), cfg(la))
    assert landed(b) == 3  # the first batch only
    assert land_batch(b, batch(1), Clock(NOW), cfg(lb)).landed == 3
    assert land_batch(a, batch(0, 5)[3:], Clock(NOW), cfg(la)).landed == 2  # P0 is still a's


def test_a_landing_in_flight_when_another_worker_takes_over_is_refused(workers, lake):
    """The takeover commits between the landing's check and its commit: the commit conflicts,
    the retry's check sees the new holder, nothing of the batch is kept."""
    only_with_a_server_catalog(lake)
    a, b = workers
    la, lb = Leases("g", "worker-a"), Leases("g", "worker-b")
    la.acquire(a, [P0])
    calls = []

    def check_then_lose(conn, messages, batch_id):
        la.check(conn, messages, batch_id)  # passes: a still holds P0 in this snapshot
        calls.append(batch_id)
        if len(calls) == 1:
            lb.acquire(b, [P0])  # another worker takes P0 over while the landing is in flight

    with pytest.raises(PartitionsLostError):
        land_batch(a, batch(0), Clock(NOW), cfg(la, check_then_lose))
    assert len(calls) == 1, "the retried landing should fail its check, not pass it"
    assert landed(b) == 0


def test_a_lost_partition_is_not_isolated_as_a_poison_message(workers):
    a, b = workers
    la, lb = Leases("g", "worker-a"), Leases("g", "worker-b")
    la.acquire(a, [P0])
    lb.acquire(b, [P0])
    with pytest.raises(PartitionsLostError):
        land_isolating(a, batch(0), Clock(NOW), cfg(la))
    assert a.execute("SELECT count(*) FROM quarantine").fetchone()[0] == 0


def test_a_load_landing_the_same_events_beside_a_worker_never_lands_them_twice(workers, lake):
    """A `load` (exclusive fence) commits the worker's events while the worker's landing is in
    flight: the worker's commit conflicts, its retry finds them landed: one copy, not two."""
    only_with_a_server_catalog(lake)
    a, b = workers
    la = Leases("g", "worker-a")
    la.acquire(a, [P0])
    messages = batch(0)
    file_cfg = LandingConfig(group_id="file", dlq_topic="dlq", fence=exclusive)
    calls = []

    def check_then_load(conn, msgs, batch_id):
        la.check(conn, msgs, batch_id)
        calls.append(batch_id)
        if len(calls) == 1:
            assert land_batch(b, messages, Clock(NOW), file_cfg).landed == 3

    result = land_batch(a, messages, Clock(NOW), cfg(la, check_then_load))
    assert len(calls) == 2, "the worker's first commit should have conflicted with the load"
    assert (result.landed, result.duplicates) == (0, 3)
    assert landed(a) == 3


def test_a_confirmation_is_reused_only_briefly(workers):
    """The lead worker's check before publishing: fresh enough to trust for a second, never longer."""
    a, b = workers
    la, lb = Leases("g", "worker-a"), Leases("g", "worker-b")
    la.acquire(a, [P0])
    assert la.confirm(a, P0)
    lb.acquire(b, [P0])  # a takeover no live member could cause without a rebalance: a test's shortcut
    assert la.confirm(a, P0, max_age_s=60), "within its age the answer is reused"
    assert not la.confirm(a, P0, max_age_s=0), "an old answer is asked of the lake again"
