"""The import stage: a warehouse rebuilt from an older release's export, then opened as a writer
(episodes derived, the analysts' snapshot published)."""

from __future__ import annotations

from pathlib import Path

from core.settings import Settings
from stages.boundary import stage
from stages.ingest import writer
from warehouse.upgrade import import_export


@stage("import")
def run_import_stage(settings: Settings, export: Path) -> dict:
    counts = import_export(export, settings.warehouse_path)
    with writer(settings) as conn:
        episodes = conn.execute("SELECT count(*) FROM alert_episodes").fetchall()[0][0]
    return {"warehouse": str(settings.warehouse_path), "rows": counts, "alert_episodes": episodes}
