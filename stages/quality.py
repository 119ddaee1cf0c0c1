"""The data-quality stage: every warehouse suite, results stored with history, Data Docs built."""

from __future__ import annotations

from datetime import datetime, timezone

from core.settings import Settings
from stages.boundary import stage
from stages.ingest import writer
from warehouse.quality_suites import WarehouseQuality


@stage("data quality")
def run_quality(settings: Settings, as_of: datetime | None = None) -> dict:
    """Run every warehouse suite at `as_of` (default now); the report as a dict."""
    as_of = as_of or datetime.now(timezone.utc)
    quality = WarehouseQuality(settings.quality_dir, settings.quality_max_stale_hours)
    # No planning here (a quality run writes no tasks); its results reach analysts and the report.
    with writer(settings, plan=False) as conn:
        return quality.run(conn, as_of).as_dict()
