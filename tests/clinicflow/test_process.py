"""Process-level tuning of the ingest loop: the collector and the memory figure the benchmark reports."""

from __future__ import annotations

import gc
import subprocess
import sys

from stages.ingest import peak_rss_mib, tune_gc


def test_tune_gc_freezes_start_up_objects_once():
    tune_gc()
    frozen, threshold = gc.get_freeze_count(), gc.get_threshold()
    tune_gc()
    assert frozen > 0 and threshold[0] == 50_000
    assert gc.get_freeze_count() == frozen, "a second call freezes nothing more"


def test_peak_rss_is_the_process_own_not_its_parent():
    big = bytearray(300 * 2**20)
    big[::4096] = b"\x01" * len(big[::4096])  # touch every page: 300 MiB resident here
    child = subprocess.run(
        [sys.executable, "-c", "from stages.ingest import peak_rss_mib; print(peak_rss_mib())"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert peak_rss_mib() >= 300
    assert int(child.stdout) < 300, "the child does not inherit the parent's high-water mark"
    del big
