"""The secret and the writer's lake are their owner's alone; the analysts' lake is shared with a group."""

from __future__ import annotations

import grp
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from clinicflow.simulate import simulate
from stages.ingest import run_load
from tests.factories import event, raw


def mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def test_warehouse_is_private_and_the_analysts_lake_is_group_readable(settings, tmp_path):
    home = tmp_path / "var"
    s = settings.model_copy(
        update={"warehouse_path": home / "clinic.duckdb", "analytics_group": grp.getgrgid(os.getgid()).gr_name}
    )
    f = tmp_path / "h.jsonl"
    f.write_bytes(b"\n".join(simulate(10, seed=3)) + b"\n")  # enough rows for Parquet files (not inlined)
    os.umask(0o022)  # a usual login umask: files would be 0644
    run_load(s, f)
    writers = home / "clinic.writers"  # each writer's spill folder: DuckDB's temp tables hold patient rows
    for p in [writers, *writers.rglob("*")]:
        assert mode(p) & 0o077 == 0, (p, oct(mode(p)))
    assert mode(home) & 0o067 == 0 and mode(home) & 0o010, "others nothing; the group may only pass through"
    lake = home / "clinic.lake"
    for p in [lake, *lake.rglob("*")]:  # the writer's lake (catalog and data): its owner's alone
        assert mode(p) & (0o067 if p.is_dir() else 0o077) == 0, (p, oct(mode(p)))
    analysts = home / "analytics.lake"
    assert mode(analysts) == 0o750 and analysts.stat().st_gid == os.getgid()
    files = [p for p in analysts.rglob("*") if p.is_file()]
    assert any(p.suffix == ".parquet" for p in files) and (analysts / "catalog.sqlite") in files
    for p in analysts.rglob("*"):
        assert mode(p) & 0o007 == 0 and mode(p) & 0o040, (p, oct(mode(p)))


def test_an_unknown_analysts_group_fails_with_the_setting_to_fix(settings, tmp_path):
    from warehouse.exceptions import WarehouseError

    s = settings.model_copy(update={"analytics_group": "no-such-group-here"})
    f = tmp_path / "h.jsonl"
    f.write_bytes(raw(event("patient.registered")) + b"\n")
    with pytest.raises(WarehouseError, match="CLINICFLOW_ANALYTICS_GROUP"):
        run_load(s, f)


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_writes_the_env_file_for_its_owner_only(tmp_path):
    shutil.copy("Makefile", tmp_path / "Makefile")
    subprocess.run(
        ["make", "-s", ".env"], cwd=tmp_path, check=True, capture_output=True, env={**os.environ, "PYTHON": "python3"}
    )
    assert mode(tmp_path / ".env") == 0o600
    assert (tmp_path / ".env").read_text().startswith("CLINICFLOW_PSEUDONYM_SECRET=")
