"""Prefect flow for the daily lake maintenance: a thin wrapper over stages.maintenance, holding the writer slot."""

from __future__ import annotations

from prefect import flow

from core.settings import Settings, get_settings
from flows.writer import warehouse_writer
from stages.maintenance import run_maintenance_stage


@flow(name="maintenance", log_prints=True)
def maintenance_flow(settings: Settings | None = None) -> dict:
    """Compact, expire and clean both lakes (a follower does the same between its batches)."""
    settings = settings or get_settings()
    with warehouse_writer():
        return run_maintenance_stage(settings)
