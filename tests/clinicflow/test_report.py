"""The report renders in a real headless Chromium, and shows the warehouse's own figures."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from datetime import datetime, timezone

import pytest

from clinicflow.report import write_report
from clinicflow.simulate import simulate
from stages.ingest import run_load
from stages.quality import run_quality
from warehouse.analytics import open_analytics
from warehouse.db import Lake

END = datetime(2026, 11, 1, tzinfo=timezone.utc)
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def dump_dom(path) -> str:
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tempfile.mkdtemp()}",
        "--dump-dom",
        f"file://{path}",
    ]
    done = subprocess.run([CHROMIUM, *flags], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_report_renders_in_chromium_with_the_snapshots_figures(settings, tmp_path):
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed; .ci/run installs it (apt-get install chromium)")
        pytest.skip("chromium not installed here (CI installs it)")
    f = tmp_path / "h.jsonl"
    f.write_bytes(b"\n".join(simulate(60, seed=4, end=END)) + b"\n")
    run_load(settings, f, END)
    quality = run_quality(settings, END)  # its results must be readable offline, in the report
    out = write_report(settings, tmp_path / "report.html")
    html = out.read_text()
    assert "<script" not in html and "http" not in html.split("<body>")[1], "self-contained: nothing fetched"
    dom = dump_dom(out)
    snap = open_analytics(Lake.analysts(settings))
    expected = dict(snap.execute("SELECT modality, response_rate FROM outcomes_by_modality").fetchall())
    snap.close()
    assert expected
    for modality, rate in expected.items():
        m = re.search(rf'id="response-rate-{modality}">([0-9.]+)%<', dom)
        assert m, f"no response rate for {modality} on the rendered page"
        assert float(m.group(1)) == pytest.approx(rate * 100, abs=0.05)
    assert dom.count("<svg") >= 4, "charts rendered"
    for suite, ok in quality["suites"].items():
        m = re.search(rf'id="dq-{suite}">(pass|FAIL)<', dom)
        assert m and m.group(1) == ("pass" if ok else "FAIL"), f"data-quality suite {suite} is not on the page"
