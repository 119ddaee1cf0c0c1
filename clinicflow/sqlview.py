"""`clinicflow sql`: read-only queries over the analysts' snapshot."""

from __future__ import annotations

import json

import duckdb
from rich.console import Console
from rich.table import Table

from clinicflow.exceptions import ClinicflowError
from clinicflow.settings import Settings
from warehouse.analytics import open_snapshot


def run_query(settings: Settings, query: str, as_json: bool, limit: int, console: Console) -> None:
    conn = open_snapshot(settings.analytics_snapshot_path)
    try:
        cur = conn.execute(query)
        cols = [d[0] for d in cur.description or []]
        rows = cur.fetchmany(limit)
    except duckdb.Error as e:
        raise ClinicflowError(f"the query failed: {e}; the snapshot holds the analytics.* views as tables "
                              "(try `SHOW TABLES`)") from e
    finally:
        conn.close()
    if as_json:
        for r in rows:
            print(json.dumps(dict(zip(cols, r)), default=str))
        return
    table = Table(*cols)
    for r in rows:
        table.add_row(*("" if v is None else str(v) for v in r))
    console.print(table)
