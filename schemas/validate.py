"""Bytes in, a typed event or a Rejection out: invalid input is a value, never an escaping exception."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pydantic import TypeAdapter, ValidationError

from schemas.common import DEFAULT_SKEW
from schemas.events import EVENT_MODELS, FAMILY_OF, Envelope, Event
from schemas.hygiene import character_errors, date_errors, errors_in, parse_pairs, suspicious, top_level

# malformed_json | schema | wrong_topic | unknown_event_type | unsupported_version, and from landing: unprocessable
ErrorKind = str
EVENT_ADAPTER: TypeAdapter = TypeAdapter(Event)
DEFAULT_MAX_BYTES = 1_048_576
BOM = b"\xef\xbb\xbf"
_TAGS = set(EVENT_MODELS) | {"esketamine_nasal", "racemic_iv"}
_OTHER_MODALITY = {
    "racemic_iv": {"dose_mg", "lot_number"},
    "esketamine_nasal": {"weight_kg", "dose_mg_per_kg", "infusion_minutes"},
}


@dataclass(frozen=True)
class Rejection:
    """Why a message cannot be accepted, with every error found."""

    error_kind: ErrorKind
    errors: list[dict[str, str]]
    event_id: str | None = None
    event_type: str | None = None
    raw: bytes = field(default=b"", repr=False)
    codes: tuple[str, ...] = ()  # one machine code per error (pydantic's type or ours), for public_errors

    def errors_json(self) -> str:
        return json.dumps(self.errors, ensure_ascii=False)


def typed(kind: ErrorKind, errors: list[dict[str, str]], event_id=None, event_type=None, raw: bytes = b"") -> Rejection:
    """A Rejection from errors that carry their code under "type" (taken out of the errors)."""
    codes = tuple(e.get("type", kind) for e in errors)
    return Rejection(kind, [{"loc": e["loc"], "msg": e["msg"]} for e in errors], event_id, event_type, raw, codes)


@dataclass(frozen=True)
class Clock:
    """The pipeline's clock: `now` may be set (backfill, replay, tests)."""

    now: datetime
    skew: timedelta = DEFAULT_SKEW

    def context(self) -> dict[str, Any]:
        return {"now": self.now, "skew": self.skew}


def validate_event(
    raw: bytes, clock: Clock, family: str | None = None, max_bytes: int = DEFAULT_MAX_BYTES
) -> Envelope | Rejection:
    """Validate one message; `family` (intake/sessions/followups) enables the wrong_topic check."""
    if len(raw) > max_bytes:
        return typed(
            "schema",
            [{"loc": "", "type": "too_large", "msg": f"message is {len(raw)} bytes; the limit is {max_bytes}"}],
            raw=raw,
        )
    try:
        event = EVENT_ADAPTER.validate_json(raw, context=clock.context())
    except ValidationError as e:
        return _rejection(raw, e)
    except (ValueError, RecursionError, ArithmeticError) as e:  # belt and braces: nothing escapes
        return typed("malformed_json", [{"loc": "", "type": "json_invalid", "msg": f"cannot parse: {e}"}], raw=raw)
    extra = (character_errors(raw) if suspicious(raw, event) else []) + date_errors(event)
    if extra:
        return typed("schema", extra, str(event.event_id), event.event_type, raw)
    if family is not None and FAMILY_OF[event.event_type] != family:
        return _wrong_topic(event, family, raw)
    return event


def _wrong_topic(event: Envelope, family: str, raw: bytes) -> Rejection:
    msg = (
        f"{event.event_type} belongs on the {FAMILY_OF[event.event_type]} topic, not the {family} topic; "
        "publish it to its family's topic"
    )
    return typed(
        "wrong_topic",
        [{"loc": "event_type", "type": "wrong_topic", "msg": msg}],
        str(event.event_id),
        event.event_type,
        raw,
    )


def _rejection(raw: bytes, e: ValidationError) -> Rejection:
    errs = e.errors(include_url=False, include_input=False)
    if errs and errs[0]["type"] == "json_invalid":
        msg = errs[0]["msg"]
        if raw.startswith(BOM):
            msg = "the message starts with a UTF-8 byte-order mark (EF BB BF); send the JSON without it"
        return typed("malformed_json", [{"loc": "", "type": "json_invalid", "msg": msg}], raw=raw)
    if errs and errs[0]["type"] == "model_type" and not errs[0]["loc"]:
        return typed("schema", [{"loc": "", "type": "model_type", "msg": "the message must be a JSON object"}], raw=raw)
    # Only on the reject path, one more parse: what we can read for the verdict and the DLQ headers,
    # and the repeated keys and odd characters pydantic's parser cannot see.
    doc = parse_pairs(raw)
    head = top_level(doc)
    event_id, event_type = _as_str(head.get("event_id")), _as_str(head.get("event_type"))
    kind = _kind(errs, head)
    errors = [{**_error(err, head), "type": err["type"]} for err in errs]
    errors += errors_in(doc)
    return typed(kind, errors, event_id, event_type, raw)


def _as_str(v: object) -> str | None:
    return v if isinstance(v, str) else None


def _kind(errs: list[dict], head: dict) -> ErrorKind:
    if any(err["type"] == "union_tag_invalid" and not err["loc"] for err in errs):
        return "unknown_event_type" if isinstance(head.get("event_type"), str) else "schema"
    version = head.get("schema_version")
    if isinstance(version, int) and not isinstance(version, bool) and version != 1:
        return "unsupported_version"
    return "schema"


def _loc(loc: tuple) -> str:
    out = ""
    for i, part in enumerate(loc):
        if isinstance(part, int):
            out += f"[{part}]"
        elif not (part in _TAGS and i in (0, 2)):  # the union tags pydantic puts in the path
            out += f".{part}" if out else str(part)
    return out


def _error(err: dict, head: dict) -> dict[str, str]:
    loc, typ, msg = _loc(err["loc"]), err["type"], err["msg"]
    if typ == "union_tag_not_found" and not err["loc"]:
        return {"loc": "event_type", "msg": f"event_type is required; one of {sorted(EVENT_MODELS)}"}
    if typ == "union_tag_invalid" and not err["loc"]:
        return {
            "loc": "event_type",
            "msg": f"unknown event_type {head.get('event_type')!r}; one of {sorted(EVENT_MODELS)}",
        }
    if typ == "union_tag_invalid" and loc == "payload":
        return {"loc": "payload.modality", "msg": "modality must be 'esketamine_nasal' or 'racemic_iv'"}
    if typ == "union_tag_not_found" and loc == "payload":
        return {"loc": "payload.modality", "msg": "modality is required: 'esketamine_nasal' or 'racemic_iv'"}
    if typ == "extra_forbidden":
        return {"loc": loc, "msg": _extra_msg(err["loc"], loc)}
    if typ == "missing":
        msg = "required field is missing"
    elif typ == "value_error":
        msg = msg.removeprefix("Value error, ")
    if loc == "schema_version" and typ in ("less_than_equal", "greater_than_equal"):
        msg = f"schema_version {head.get('schema_version')!r} is not supported; this pipeline reads version 1"
    return {"loc": loc, "msg": msg}


def _extra_msg(raw_loc: tuple, loc: str) -> str:
    name = raw_loc[-1]
    for modality, fields in _OTHER_MODALITY.items():
        if modality in raw_loc and name in fields:
            return f"{name} is not allowed on a {modality} session; remove it (it belongs to the other modality)"
    return f"unknown field {name!r}; the contract rejects fields it does not define (check the spelling)"


def file_lines(lines):
    """(line number, bytes) of a JSON Lines file, without the line ends and without a byte-order mark
    at the start of the file (an editor's encoding marker, not part of the first event)."""
    for n, line in enumerate(lines, start=1):
        if n == 1 and line.startswith(BOM):
            line = line[len(BOM) :]
        yield n, line.rstrip(b"\r\n")


def verdicts(lines, clock: Clock, max_bytes: int = DEFAULT_MAX_BYTES):
    """`clinicflow validate` output: one verdict dict per input line (bytes), streamed."""
    for n, raw in file_lines(lines):
        if not raw.strip():
            result = typed(
                "malformed_json", [{"loc": "", "type": "json_invalid", "msg": "empty line; one JSON object per line"}]
            )
        else:
            result = validate_event(raw, clock, max_bytes=max_bytes)
        yield verdict(n, result)


def verdict(line: int, result: Envelope | Rejection) -> dict:
    if isinstance(result, Rejection):
        return {
            "line": line,
            "valid": False,
            "event_type": result.event_type,
            "event_id": result.event_id,
            "error_kind": result.error_kind,
            "errors": result.errors,
        }
    return {
        "line": line,
        "valid": True,
        "event_type": result.event_type,
        "event_id": str(result.event_id),
        "error_kind": None,
        "errors": [],
    }
