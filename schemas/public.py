"""Rejections as analysts may see them: what kind of error, where, and never the input itself.

A rejection's own messages quote what the publisher sent (an unknown event type,
a value, a misspelt field name that may be an e-mail address): right for the
publisher and the operators, wrong for analysts, who see pseudonymous data only.
Here each error keeps its loc, with any segment the contract does not define
replaced, and gets a fixed message chosen by its code.
"""

from __future__ import annotations

import json
import re

from pydantic import BaseModel

from schemas.common import models_in
from schemas.events import EVENT_MODELS

UNKNOWN_FIELD = "<field not in the contract>"
PUBLIC_MESSAGES = {
    "missing": "required field is missing",
    "extra_forbidden": "field not in the contract",
    "json_invalid": "not valid JSON",
    "too_large": "message over the size limit",
    "model_type": "must be a JSON object",
    "model_attributes_type": "must be a JSON object",
    "dict_type": "must be a JSON object",
    "string_type": "must be a string",
    "int_type": "must be an integer",
    "int_from_float": "must be an integer",
    "float_type": "must be a number",
    "finite_number": "must be a finite number",
    "bool_type": "must be true or false",
    "list_type": "must be a list",
    "string_pattern_mismatch": "does not have the required format",
    "string_too_short": "too short",
    "string_too_long": "too long",
    "too_short": "too few items",
    "too_long": "too many items",
    "greater_than": "below the allowed range",
    "greater_than_equal": "below the allowed range",
    "less_than": "above the allowed range",
    "less_than_equal": "above the allowed range",
    "literal_error": "not one of the allowed values",
    "enum": "not one of the allowed values",
    "union_tag_invalid": "unknown event_type or modality",
    "union_tag_not_found": "event_type or modality is missing",
    "uuid_type": "must be a UUID",
    "uuid_parsing": "must be a UUID",
    "value_error": "breaks a rule of the contract",
    "duplicate_key": "key appears more than once in its object",
    "control_character": "holds a control or invisible format character",
    "date_range": "date outside the allowed range",
    "wrong_topic": "event type published on another family's topic",
    "alert_patient_mismatch": "the alert named belongs to another patient",
    "unprocessable": "valid, but the pipeline could not land it; operators see the cause",
    "schema": "does not follow the contract",
    "malformed_json": "not valid JSON",
}
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_SEGMENT = re.compile(r"[^.\[\]]+|\[\d+\]")


def _field_names(model: type[BaseModel], out: set[str]) -> set[str]:
    for name, f in model.model_fields.items():
        out.add(name)
        for nested in models_in(f.annotation):
            _field_names(nested, out)
    return out


KNOWN_FIELDS: frozenset[str] = frozenset(set().union(*(_field_names(m, set()) for m in EVENT_MODELS.values())))


def public_loc(loc: str) -> str:
    """The loc with every segment that is not a contract field (a publisher's own key) replaced."""
    parts = _SEGMENT.findall(loc)
    out = ""
    for part in parts:
        if part.startswith("["):
            out += part
        else:
            name = part if part in KNOWN_FIELDS else UNKNOWN_FIELD
            if name == UNKNOWN_FIELD and out.endswith(UNKNOWN_FIELD):
                continue  # a key with dots in it is one unknown field, not several
            out += f".{name}" if out else name
    return out


def public_errors(errors: list[dict[str, str]], codes: tuple[str, ...], kind: str) -> list[dict[str, str]]:
    """Each error as {loc, msg}: the loc without publisher strings, a fixed message with no input value."""
    padded = list(codes) + [kind] * (len(errors) - len(codes))
    return [
        {"loc": public_loc(e.get("loc", "")), "msg": PUBLIC_MESSAGES.get(code, f"invalid ({code})")}
        for e, code in zip(errors, padded)
    ]


def public_errors_json(errors: list[dict[str, str]], codes: tuple[str, ...], kind: str) -> str:
    return json.dumps(public_errors(errors, codes, kind))


def public_event_id(event_id: str | None) -> str | None:
    """The event_id only when it is a well-formed UUID (anything else may be a publisher's identifier)."""
    return event_id if event_id is not None and _UUID.match(event_id) else None


def public_event_type(event_type: str | None) -> str | None:
    """The event_type only when it is one the contract knows."""
    return event_type if event_type in EVENT_MODELS else None
