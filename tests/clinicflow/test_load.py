"""The backfill path: no broker, a real DuckDB file."""

from __future__ import annotations

from stages.ingest import run_load
from tests.factories import ALL_TYPES, event, raw
from warehouse.db import open_warehouse


def test_load_lands_a_file_like_the_kafka_path(settings, tmp_path):
    f = tmp_path / "history.jsonl"
    f.write_bytes(b"\n".join([raw(event(t)) for t in ALL_TYPES[:12]] + [b"{bad"]) + b"\n")
    r1 = run_load(settings, f)
    r2 = run_load(settings, f)
    assert (r1.landed, sum(r1.quarantined.values())) == (12, 1)
    assert (r2.landed, r2.duplicates, sum(r2.quarantined.values())) == (0, 12, 1)
    conn = open_warehouse(settings)
    assert conn.execute('SELECT topic, "offset" FROM quarantine').fetchall() == [("file:history.jsonl", 13)]
    assert conn.execute("SELECT count(*) FROM outbox").fetchall()[0][0] == 0
    conn.close()
