"""Contract rules that pydantic's JSON parsing cannot see by itself.

- A key twice in one object: the parser keeps the last value, so one message
  could name two patients. Rejected, loc at the key.
- Control and invisible format characters (Unicode Cc, Cf) in any string:
  NUL, zero-width space, right-to-left override hide or disguise identifiers.
- Dates inside a payload more than two years after the event's occurred_at
  (the 2000-01-01 floor is checked by the field types themselves).

Both character checks run on the raw bytes. The common message (ASCII, no
escapes, every key counted once) is cleared by a few byte scans; only a
suspicious one is parsed again, in Python, to find the exact field.
"""

from __future__ import annotations

import json
import re
import sys
import unicodedata
from datetime import date, datetime, timedelta
from functools import lru_cache

from pydantic import BaseModel

from schemas.common import models_in
from schemas.events import Envelope

# Payload fields that hold a timestamp or a date, per event type.
DATED: dict[str, tuple[str, ...]] = {
    "rems.enrolled": ("enrolled_on",),
    "session.scheduled": ("scheduled_for",),
    "session.completed": ("started_at", "ended_at"),
    "rems.form_submitted": ("submitted_on",),
    "adverse_event.reported": ("onset_at",),
    "outreach.requested": ("send_after",),
    "clinical.alert": ("raised_at",),
}
MAX_YEARS_AHEAD = 2


class _Pairs(list):
    """A JSON object as parsed: its (key, value) pairs in order, duplicates kept."""


def _pairs(pairs: list) -> _Pairs:
    return _Pairs(pairs)


_NESTED: dict[type, tuple[str, ...]] = {}


def _nested(cls: type[BaseModel]) -> tuple[str, ...]:
    """The fields of a model that can hold models (or lists of them); computed once per class."""
    found = _NESTED.get(cls)
    if found is None:
        found = _NESTED[cls] = tuple(
            name for name, f in cls.model_fields.items() if next(models_in(f.annotation), None) is not None
        )
    return found


def _keys_set(model: BaseModel) -> int:
    """How many keys the JSON behind a validated model held (each counted once)."""
    fields = model.__pydantic_fields_set__
    total = len(fields)
    values = model.__dict__
    for name in _nested(type(model)):
        v = values[name] if name in fields else None
        if isinstance(v, BaseModel):
            total += _keys_set(v)
        elif v:
            total += sum(_keys_set(x) for x in v)
    return total


def suspicious(raw: bytes, event: Envelope | None) -> bool:
    """False when the bytes can hold neither a repeated key nor a Cc/Cf character.

    Non-ASCII bytes, DEL and \\u escapes can spell Cc/Cf characters. A key
    repeated makes the text hold more `":` than the model has keys set (string
    values are the same in both, escaped the same way when ASCII and free of
    \\u escapes); a space before a colon defeats that count, so it is suspicious too.
    """
    if event is None or not raw.isascii() or b"\\u" in raw or b"\x7f" in raw:
        return True
    # A quote followed by white space never occurs in compact or json.dumps-style JSON.
    if b'" ' in raw or b'"\t' in raw or b'"\n' in raw or b'"\r' in raw:
        return True
    return raw.count(b'":') != _keys_set(event)


_NOT_JSON = object()


def parse_pairs(raw: bytes):
    """The bytes parsed with every object's pairs kept in order, duplicates included; _NOT_JSON if not JSON."""
    try:
        return json.loads(raw, object_pairs_hook=_pairs)
    except (ValueError, RecursionError):
        return _NOT_JSON


def top_level(doc) -> dict:
    """The top-level object as a dict (the last of a repeated key wins, as in any JSON reader); {} otherwise."""
    return dict(doc) if isinstance(doc, _Pairs) else {}


def errors_in(doc) -> list[dict[str, str]]:
    """Repeated keys and Cc/Cf characters in a parse_pairs result, each with its loc and type."""
    errors: list[dict[str, str]] = []
    if doc is not _NOT_JSON:
        _walk(doc, (), errors)
    return errors


def character_errors(raw: bytes) -> list[dict[str, str]]:
    """Repeated keys and Cc/Cf characters, each with its loc and type; [] when the bytes are not JSON."""
    return errors_in(parse_pairs(raw))


def _loc(path: tuple) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            part = _printable(part)
            out += f".{part}" if out else part
    return out


def _walk(node, path: tuple, errors: list[dict[str, str]]) -> None:
    if isinstance(node, _Pairs):
        seen: set[str] = set()
        for key, value in node:
            here = (*path, key)
            _check_text(key, here, errors, what="key")
            if key in seen:
                errors.append(
                    {
                        "loc": _loc(here),
                        "type": "duplicate_key",
                        "msg": f"key {_printable(key)!r} appears more than once in this object; send each field once",
                    }
                )
            seen.add(key)
            _walk(value, here, errors)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            _walk(value, (*path, i), errors)
    elif isinstance(node, str):
        _check_text(node, path, errors, what="value")


@lru_cache(maxsize=1)
def _forbidden() -> re.Pattern:
    """One character class of every Cc and Cf code point (built on first use: it scans Unicode once)."""
    chars = "".join(
        re.escape(chr(c)) for c in range(sys.maxunicode + 1) if unicodedata.category(chr(c)) in ("Cc", "Cf")
    )
    return re.compile(f"[{chars}]")


def _check_text(text: str, path: tuple, errors: list[dict[str, str]], what: str) -> None:
    if text.isprintable():  # False for every Cc and Cf character (and for a few harmless others)
        return
    found = _forbidden().search(text)
    if found is not None:
        i, ch = found.start(), found.group()
        errors.append(
            {
                "loc": _loc(path),
                "type": "control_character",
                "msg": f"the {what} holds the control or invisible format character "
                f"U+{ord(ch):04X} ({unicodedata.name(ch, 'a control character')}) at position "
                f"{i}; remove it",
            }
        )


def _printable(text: str) -> str:
    if text.isprintable():
        return text
    return "".join(f"\\u{ord(c):04x}" if unicodedata.category(c) in ("Cc", "Cf") else c for c in text)


def _plus_years(ts: datetime, years: int) -> datetime:
    try:
        return ts.replace(year=ts.year + years)
    except ValueError:  # 29 February
        return ts.replace(year=ts.year + years, day=28)


def date_errors(event: Envelope) -> list[dict[str, str]]:
    """Payload timestamps and dates more than two years after occurred_at."""
    names = DATED.get(event.event_type)
    if not names:
        return []
    payload = event.payload
    errors = []
    for name in names:
        v = getattr(payload, name, None)
        if v is None or _surely_within(v, event.occurred_at):
            continue
        ceiling = _plus_years(event.occurred_at, MAX_YEARS_AHEAD)
        late = v > ceiling.date() if type(v) is date else _after(v, ceiling)
        if late:
            errors.append(
                {
                    "loc": f"payload.{name}",
                    "type": "date_range",
                    "msg": f"{v.isoformat()} is more than {MAX_YEARS_AHEAD} years "
                    f"after occurred_at {event.occurred_at.isoformat()}; "
                    "check the publisher's clock",
                }
            )
    return errors


_TWO_YEARS_AT_LEAST = timedelta(days=730)


def _surely_within(v: date | datetime, occurred_at: datetime) -> bool:
    """The cheap test first: 730 days never exceed two calendar years."""
    try:
        if type(v) is date:
            return v <= (occurred_at + _TWO_YEARS_AT_LEAST).date()
        return v <= occurred_at + _TWO_YEARS_AT_LEAST
    except OverflowError:
        return False


def _after(ts: datetime, ceiling: datetime) -> bool:
    try:
        return ts > ceiling
    except OverflowError:  # an offset that pushes 9999-12-31 past the last representable instant
        return True
