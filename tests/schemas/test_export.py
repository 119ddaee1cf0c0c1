import json

import jsonschema

from schemas.export import JSON_DIR, export, json_schemas
from tests.factories import ALL_TYPES, event, racemic_session


def test_committed_json_schemas_are_current():
    committed = {p.name: p.read_text() for p in JSON_DIR.glob("*.json")}
    assert committed == json_schemas(), "schemas/json is stale: run `clinicflow schemas export schemas/json`"


def test_export_writes_one_file_per_event_type(tmp_path):
    written = export(tmp_path / "out")
    assert sorted(p.name for p in written) == sorted(f"{t}.json" for t in ALL_TYPES)


def _validator(event_type):
    return jsonschema.Draft202012Validator(json.loads((JSON_DIR / f"{event_type}.json").read_text()))


def test_published_schemas_accept_valid_events():
    for t in ALL_TYPES:
        _validator(t).validate(event(t))
    _validator("session.completed").validate(event("session.completed", body=racemic_session()))


def test_published_schemas_reject_what_the_models_reject():
    cases = [
        event("session.completed", dose_mg=83),
        event("consent.updated", extra_field=1),
        event("intake.assessed", phq9_items=[1] * 8),
        event("session.completed", body=racemic_session(), dose_mg=56),
        {**event("consent.updated"), "occurred_at": "2026-02-28T10:00:00"},
    ]
    for e in cases:
        assert not _validator(e["event_type"]).is_valid(e), e
