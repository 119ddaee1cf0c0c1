"""The secret and the writer's warehouse are their owner's alone; the analysts' snapshot is shared with a group."""

from __future__ import annotations

import grp
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from stages.ingest import run_load
from tests.factories import event, raw


def mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def test_warehouse_is_private_and_snapshot_is_group_readable(settings, tmp_path):
    home = tmp_path / "var"
    s = settings.model_copy(
        update={
            "warehouse_path": home / "clinic.duckdb",
            "analytics_snapshot_path": home / "analytics.duckdb",
            "analytics_group": grp.getgrgid(os.getgid()).gr_name,
        }
    )
    f = tmp_path / "h.jsonl"
    f.write_bytes(raw(event("patient.registered")) + b"\n")
    os.umask(0o022)  # a usual login umask: files would be 0644
    run_load(s, f)
    assert mode(s.warehouse_path) == 0o600
    for extra in home.glob("clinic.duckdb*"):
        assert mode(extra) & 0o077 == 0, (extra, oct(mode(extra)))
    assert mode(home) & 0o067 == 0 and mode(home) & 0o010, "others nothing; the group may only pass through"
    snapshot = s.analytics_snapshot_path.resolve()
    assert mode(snapshot) == 0o640 and mode(snapshot.parent) == 0o750
    assert snapshot.stat().st_gid == os.getgid()


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
