"""Prefect flow for the daily backup: a thin wrapper over stages.backup, holding the writer slot."""

from __future__ import annotations

from pathlib import Path

from prefect import flow

from core.settings import Settings, get_settings
from flows.writer import warehouse_writer
from stages.backup import run_backup_stage


@flow(name="backup", log_prints=True)
def backup_flow(dest: str | None = None, settings: Settings | None = None) -> dict:
    """Back the warehouse up into `dest` (default CLINICFLOW_BACKUP_DIR)."""
    settings = settings or get_settings()
    with warehouse_writer():
        return run_backup_stage(settings, Path(dest) if dest else None)
