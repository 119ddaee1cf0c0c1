"""Backup and restore of the lake: the system of record once Kafka's retention has passed.

A lake is its catalog (which snapshot holds which rows, in which files) plus its data files,
which are immutable: a file, once written, never changes; compaction writes new ones and the
clean-up removes old ones. So a backup folder `DEST` holds

    DEST/data/...                      every data file ever backed up, copied once (incremental)
    DEST/clinicflow-<time>/catalog.*   the catalog as of one snapshot
    DEST/clinicflow-<time>/manifest.json  what that catalog needs: its checksum, the data files
                                        it may reference (size, sha256), offsets, migrations

A backup is taken by the writer (nobody else writes meanwhile): the catalog first (SQLite's
online backup, or `pg_dump` for a PostgreSQL catalog), then every data file not yet in
`DEST/data`. The files the catalog references were all written before it was copied, so the
pair is consistent. Restoring verifies every checksum, then puts the data files and the
catalog in place; ingest resumes from the offsets stored in the catalog.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import duckdb

from warehouse.db import Lake, point_at
from warehouse.exceptions import WarehouseError
from warehouse.local_postgres import find_binary

MANIFEST = "manifest.json"
DATA = "data"
CATALOG = {"sqlite": "catalog.sqlite", "postgres": "catalog.pgdump"}


@dataclass(frozen=True)
class Manifest:
    created_at: str
    catalog_kind: str
    duckdb_version: str
    catalog_sha256: str
    snapshot_id: int
    migrations: list[str]
    stored_offsets: dict[str, int]
    events: int
    data_files: dict[str, list] = field(default_factory=dict)  # relative path -> [bytes, sha256]
    copied_files: int = 0
    copied_bytes: int = 0

    @property
    def data_bytes(self) -> int:
        return sum(size for size, _ in self.data_files.values())


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def backup(conn: duckdb.DuckDBPyConnection, lake: Lake, dest: Path) -> tuple[Path, Manifest]:
    """Back up the lake `conn` writes (so nobody else writes meanwhile) into a new folder under `dest`."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
    folder = dest / f"clinicflow-{stamp}"
    tmp = dest / f".{folder.name}.partial"
    try:
        tmp.mkdir(parents=True, mode=0o700)
        catalog = tmp / CATALOG[lake.kind]
        _copy_catalog(lake, catalog)
        files, copied = _copy_data(lake.data_path, dest / DATA, _known_hashes(dest))
        manifest = _manifest(conn, lake, catalog, files, copied)
        (tmp / MANIFEST).write_text(json.dumps(asdict(manifest), indent=2) + "\n")
        tmp.rename(folder)  # a backup folder either is complete or does not exist
    except (OSError, sqlite3.Error, subprocess.CalledProcessError) as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise WarehouseError(
            f"backing up the lake to {dest} failed: {e}; check the free space and permissions there"
        ) from e
    return folder, manifest


def _copy_catalog(lake: Lake, target: Path) -> None:
    if lake.catalog_file is not None:
        # SQLite's online backup: a consistent copy even while readers hold the file.
        with sqlite3.connect(lake.catalog_file) as src, sqlite3.connect(target) as dst:
            src.backup(dst)
        target.chmod(0o600)
        return
    dsn, env = _postgres_dsn(lake.catalog)
    subprocess.run(
        [find_binary("pg_dump"), "--format=custom", "--no-owner", f"--file={target}", f"--dbname={dsn}"],
        env=env,
        check=True,
        capture_output=True,
    )


def _postgres_dsn(catalog: str) -> tuple[str, dict]:
    """The libpq string without its password (which goes in PGPASSWORD, never on a command line)."""
    parts = catalog.split(":", 1)[1].split()
    secret = [p.split("=", 1)[1] for p in parts if p.startswith("password=")]
    env = dict(os.environ, **({"PGPASSWORD": secret[0]} if secret else {}))
    return " ".join(p for p in parts if not p.startswith("password=")), env


def _known_hashes(dest: Path) -> dict[str, list]:
    """Sizes and checksums of the data files the newest earlier backup recorded."""
    try:
        return read_manifest(latest(dest)).data_files
    except WarehouseError:
        return {}


def _copy_data(src: Path, store: Path, known: dict[str, list]) -> tuple[dict[str, list], tuple[int, int]]:
    """Every data file under `src` into `store`, copying only those not there yet."""
    files, n, size = {}, 0, 0
    for path in sorted(p for p in src.rglob("*") if p.is_file()):
        rel = str(path.relative_to(src))
        target = store / rel
        st = path.stat().st_size
        if target.exists() and target.stat().st_size == st and rel in known:
            files[rel] = known[rel]
            continue
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        partial = target.with_name(f".{target.name}.partial")
        shutil.copyfile(path, partial)
        os.replace(partial, target)
        files[rel] = [st, _sha256(target)]
        n, size = n + 1, size + st
    return files, (n, size)


def _manifest(conn, lake: Lake, catalog: Path, files: dict, copied: tuple[int, int]) -> Manifest:
    offsets = conn.execute(
        "SELECT group_id || ' ' || topic || '/' || \"partition\", max(next_offset) FROM consumer_offsets "
        "GROUP BY ALL ORDER BY 1"
    ).fetchall()
    return Manifest(
        created_at=datetime.now(timezone.utc).isoformat(),
        catalog_kind=lake.kind,
        duckdb_version=duckdb.__version__,
        catalog_sha256=_sha256(catalog),
        snapshot_id=conn.execute("SELECT id FROM lake.current_snapshot()").fetchall()[0][0],
        migrations=[n for (n,) in conn.execute("SELECT name FROM schema_migrations ORDER BY number").fetchall()],
        stored_offsets=dict(offsets),
        events=conn.execute("SELECT count(*) FROM raw_events").fetchall()[0][0],
        data_files=files,
        copied_files=copied[0],
        copied_bytes=copied[1],
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


def prune(dest: Path, keep: int) -> list[Path]:
    """Remove all but the `keep` newest backups under `dest`, and the data files none of the rest needs."""
    found = sorted(p for p in dest.glob("clinicflow-*") if (p / MANIFEST).is_file())
    gone = found[:-keep] if keep else []
    for p in gone:
        shutil.rmtree(p)
    needed = {rel for p in found[len(gone) :] for rel in read_manifest(p).data_files}
    store = dest / DATA
    for path in [p for p in store.rglob("*") if p.is_file()] if store.exists() else []:
        if str(path.relative_to(store)) not in needed:
            path.unlink()
    return gone


def verify(folder: Path) -> Manifest:
    """The backup's manifest, once its catalog and every data file match their checksums."""
    manifest = read_manifest(folder)
    catalog = folder / CATALOG.get(manifest.catalog_kind, "?")
    if not catalog.is_file() or _sha256(catalog) != manifest.catalog_sha256:
        raise WarehouseError(f"{catalog} does not match its manifest's checksum; the backup is damaged")
    store = folder.parent / DATA
    for rel, (size, sha) in manifest.data_files.items():
        path = store / rel
        if not path.is_file() or path.stat().st_size != size or _sha256(path) != sha:
            raise WarehouseError(f"{path} is missing or does not match its checksum; the backup is damaged")
    if manifest.duckdb_version != duckdb.__version__:
        raise WarehouseError(
            f"{folder} was written by DuckDB {manifest.duckdb_version}, this release uses {duckdb.__version__}; "
            "restore it with the release that made it"
        )
    return manifest


def restore(src: Path, lake: Lake, force: bool = False) -> Manifest:
    """Put the backup `src` (a backup folder, or a folder of them: the newest) in place of `lake`.

    An existing lake is never overwritten silently: with `force` its catalog file and data
    folder are moved aside first (kept, with a suffix). A PostgreSQL catalog is restored with
    pg_restore into the database the settings name, which must be empty or `force` given.
    """
    folder = src if (src / MANIFEST).is_file() else latest(src)
    manifest = verify(folder)
    if manifest.catalog_kind != lake.kind:
        raise WarehouseError(
            f"{folder} holds a {manifest.catalog_kind} catalog and the settings name a {lake.kind} one; "
            "set CLINICFLOW_WAREHOUSE_CATALOG to match"
        )
    _move_aside([p for p in (lake.catalog_file, lake.data_path) if p is not None], force)
    _restore_data(folder.parent / DATA, lake.data_path, manifest)
    _restore_catalog(folder / CATALOG[lake.kind], lake, force)
    return manifest


def _move_aside(paths: list[Path], force: bool) -> None:
    present = [p for p in paths if p.exists() and (p.is_file() or any(p.iterdir()))]
    if not present:
        return
    if not force:
        raise WarehouseError(
            f"{present[0]} exists; move it away or pass --force (it is then kept beside as *.replaced-<time>)"
        )
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    for p in present:
        for extra in (*(p.with_name(p.name + x) for x in ("-wal", "-shm", "-journal")), p):
            if extra.exists():
                extra.rename(extra.with_name(f"{extra.name}.replaced-{stamp}"))


def _restore_data(store: Path, data_path: Path, manifest: Manifest) -> None:
    for rel in manifest.data_files:
        target = data_path / rel
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        partial = target.with_name(f".{target.name}.restoring")
        shutil.copyfile(store / rel, partial)
        os.replace(partial, target)


def _restore_catalog(copy: Path, lake: Lake, force: bool) -> None:
    if lake.catalog_file is not None:
        lake.catalog_file.parent.mkdir(parents=True, exist_ok=True)
        partial = lake.catalog_file.with_name(f".{lake.catalog_file.name}.restoring")
        shutil.copyfile(copy, partial)
        partial.chmod(0o600)
        point_at(partial, lake.data_path)  # where the files were put: the lake may have moved disks
        os.replace(partial, lake.catalog_file)
        return
    dsn, env = _postgres_dsn(lake.catalog)
    args = [find_binary("pg_restore"), "--no-owner", f"--dbname={dsn}", *(["--clean", "--if-exists"] if force else [])]
    done = subprocess.run([*args, str(copy)], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise WarehouseError(f"pg_restore into the catalog database failed: {done.stderr.strip()[:400]}")
