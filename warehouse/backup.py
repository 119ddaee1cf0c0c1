"""Backup and restore of the warehouse: the system of record once Kafka's retention has passed.

A backup is taken by the single writer: it checkpoints (the write-ahead log folded into the
file), then copies the file while holding it, so the copy is a committed state; with it goes a
manifest (checksum, DuckDB version, migrations, the stored consumer offsets that say where
ingest resumes). Restoring verifies the checksum and puts the file in place; the next ingest
resumes from the offsets stored in it and re-reads what Kafka still has.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

import duckdb

from warehouse.exceptions import WarehouseError

MANIFEST = "manifest.json"
FILE = "warehouse.duckdb"


@dataclass(frozen=True)
class Manifest:
    created_at: str
    source: str
    duckdb_version: str
    bytes: int
    sha256: str
    migrations: list[str]
    stored_offsets: dict[str, int]
    events: int


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def backup(conn: duckdb.DuckDBPyConnection, source: Path, dest: Path) -> tuple[Path, Manifest]:
    """Copy the warehouse `conn` holds (open for writing, so nobody else writes) into a new folder
    under `dest`; returns the folder and its manifest."""
    conn.execute("CHECKPOINT")
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
    folder = dest / f"clinicflow-{stamp}"
    tmp = dest / f".{folder.name}.partial"
    try:
        tmp.mkdir(parents=True, mode=0o700)
        shutil.copyfile(source, tmp / FILE)
        (tmp / FILE).chmod(0o600)
        manifest = _manifest(conn, source, tmp / FILE)
        (tmp / MANIFEST).write_text(json.dumps(asdict(manifest), indent=2) + "\n")
        tmp.rename(folder)  # a backup folder either is complete or does not exist
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise WarehouseError(
            f"backing up {source} to {dest} failed: {e}; check the free space and permissions there"
        ) from e
    return folder, manifest


def _manifest(conn, source: Path, copy: Path) -> Manifest:
    offsets = conn.execute(
        "SELECT group_id || ' ' || topic || '/' || \"partition\", next_offset FROM consumer_offsets ORDER BY 1"
    ).fetchall()
    return Manifest(
        created_at=datetime.now(timezone.utc).isoformat(),
        source=str(source.resolve()),
        duckdb_version=duckdb.__version__,
        bytes=copy.stat().st_size,
        sha256=_sha256(copy),
        migrations=[n for (n,) in conn.execute("SELECT name FROM schema_migrations ORDER BY number").fetchall()],
        stored_offsets=dict(offsets),
        events=conn.execute("SELECT count(*) FROM raw_events").fetchall()[0][0],
    )


def latest(dest: Path) -> Path:
    """The newest complete backup folder under `dest`."""
    found = sorted(p for p in dest.glob("clinicflow-*") if (p / MANIFEST).is_file())
    if not found:
        raise WarehouseError(f"no backup in {dest} (folders clinicflow-<time> with a {MANIFEST}); check the path")
    return found[-1]


def read_manifest(folder: Path) -> Manifest:
    try:
        return Manifest(**json.loads((folder / MANIFEST).read_text()))
    except (OSError, ValueError, TypeError) as e:
        raise WarehouseError(f"{folder / MANIFEST} is missing or unreadable ({e}); is {folder} a backup?") from e


def _move_aside(target: Path, force: bool) -> None:
    """What is at the target (the file, or a write-ahead log left without it, which DuckDB would
    replay onto the restored file) is kept beside with a suffix, never deleted."""
    present = [p for p in (target, target.with_name(target.name + ".wal")) if p.exists()]
    if not present:
        return
    if not force:
        raise WarehouseError(
            f"{present[0]} exists; move it away or pass --force (it is then kept beside as *.replaced-<time>)"
        )
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    for p in present:
        p.rename(p.with_name(f"{p.name}.replaced-{stamp}"))


def prune(dest: Path, keep: int) -> list[Path]:
    """Remove all but the `keep` newest backups under `dest`; the ones removed."""
    found = sorted(p for p in dest.glob("clinicflow-*") if (p / MANIFEST).is_file())
    gone = found[:-keep] if keep else []
    for p in gone:
        shutil.rmtree(p)
    return gone


def restore(src: Path, target: Path, force: bool = False) -> Manifest:
    """Put the backup `src` (a backup folder, or a folder of them: the newest) at `target`.

    An existing warehouse is never overwritten silently: with `force` it is moved aside first.
    """
    folder = src if (src / MANIFEST).is_file() else latest(src)
    manifest = read_manifest(folder)
    if _sha256(folder / FILE) != manifest.sha256:
        raise WarehouseError(f"{folder / FILE} does not match its manifest's checksum; the backup is damaged")
    if manifest.duckdb_version != duckdb.__version__:
        raise WarehouseError(
            f"{folder} was written by DuckDB {manifest.duckdb_version}, this release uses {duckdb.__version__}; "
            "restore it with the release that made it"
        )
    _move_aside(target, force)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.restoring")
    shutil.copyfile(folder / FILE, partial)
    partial.chmod(0o600)
    os.replace(partial, target)
    return manifest
