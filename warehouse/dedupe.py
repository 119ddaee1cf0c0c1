"""Which of a batch's events the lake already holds, at a cost per batch that does not grow with history.

DuckLake has no unique keys, and an anti-join of a batch against every event id reads the
whole event_id column (9x slower from 100k to 5M events, benchmarks/lake_dedupe.py). So each
writing connection keeps an index of the 64-bit hashes of every event id in the lake, sorted
in memory (8 bytes per event: 40 MB at 5M). It is loaded once, then follows the lake by
reading only the ids inserted since the snapshot it last saw (its own batches and any other
writer's), so it is exact for every writer.

A batch's ids whose hash is not in the index are new: the common case costs one
binary search per event. The few whose hash is there (a redelivery, a re-sent event, or a
64-bit collision) are looked up in the lake, first within the batch's own occurred_at range
(DuckLake skips every data file outside it: a redelivered event keeps its occurred_at), then,
for any still unexplained, in the whole table: exactly "the same id twice lands once".
"""

from __future__ import annotations

import weakref

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_MERGE_AT = 65_536  # hashes held unsorted before they are merged into the sorted array


class EventIndex:
    """Sorted 64-bit hashes (DuckDB's hash()) of the event ids in the lake as of `snapshot`."""

    def __init__(self, table: str = "raw_events") -> None:
        self.table = table
        self.sorted = np.empty(0, np.uint64)
        self.pending: list[np.ndarray] = []
        self.snapshot: int | None = None

    def follow(self, conn: duckdb.DuckDBPyConnection) -> None:
        """Take in the ids inserted since the snapshot last seen (all of them the first time)."""
        current = conn.execute("SELECT id FROM lake.current_snapshot()").fetchall()[0][0]
        if current == self.snapshot:
            return
        if self.snapshot is None:
            sql, params = f"SELECT hash(event_id) AS h FROM {self.table}", []
        else:
            sql = "SELECT hash(event_id) AS h FROM ducklake_table_insertions('lake', 'main', ?, ?, ?)"
            params = [self.table, self.snapshot + 1, current]
        self._add(conn.execute(sql, params).fetchnumpy()["h"])
        self.snapshot = current

    def _add(self, hashes: np.ndarray) -> None:
        if len(hashes):
            self.pending.append(np.asarray(hashes, np.uint64))
        if sum(len(p) for p in self.pending) >= _MERGE_AT or (self.pending and not len(self.sorted)):
            new = np.unique(np.concatenate(self.pending))
            new = new[~self._in_sorted(new)]  # a re-sent id (or a collision) is held once
            # Inserted at their places (a copy, linear): re-sorting the whole index cost 3.5 s a
            # merge at three million ids (39 ms this way), a merge every three 20,000-event batches.
            self.sorted = np.insert(self.sorted, np.searchsorted(self.sorted, new), new)
            self.pending = []

    def _in_sorted(self, hashes: np.ndarray) -> np.ndarray:
        if not len(self.sorted):
            return np.zeros(len(hashes), bool)
        at = np.minimum(np.searchsorted(self.sorted, hashes), len(self.sorted) - 1)
        return self.sorted[at] == hashes

    def contains(self, hashes: np.ndarray) -> np.ndarray:
        """A mask: True where the hash is in the index."""
        hit = self._in_sorted(hashes)
        for p in self.pending:
            hit |= np.isin(hashes, p)
        return hit


_INDEXES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def index_for(conn: duckdb.DuckDBPyConnection, table: str = "raw_events") -> EventIndex:
    """The connection's index (one per writing connection, dropped with it)."""
    if conn not in _INDEXES:
        _INDEXES[conn] = EventIndex(table)
    return _INDEXES[conn]


def known_ids(conn: duckdb.DuckDBPyConnection, batch: str, table: str = "raw_events") -> pa.Table:
    """The event ids of the relation `batch` (event_id, occurred_at) already in `table` (default raw_events)."""
    index = index_for(conn, table)
    index.follow(conn)
    rows = conn.execute(f"SELECT event_id, occurred_at, hash(event_id) AS h FROM {batch}").to_arrow_table()
    hit = index.contains(rows["h"].to_numpy())
    suspects = rows.filter(pa.array(hit)).select(["event_id", "occurred_at"])
    if not suspects.num_rows:
        return suspects.select(["event_id"])
    return _look_up(conn, suspects, table)


def _look_up(conn: duckdb.DuckDBPyConnection, suspects: pa.Table, table: str) -> pa.Table:
    span = pc.min_max(suspects["occurred_at"])
    # Literal bounds, so that DuckLake prunes data files by their occurred_at statistics.
    lo, hi = (f"TIMESTAMPTZ '{span[k].as_py().isoformat()}'" for k in ("min", "max"))
    conn.register("dedupe_suspects", suspects)
    try:
        found = conn.execute(
            f"SELECT DISTINCT event_id FROM {table} r SEMI JOIN dedupe_suspects USING (event_id) "
            f"WHERE r.occurred_at BETWEEN {lo} AND {hi}"
        ).to_arrow_table()
        if found.num_rows < len(set(suspects["event_id"].to_pylist())):
            # Re-sent with another occurred_at (or a hash collision): the whole table decides.
            found = conn.execute(
                f"SELECT DISTINCT event_id FROM {table} SEMI JOIN dedupe_suspects USING (event_id)"
            ).to_arrow_table()
    finally:
        conn.unregister("dedupe_suspects")
    return found
