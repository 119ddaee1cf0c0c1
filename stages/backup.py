"""The backup and restore stages: the lake copied while its writer holds it."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from core.settings import Settings
from stages.boundary import stage
from stages.exceptions import StageError
from stages.ingest import writer
from warehouse import backup as backups
from warehouse.db import Lake, other_writers
from warehouse.exceptions import WarehouseError


def _destination(settings: Settings, dest: Path | None) -> Path:
    dest = dest or settings.backup_dir
    if dest is None:
        raise StageError("no backup destination: pass DEST or set CLINICFLOW_BACKUP_DIR (on another disk)")
    return dest


@stage("backup")
def run_backup_stage(settings: Settings, dest: Path | None = None) -> dict:
    """Back the warehouse up into `dest` (default CLINICFLOW_BACKUP_DIR), keeping backup_keep backups."""
    dest = _destination(settings, dest)
    with writer(settings, publish_snapshot=False, plan=False) as conn:
        folder, manifest = backups.backup(conn, Lake.of(settings), dest)
    pruned = backups.prune(dest, settings.backup_keep)
    return {"backup": str(folder), **_summary(manifest), "pruned": [str(p) for p in pruned]}


def _summary(manifest: backups.Manifest) -> dict:
    """The manifest without its file list (which the backup folder keeps)."""
    out = {k: v for k, v in asdict(manifest).items() if k != "data_files"}
    return {**out, "data_files": len(manifest.data_files), "data_bytes": manifest.data_bytes}


@stage("restore")
def run_restore_stage(settings: Settings, src: Path, force: bool = False) -> dict:
    """Put a backup in place of the warehouse; nothing may hold the warehouse meanwhile."""
    _refuse_if_open(settings.warehouse_path)
    lake = Lake.of(settings)
    manifest = backups.restore(src, lake, force)
    return {"restored": f"{lake.kind} lake, data in {lake.data_path}", **_summary(manifest)}


def _refuse_if_open(path: Path) -> None:
    running = other_writers(path)
    if running:
        raise WarehouseError(
            f"{len(running)} process(es) write the warehouse ({', '.join(map(str, running))}); stop ingest and the "
            "other flows (or hold the warehouse-writer slot) before restoring"
        )
