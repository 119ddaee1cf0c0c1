"""JSON Schema for every event type, generated from the models, for publishers."""

from __future__ import annotations

import json
from pathlib import Path

from schemas.events import EVENT_MODELS
from schemas.exceptions import SchemaError

JSON_DIR = Path(__file__).parent / "json"


def json_schemas() -> dict[str, str]:
    """{file name: schema text} for every event type."""
    out = {}
    for event_type, model in sorted(EVENT_MODELS.items()):
        schema = model.model_json_schema(mode="validation")
        schema["$id"] = f"https://clinicflow.invalid/schemas/v1/{event_type}.json"
        schema["title"] = event_type
        out[f"{event_type}.json"] = json.dumps(schema, indent=2, sort_keys=True) + "\n"
    return out


def export(directory: Path) -> list[Path]:
    """Write the schemas into directory; returns the files written."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        written = []
        for name, text in json_schemas().items():
            (directory / name).write_text(text)
            written.append(directory / name)
    except OSError as e:
        raise SchemaError(f"cannot write JSON Schemas to {directory}: {e}; choose a writable directory") from e
    return written
