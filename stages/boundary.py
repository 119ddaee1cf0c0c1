"""The stages' boundary: whatever fails inside a stage leaves it as one project error naming the stage.

Errors already classified below (a transient Kafka error, a locked warehouse) keep their
class, so retries and exit codes still depend on it; their message gains the stage's name.
Anything else (a raw DuckDB or OS error) becomes a StageError with the fix where one is known.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator

import duckdb

from core.errors import ClinicflowError
from stages.exceptions import StageError
from warehouse.db import fix_for


@contextlib.contextmanager
def stage_boundary(stage: str) -> Iterator[None]:
    try:
        yield
    except ClinicflowError as e:
        if str(e).startswith(f"{stage}: "):
            raise
        raise _renamed(e, f"{stage}: {e}") from e
    except (duckdb.Error, OSError) as e:
        text = " ".join(str(e).split())
        raise StageError(f"{stage}: {type(e).__name__}: {text}; {fix_for(text)}") from e


def _renamed(e: ClinicflowError, message: str) -> ClinicflowError:
    try:
        renamed = type(e)(message)
    except TypeError:  # an error class with a constructor of its own: keep it as it is
        return e
    renamed.__dict__.update(e.__dict__)
    return renamed


def stage(name: str):
    """Decorate a stage's core function with its boundary."""

    def wrap(fn):
        @functools.wraps(fn)
        def run(*args, **kwargs):
            with stage_boundary(name):
                return fn(*args, **kwargs)

        return run

    return wrap
