"""The import stage: a file warehouse of an older release (or its export) carried into the lake, then
opened as a writer (episodes derived, the analysts' lake refreshed)."""

from __future__ import annotations

from pathlib import Path

from core.settings import Settings
from stages.boundary import stage
from stages.ingest import writer
from warehouse.db import Lake
from warehouse.upgrade import import_warehouse


@stage("import")
def run_import_stage(settings: Settings, source: Path) -> dict:
    counts = import_warehouse(source, settings.warehouse_path, Lake.of(settings))
    with writer(settings) as conn:
        episodes = conn.execute("SELECT count(*) FROM alert_episodes").fetchall()[0][0]
    return {"warehouse": Lake.of(settings).kind + " lake", "rows": counts, "alert_episodes": episodes}
