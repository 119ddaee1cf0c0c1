"""Shapes shared by many event types (contract/EVENTS.md, "Shared shapes")."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone
from functools import lru_cache
from typing import Annotated, Literal
from zoneinfo import available_timezones

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
)

RFC3339 = r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$"
_RFC3339 = re.compile(RFC3339)
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
EPOCH_FLOOR = datetime(2000, 1, 1, tzinfo=timezone.utc)
DEFAULT_SKEW = timedelta(minutes=5)


class Strict(BaseModel):
    """Every contract model: unknown fields rejected, no silent type coercion, immutable."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False)


def _parse_timestamp(value: object) -> datetime:
    if not isinstance(value, str) or not _RFC3339.match(value):
        raise ValueError(
            "must be an RFC 3339 timestamp with an explicit offset, e.g. 2026-03-01T14:30:00Z "
            "or 2026-03-01T09:30:00-05:00"
        )
    try:
        ts = datetime.fromisoformat(value)
    except ValueError:
        try:
            # fromisoformat keeps microseconds only; trim nanoseconds a publisher may send.
            ts = datetime.fromisoformat(re.sub(r"(\.\d{6})\d+", r"\1", value.replace(" ", "T")))
        except ValueError as e:
            raise ValueError(f"is not a real date and time ({e})") from None
    return _floored(ts)


def _floored(ts: datetime) -> datetime:
    # Comparing converts to UTC, which overflows for 0001-01-01T00:00+01:00 or 9999-12-31T23:59-01:00.
    try:
        early = ts < EPOCH_FLOOR
    except OverflowError:
        raise ValueError(
            "is outside the dates a clinic records (2000-01-01 onwards); check the publisher's clock"
        ) from None
    if early:
        raise ValueError("is before 2000-01-01; check the publisher's clock")
    return ts


def _parse_occurred_at(value: object, info: ValidationInfo) -> datetime:
    ts = _parse_timestamp(value)
    ctx = info.context or {}
    now: datetime | None = ctx.get("now")
    if now is not None and ts > now + ctx.get("skew", DEFAULT_SKEW):
        raise ValueError(
            f"is {(ts - now).total_seconds():.0f}s ahead of the pipeline's clock ({now.isoformat()}); "
            "more than the allowed skew: check the publisher's clock"
        )
    return ts


def _parse_date(value: object) -> date:
    if not isinstance(value, str) or not _DATE.match(value):
        raise ValueError("must be a date as YYYY-MM-DD")
    try:
        day = date.fromisoformat(value)
    except ValueError as e:
        raise ValueError(f"is not a real date ({e})") from None
    if day < EPOCH_FLOOR.date():
        raise ValueError("is before 2000-01-01; check the publisher's clock")
    return day


_TS_SCHEMA = {"type": "string", "format": "date-time", "pattern": RFC3339}
# Explicit serializers: pydantic's default one for a plain-validated datetime warns on every dump.
_ISO = PlainSerializer(lambda v: v.isoformat(), return_type=str)
Timestamp = Annotated[
    datetime,
    PlainValidator(_parse_timestamp),
    _ISO,
    WithJsonSchema(
        {**_TS_SCHEMA, "description": "Not before 2000-01-01, nor more than two years after the event's occurred_at."}
    ),
]
OccurredAt = Annotated[
    datetime,
    PlainValidator(_parse_occurred_at),
    _ISO,
    WithJsonSchema(
        {**_TS_SCHEMA, "description": "Not before 2000-01-01; at most 5 minutes ahead of the pipeline's clock."}
    ),
]
Day = Annotated[
    date,
    PlainValidator(_parse_date),
    _ISO,
    WithJsonSchema(
        {
            "type": "string",
            "format": "date",
            "pattern": _DATE.pattern,
            "description": "Not before 2000-01-01, nor more than two years after occurred_at.",
        }
    ),
]

Channel = Literal["sms", "email", "phone"]
Phase = Literal["induction", "maintenance", "booster"]
AdverseEventCode = Literal[
    "nausea",
    "vomiting",
    "dizziness",
    "headache",
    "hypertension",
    "sedation",
    "dissociation",
    "anxiety",
    "respiratory_depression",
    "other",
]
Severity = Literal["mild", "moderate", "severe", "serious"]
SessionId = Annotated[str, Field(min_length=1, max_length=64, description="Unique per clinic.")]

Item = Annotated[int, Field(ge=0, le=3)]
Phq9Items = Annotated[
    list[Item], Field(min_length=9, max_length=9, description="Exactly 9 PHQ-9 item scores, 0..3 each; item 9 is last.")
]
Gad7Items = Annotated[
    list[Item], Field(min_length=7, max_length=7, description="Exactly 7 GAD-7 item scores, 0..3 each.")
]


class BloodPressure(Strict):
    """One blood-pressure reading in mmHg."""

    systolic: int = Field(ge=60, le=260, description="Systolic pressure, 60..260 mmHg.")
    diastolic: int = Field(ge=30, le=160, description="Diastolic pressure, 30..160 mmHg; below systolic.")

    @field_validator("diastolic")
    @classmethod
    def _below_systolic(cls, v: int, info: ValidationInfo) -> int:
        sys_ = info.data.get("systolic")
        if sys_ is not None and v >= sys_:
            raise ValueError(f"diastolic {v} must be below systolic {sys_}; check that the two are not swapped")
        return v


class AdverseEvent(Strict):
    """An adverse event observed during a session."""

    code: AdverseEventCode = Field(description="What happened.")
    severity: Severity = Field(description="How bad: mild, moderate, severe or serious.")


def models_in(annotation) -> Iterator[type[BaseModel]]:
    """The pydantic models an annotation names, through Optional, list, Annotated and unions."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
        return
    for arg in getattr(annotation, "__args__", ()) or ():
        yield from models_in(arg)


@lru_cache(maxsize=1)
def iana_zones() -> frozenset[str]:
    """IANA zone names known to the bundled tzdata."""
    return frozenset(available_timezones())
