"""Reconciliation: every offset consumed is landed, a duplicate, or quarantined."""

from __future__ import annotations

import duckdb

RECONCILIATION_SQL = """
SELECT topic, "partition",
       sum(last_offset - first_offset + 1)::BIGINT AS offsets_spanned,
       sum(n_read)::BIGINT AS consumed,
       sum(n_landed)::BIGINT AS landed,
       sum(n_duplicates)::BIGINT AS duplicates,
       sum(n_quarantined)::BIGINT AS quarantined,
       sum(n_read) = sum(n_landed + n_duplicates + n_quarantined)
         AND sum(last_offset - first_offset + 1) = sum(n_read) AS balanced
FROM partition_ledger
GROUP BY topic, "partition"
ORDER BY topic, "partition"
"""


def reconciliation(conn: duckdb.DuckDBPyConnection) -> list[dict]:
    """Per topic and partition: consumed = landed + duplicates + quarantined, and no offset skipped."""
    cur = conn.execute(RECONCILIATION_SQL)
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, row)) for row in cur.fetchall()]
