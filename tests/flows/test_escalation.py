"""The escalation flow under Prefect: escalations published to the real broker, one Prefect event each,
carrying the episode, reason and severity and never the patient."""

from __future__ import annotations

import json
import uuid

import pytest
from prefect.events.clients import AssertingEventsClient
from prefect.testing.fixtures import asserting_events_worker  # noqa: F401 - a pytest fixture

from care.escalation import escalation_id
from flows.escalation import EVENT, escalation_flow
from tests.care.conftest import Clinic
from tests.care.test_lifecycle import at, checkin
from tests.kafka_helpers import read_all

pytestmark = [pytest.mark.prefect, pytest.mark.integration]


def test_escalation_flow_publishes_and_emits_one_event_per_escalation(
    prefect_harness,
    kafka_settings,
    asserting_events_worker,  # noqa: F811
):
    s = kafka_settings
    clinic = Clinic(s, quality=False)
    clinic.land(checkin("P0042", minutes=0), clock=at(1))
    [(episode,)] = clinic.conn.execute("SELECT episode_id FROM alert_episodes").fetchall()
    clinic.conn.close()

    report = escalation_flow(as_of=at(60), settings=s)
    assert (report["escalated"], report["level_1"], report["level_2"], report["notified"]) == (2, 1, 1, 2)
    assert escalation_flow(as_of=at(60), settings=s)["escalated"] == 0

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    with get_client(sync_client=True) as client:
        arts = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["escalation-summary"])))
    assert arts and "| level 2 | 1 |" in arts[-1].data, "operators see what was escalated in the run's artifact"

    asserting_events_worker.drain()
    client = asserting_events_worker._client
    assert isinstance(client, AssertingEventsClient)
    events = [e for e in client.events if e.event == EVENT]
    assert sorted(str(e.id) for e in events) == sorted(escalation_id(episode, lv) for lv in (1, 2))
    for e in events:
        assert e.payload["episode_id"] == episode and e.payload["severity"] == "urgent"
        assert e.resource["clinicflow.reason"] == "phq9_item9_positive"
        assert "P0042" not in json.dumps(e.model_dump(mode="json")), "no patient id in an operator's event"
    published = [json.loads(r.value) for r in read_all(s, s.topic_alerts, expect=3)]
    escalated = {m["event_id"] for m in published if m["payload"]["action"] == "escalated"}
    assert escalated == {str(e.id) for e in events} and all(uuid.UUID(i) for i in escalated)
