"""Partition leases: which worker of a consumer group may land which partition's messages.

Kafka's group protocol tells a worker which partitions it owns, but a worker paused past its
session timeout (SIGSTOP, a long GC, a network split) learns that it lost them only when it
runs again, perhaps halfway through landing a batch it read before. Kafka cannot stop that
write; the warehouse can, because every landing is one lake transaction:

- On assignment a worker acquires a lease per partition: a row with the partition's next
  generation (`Leases.acquire`), in a transaction that also deletes every lease beacon.
- Every landing checks, inside its transaction, that each partition of its batch is still
  leased to it at the generation it acquired, and appends a beacon (`Leases.check`).
- A landing that began before a takeover committed and commits after it has inserted into a
  table the takeover deleted from: DuckLake refuses that commit as a transaction conflict.
  The landing is retried in a new transaction, whose check sees the new holder and raises
  PartitionsLostError: the stale batch is dropped, nothing of it lands, nothing is published.

Landings only append beacons, so the landings of different workers never conflict over them;
only a takeover (rare: a worker joins, leaves or dies) does. Rows are appended, never updated.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Iterable, Sequence

import duckdb

from schemas.messages import Message
from warehouse.db import records, retry_busy, transaction
from warehouse.exceptions import PartitionsLostError, WarehouseError

Partition = tuple[str, int]
_CURRENT = 'SELECT topic, "partition", max(generation) FROM partition_leases WHERE group_id = ? GROUP BY ALL'


def worker_id() -> str:
    """host:pid:random, unique per process run (a restarted worker is a new holder)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def _current(conn: duckdb.DuckDBPyConnection, group_id: str) -> dict[Partition, int]:
    return {(t, p): g for t, p, g in conn.execute(_CURRENT, [group_id]).fetchall()}


class Leases:
    """The leases one worker holds in one consumer group."""

    def __init__(self, group_id: str, worker: str | None = None):
        self.group_id = group_id
        self.worker = worker or worker_id()
        self.held: dict[Partition, int] = {}
        self._confirmed: dict[Partition, float] = {}  # partition -> when the lake last confirmed it

    def acquire(self, conn: duckdb.DuckDBPyConnection, partitions: Iterable[Partition]) -> None:
        """Take the partitions over (a new generation each); every landing in flight elsewhere is fenced."""
        parts = sorted(set(partitions))

        def attempt() -> dict[Partition, int]:
            with transaction(conn):
                current = _current(conn, self.group_id)
                rows = [[self.group_id, t, p, current.get((t, p), 0) + 1, self.worker] for t, p in parts]
                if rows:
                    conn.executemany("INSERT INTO partition_leases VALUES (?, ?, ?, ?, ?, now())", rows)
                conn.execute("DELETE FROM lease_beacons")
                conn.execute("INSERT INTO lease_beacons VALUES (?, NULL, now())", [self.worker])
                return {(r[1], r[2]): r[3] for r in rows}

        try:
            self.held, self._confirmed = retry_busy(attempt, tries=20), {}
        except duckdb.Error as e:
            raise WarehouseError(
                f"acquiring the leases of {len(parts)} partitions for worker {self.worker} failed: {e}; "
                "the worker takes no partition until it succeeds; check the catalog is reachable"
            ) from e

    def release(self) -> None:
        """Forget every lease (partitions revoked or lost); the next holder's acquire supersedes them."""
        self.held, self._confirmed = {}, {}

    def confirm(self, conn: duckdb.DuckDBPyConnection, partition: Partition, max_age_s: float = 1.0) -> bool:
        """Whether the lake still says this worker holds `partition`: asked right before work that
        is not a landing (publishing, escalating), which a takeover's conflict cannot stop.

        The lake's answer is reused for max_age_s: a takeover needs this worker to be silent for a
        session timeout (6 s at least), so an answer younger than that cannot be stale unless the
        process was paused since, and a pause makes the answer old.
        """
        if partition not in self.held:
            return False
        now = time.monotonic()
        if self._confirmed.get(partition, float("-inf")) > now - max_age_s:
            return True
        held = _current(conn, self.group_id).get(partition) == self.held[partition]
        self._confirmed = {partition: now} if held else {}
        return held

    def check(self, conn: duckdb.DuckDBPyConnection, messages: Sequence[Message], batch_id: str) -> None:
        """Inside a landing's transaction: raise PartitionsLostError unless every partition of the
        batch is still leased to this worker at the generation it acquired."""
        current = _current(conn, self.group_id)
        batch = {(m.topic, m.partition) for m in messages}
        lost = sorted(tp for tp in batch if tp not in self.held or current.get(tp) != self.held[tp])
        if lost:
            names = ", ".join(f"{t}/{p}" for t, p in lost)
            raise PartitionsLostError(
                f"worker {self.worker} no longer holds {names} (another worker took them over); "
                f"batch {batch_id} is dropped unlanded and will be read again by the new holder"
            )
        conn.execute("INSERT INTO lease_beacons VALUES (?, ?, now())", [self.worker, batch_id])


def serialize(conn: duckdb.DuckDBPyConnection, who: str) -> None:
    """Inside a transaction: make it conflict with every transaction in flight that also serializes
    or that is a worker's landing (it deletes the beacons, as a takeover does), so that of two such
    transactions one commits first and the other retries on top of it.

    For writes whose uniqueness rests on reading before inserting (events by event_id, escalations
    by id): DuckLake would commit two concurrent inserts of the same row side by side."""
    conn.execute("DELETE FROM lease_beacons")
    conn.execute("INSERT INTO lease_beacons VALUES (?, NULL, now())", [who])


def exclusive(conn: duckdb.DuckDBPyConnection, messages: Sequence[Message], batch_id: str) -> None:
    """The fence of a landing that is no group worker's (load, replay): serialized against the
    workers' landings, so the event_id dedupe of the later one sees the earlier one's rows."""
    serialize(conn, f"landing {batch_id}")


def holders(conn: duckdb.DuckDBPyConnection, group_id: str) -> list[dict]:
    """The current holder of each partition of the group: topic, partition, worker_id, generation, since."""
    return records(
        conn,
        """SELECT topic, "partition", arg_max(worker_id, generation) AS worker_id, max(generation) AS generation,
                  arg_max(acquired_at, generation) AS since
           FROM partition_leases WHERE group_id = ? GROUP BY ALL ORDER BY topic, "partition" """,
        [group_id],
    )
