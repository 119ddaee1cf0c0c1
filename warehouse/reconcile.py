"""Reconciliation: every offset consumed is landed, a duplicate, or quarantined."""

from __future__ import annotations

import duckdb

from warehouse.db import records

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
    return records(conn, RECONCILIATION_SQL)
