"""The maintenance stage: both lakes compacted, expired and cleaned by the writer, step by step."""

from __future__ import annotations

from dataclasses import asdict

from core.settings import Settings
from stages.boundary import stage
from stages.ingest import writer
from warehouse import maintenance
from warehouse.analytics import ALIAS, attach_analysts
from warehouse.db import Lake


@stage("maintenance")
def run_maintenance_stage(settings: Settings) -> dict:
    """Flush inlined rows, merge small files, expire old snapshots, remove unreferenced files, check ids."""
    with writer(settings, publish_snapshot=False, plan=False) as conn:
        attach_analysts(conn, Lake.analysts(settings), settings.analytics_group)
        before = {a: maintenance.data_files(conn, a) for a in ("lake", ALIAS)}
        report = maintenance.run(conn, ["lake", ALIAS], settings.lake_snapshot_retention_days)
    return {"data_files_before": before, **asdict(report)}
