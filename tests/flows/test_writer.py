"""Two writer flows never hold the warehouse at once."""

import threading
import time

import pytest

from flows.writer import WRITER_LIMIT, warehouse_writer

pytestmark = pytest.mark.prefect


def test_the_writer_slot_serialises_writers(prefect_harness):
    from prefect.client.orchestration import get_client

    inside, overlaps, log = [0], [], []

    def writer(name):
        with warehouse_writer(timeout_s=60):
            inside[0] += 1
            overlaps.append(inside[0])
            log.append(name)
            time.sleep(0.5)
            inside[0] -= 1

    threads = [threading.Thread(target=writer, args=(n,), daemon=True) for n in ("a", "b", "c")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert sorted(log) == ["a", "b", "c"] and max(overlaps) == 1
    with get_client(sync_client=True) as client:
        assert client.read_global_concurrency_limit_by_name(WRITER_LIMIT).limit == 1


def test_a_writer_that_waits_too_long_fails_with_a_clear_message(prefect_harness):
    from warehouse.exceptions import WarehouseBusyError

    held, release = threading.Event(), threading.Event()

    def holder():
        with warehouse_writer(timeout_s=30):
            held.set()
            release.wait(30)

    t = threading.Thread(target=holder, daemon=True)
    t.start()
    assert held.wait(30)
    try:
        with pytest.raises(WarehouseBusyError, match="CLINICFLOW_WRITER_SLOT_TIMEOUT_S"):
            with warehouse_writer(timeout_s=2):
                pass
    finally:
        release.set()
        t.join(30)
