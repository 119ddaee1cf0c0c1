"""No single message stops ingestion: find the one a batch cannot land, quarantine it, land the rest.

A message that passes validation can still break landing or planning: a defect
of the pipeline's, met by one odd event. Without isolation its batch rolls back
on every restart and nothing after it lands, clinical alerts included. Here a
failed batch is searched for the first message whose prefix fails (a binary
search over trial landings that are rolled back), that message becomes a
rejection of kind `unprocessable` (quarantine with its bytes, DLQ copy, the
error's one-line description), and the batch is landed again.

Only defects are isolated. Failures of the machine (disk, memory, a lock, an
invalidated database) are not any message's fault: they propagate unchanged,
and nothing is quarantined for them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import duckdb

from schemas.messages import Message
from schemas.validate import Clock
from warehouse.exceptions import PartitionsLostError, WarehouseError, WarehouseLockedError
from warehouse.landing import BatchResult, LandingConfig, land_batch

log = logging.getLogger("clinicflow.poison")
# Failures of the environment, never of one message.
ENVIRONMENTAL = (
    OSError,
    MemoryError,
    duckdb.IOException,
    duckdb.OutOfMemoryException,
    duckdb.FatalException,
    duckdb.InterruptException,
    duckdb.ConnectionException,
    duckdb.TransactionException,
    WarehouseLockedError,
    PartitionsLostError,  # the worker's, not the message's: the batch is dropped whole
)
# How many messages one batch may lose to isolation before we stop and say so.
MAX_PER_BATCH = 50

Lander = Callable[..., BatchResult]


def root_cause(e: BaseException) -> BaseException:
    """The error behind our own wrapping (WarehouseError from a duckdb.Error, say)."""
    while isinstance(e, WarehouseError) and e.__cause__ is not None:
        e = e.__cause__
    return e


def isolatable(e: BaseException) -> bool:
    """A defect that one input may cause, rather than a failure of disk, memory or locks."""
    return (
        isinstance(e, Exception) and not isinstance(e, ENVIRONMENTAL) and not isinstance(root_cause(e), ENVIRONMENTAL)
    )


def describe(e: BaseException) -> str:
    """The error's one-line description, for quarantine and the DLQ header."""
    cause = root_cause(e)
    text = " ".join(str(cause).split()) or "no message"
    return f"{type(cause).__name__}: {text}"[:500]


def land_isolating(
    conn: duckdb.DuckDBPyConnection,
    messages: Sequence[Message],
    clock: Clock,
    cfg: LandingConfig,
    land: Lander = land_batch,
) -> BatchResult:
    """land_batch, but a message that makes the batch fail is quarantined as unprocessable instead."""
    unprocessable: dict[int, str] = {}
    while True:
        try:
            return land(conn, messages, clock, cfg, unprocessable=unprocessable)
        except Exception as e:
            if not isolatable(e) or len(unprocessable) >= MAX_PER_BATCH:
                raise
            pos, error = _first_failing(conn, messages, clock, cfg, unprocessable, land, e)
            log.warning(
                "message %s/%s@%s cannot be landed (%s); quarantining it as unprocessable",
                messages[pos].topic,
                messages[pos].partition,
                messages[pos].offset,
                error,
            )
            unprocessable[pos] = error


def _first_failing(conn, messages, clock, cfg, unprocessable, land, first_error: Exception) -> tuple[int, str]:
    """The position whose prefix is the shortest that fails, and that failure's description.

    Invariant: messages[:lo] land, messages[:hi] fail. A failure of another kind than the
    batch's, or of the environment, ends the search by propagating the batch's error.
    """
    lo, hi, error = 0, len(messages), describe(first_error)
    if _trial(conn, messages[:0], clock, cfg, unprocessable, land) is not None:
        raise first_error  # not even an empty batch lands: no message is to blame
    while hi - lo > 1:
        mid = (lo + hi) // 2
        failure = _trial(conn, messages[:mid], clock, cfg, unprocessable, land)
        if failure is None:
            lo = mid
        elif isolatable(failure) and type(root_cause(failure)) is type(root_cause(first_error)):
            hi, error = mid, describe(failure)
        else:
            raise first_error
    return lo, error


def _trial(conn, prefix, clock, cfg, unprocessable, land) -> Exception | None:
    try:
        land(
            conn,
            prefix,
            clock,
            cfg,
            unprocessable={p: m for p, m in unprocessable.items() if p < len(prefix)},
            commit=False,
        )
    except Exception as e:  # the failure is the answer the search wants
        return e
    return None
