"""Great Expectations over each landed batch (GX Core 1.x, pandas, ephemeral context).

GX has no DuckDB data source and its SQLAlchemy path fails with duckdb-engine,
so the batch's fresh rows are pulled as a DataFrame and validated there. A
failed expectation is recorded with the batch; it never drops valid events.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone
from functools import lru_cache

import pandas as pd

from core.privacy import no_phone_home
from schemas.events import EVENT_MODELS
from schemas.validate import Clock

no_phone_home()  # before Great Expectations is first imported: no usage statistics leave the machine
MAX_STORED_CHARS = 20_000


@lru_cache(maxsize=1)
def _batch_validation():
    # lazy: Great Expectations takes seconds to import; only writers that check batches pay it
    import great_expectations as gx  # noqa: PLC0415
    import great_expectations.expectations as gxe  # noqa: PLC0415

    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    ctx = gx.get_context(mode="ephemeral")
    ctx.variables.progress_bars = {"globally": False}
    asset = ctx.data_sources.add_pandas("ingest").add_dataframe_asset("landed_batch")
    batch_def = asset.add_batch_definition_whole_dataframe("whole")
    suite = ctx.suites.add(gx.ExpectationSuite(name="landed_batch"))
    for exp in (
        gxe.ExpectColumnValuesToNotBeNull(column="event_id"),
        gxe.ExpectColumnValuesToBeUnique(column="event_id"),
        gxe.ExpectColumnValuesToNotBeNull(column="patient_id"),
        gxe.ExpectColumnValuesToMatchRegex(column="patient_id", regex=r"^[A-Za-z0-9_-]{4,64}$"),
        gxe.ExpectColumnValuesToBeInSet(column="event_type", value_set=sorted(EVENT_MODELS)),
        gxe.ExpectColumnValuesToNotBeNull(column="occurred_at"),
        gxe.ExpectColumnValuesToBeBetween(
            column="occurred_at_epoch_s", min_value=946_684_800, max_value={"$PARAMETER": "max_epoch_s"}
        ),
    ):
        suite.add_expectation(exp)
    return ctx.validation_definitions.add(gx.ValidationDefinition(name="landed_batch", data=batch_def, suite=suite))


def warm_up() -> None:
    """Import GX and build the batch suite now rather than inside the first batch."""
    _batch_validation()


def check_batch(df: pd.DataFrame, clock: Clock) -> tuple[bool | None, str | None]:
    """(success, result JSON) for the batch's newly landed rows; (None, None) when nothing landed."""
    if df.empty:
        return None, None
    frame = df[["event_id", "patient_id", "event_type", "occurred_at"]].copy()
    frame["occurred_at_epoch_s"] = frame["occurred_at"].map(lambda t: t.timestamp())
    max_epoch = (clock.now + clock.skew).timestamp()
    result = _batch_validation().run(
        batch_parameters={"dataframe": frame},
        expectation_parameters={"max_epoch_s": max_epoch},
        result_format="SUMMARY",
    )
    return bool(result.success), summarize(result)


def summarize(result) -> str:
    """A capped JSON summary: which expectations failed and how many rows each."""
    failed = [
        {
            "expectation": r.expectation_config.type,
            "column": r.expectation_config.kwargs.get("column"),
            "unexpected_count": (r.result or {}).get("unexpected_count"),
            "sample": (r.result or {}).get("partial_unexpected_list", [])[:5],
        }
        for r in result.results
        if not r.success
    ]
    stats = result.statistics
    text = json.dumps(
        {
            "success": bool(result.success),
            "evaluated": stats.get("evaluated_expectations"),
            "failed": failed,
            "checked_at": datetime.now(timezone.utc).isoformat(),
        },
        default=str,
    )
    return text[:MAX_STORED_CHARS]
