"""One writer at a time: every flow that writes the warehouse holds the `warehouse-writer` slot.

DuckDB allows one writing process per file; a Prefect global concurrency limit
of 1 makes a second writer wait for the first instead of failing on the lock.
"""

from __future__ import annotations

import contextlib
import logging

from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
from prefect.concurrency.asyncio import ConcurrencySlotAcquisitionError
from prefect.concurrency.sync import concurrency
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

from core.settings import get_settings
from warehouse.exceptions import WarehouseBusyError

WRITER_LIMIT = "warehouse-writer"
log = logging.getLogger(__name__)


def ensure_writer_limit() -> None:
    """Create the limit (1 slot) on the Prefect server if it does not exist yet."""
    with get_client(sync_client=True) as client:
        try:
            client.read_global_concurrency_limit_by_name(WRITER_LIMIT)
        except ObjectNotFound:
            try:
                client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=WRITER_LIMIT, limit=1))
            except ObjectAlreadyExists:  # another writer created it first
                pass


@contextlib.contextmanager
def warehouse_writer(timeout_s: float | None = None):
    """Hold the writer slot for the body; waits up to timeout_s (the setting by default) for another writer."""
    timeout_s = timeout_s or get_settings().writer_slot_timeout_s
    ensure_writer_limit()
    stack = contextlib.ExitStack()
    try:
        stack.enter_context(concurrency(WRITER_LIMIT, occupy=1, timeout_seconds=timeout_s, strict=True))
    except (TimeoutError, ConcurrencySlotAcquisitionError) as e:
        raise WarehouseBusyError(
            f"another flow held the warehouse-writer slot for {timeout_s:.0f}s; wait for it "
            "(see its run in the Prefect UI) or raise CLINICFLOW_WRITER_SLOT_TIMEOUT_S"
        ) from e
    with stack:
        yield
