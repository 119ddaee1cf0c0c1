"""The shipped example automation is a valid Prefect automation that fires on level-2 escalations only."""

from __future__ import annotations

import uuid
from pathlib import Path

import yaml
from prefect.events.schemas.automations import AutomationCore
from prefect.events.schemas.events import Resource

from flows.escalation import EVENT

FILE = Path(__file__).resolve().parents[2] / "deploy" / "automations" / "escalation-level-2.yaml"


def automation() -> AutomationCore:
    spec = yaml.safe_load(FILE.read_text())
    spec["actions"][0]["block_document_id"] = str(uuid.uuid4())  # what step 2 of the file's recipe does
    return AutomationCore.model_validate(spec)


def test_the_example_automation_is_valid_and_matches_level_2_escalations():
    a = automation()
    assert a.trigger.expect == {EVENT}
    labels = {"prefect.resource.id": "clinicflow.alert-episode.e-1", "clinicflow.severity": "urgent"}
    assert a.trigger.match.matches(Resource({**labels, "clinicflow.escalation-level": "2"}))
    assert not a.trigger.match.matches(Resource({**labels, "clinicflow.escalation-level": "1"}))
    assert a.actions[0].type == "send-notification"


def test_the_example_automation_never_names_a_patient():
    assert "patient_id" not in FILE.read_text()
