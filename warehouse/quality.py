"""Great Expectations over each landed batch (GX Core 1.x, pandas, ephemeral context).

GX has no DuckDB data source and its SQLAlchemy path fails with duckdb-engine,
so the batch's fresh rows are pulled as a DataFrame and validated there. A
failed expectation is recorded with the batch; it never drops valid events.

Running the suite costs GX about 70 ms a batch whatever its size, most of a small batch's
time, and importing GX five seconds. So each expectation is first computed column-wise in
pandas, at least as strictly as GX does; only a batch where one fails is given to GX (imported
then), whose result is the one recorded.
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


FIRST_EPOCH_S = 946_684_800  # 2000-01-01
PATIENT_ID = r"^[A-Za-z0-9_-]{4,64}$"
# The batch suite: (GX expectation, its arguments); max_epoch_s is the clock plus its skew.
SUITE: tuple[tuple[str, dict], ...] = (
    ("ExpectColumnValuesToNotBeNull", {"column": "event_id"}),
    ("ExpectColumnValuesToBeUnique", {"column": "event_id"}),
    ("ExpectColumnValuesToNotBeNull", {"column": "patient_id"}),
    ("ExpectColumnValuesToMatchRegex", {"column": "patient_id", "regex": PATIENT_ID}),
    ("ExpectColumnValuesToBeInSet", {"column": "event_type", "value_set": sorted(EVENT_MODELS)}),
    ("ExpectColumnValuesToNotBeNull", {"column": "occurred_at"}),
    (
        "ExpectColumnValuesToBeBetween",
        {"column": "occurred_at_epoch_s", "min_value": FIRST_EPOCH_S, "max_value": {"$PARAMETER": "max_epoch_s"}},
    ),
)


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
    for name, kwargs in SUITE:
        exp = getattr(gxe, name)(**kwargs)
        suite.add_expectation(exp)
    return ctx.validation_definitions.add(gx.ValidationDefinition(name="landed_batch", data=batch_def, suite=suite))


def check_batch(df: pd.DataFrame, clock: Clock) -> tuple[bool | None, str | None]:
    """(success, result JSON) for the batch's newly landed rows; (None, None) when nothing landed."""
    if df.empty:
        return None, None
    frame = df[["event_id", "patient_id", "event_type", "occurred_at"]].copy()
    frame["occurred_at_epoch_s"] = frame["occurred_at"].map(lambda t: None if pd.isna(t) else t.timestamp())
    max_epoch = (clock.now + clock.skew).timestamp()
    if not any(failing(frame, name, kwargs, max_epoch).any() for name, kwargs in SUITE):
        return True, _passed()
    result = _batch_validation().run(
        batch_parameters={"dataframe": frame},
        expectation_parameters={"max_epoch_s": max_epoch},
        result_format="SUMMARY",
    )
    return bool(result.success), summarize(result)


def failing(frame: pd.DataFrame, name: str, kwargs: dict, max_epoch: float) -> pd.Series:
    """The rows one expectation of SUITE rejects, computed column-wise (nulls fail every check
    here, where GX skips them in all but the null checks: never more lenient than GX)."""
    col = frame[kwargs["column"]]
    if name == "ExpectColumnValuesToNotBeNull":
        return col.isna()
    if name == "ExpectColumnValuesToBeUnique":
        return col.duplicated(keep=False)
    if name == "ExpectColumnValuesToMatchRegex":
        return ~col.astype("string").str.fullmatch(kwargs["regex"]).fillna(False).astype(bool)
    if name == "ExpectColumnValuesToBeInSet":
        return ~col.isin(kwargs["value_set"])
    if name == "ExpectColumnValuesToBeBetween":
        return ~col.between(kwargs["min_value"], max_epoch)
    raise ValueError(f"no column-wise check for {name}; add one to warehouse/quality.py")


def _passed() -> str:
    return json.dumps(
        {
            "success": True,
            "evaluated": len(SUITE),
            "failed": [],
            "checked_at": datetime.now(timezone.utc).isoformat(),
            "engine": "columnwise",
        }
    )


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
