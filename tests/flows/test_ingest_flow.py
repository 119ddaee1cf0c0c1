import asyncio

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

from flows.ingest import ingest_flow, load_flow
from tests.factories import ALL_TYPES, event, raw
from tests.kafka_helpers import produce

pytestmark = [pytest.mark.prefect]


async def _artifacts(key):
    async with get_client() as client:
        return await client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])))


@pytest.mark.integration
def test_ingest_flow_drains_and_leaves_a_summary_artifact(prefect_harness, kafka_settings):
    s = kafka_settings
    produce(s, s.topic_followups, [(b"P0001", raw(event("checkin.completed"))), (b"P0001", b"junk")])
    state = ingest_flow(mode="drain", settings=s, return_state=True)
    assert state.is_completed(), state
    report = state.result()
    assert (report["read"], report["landed"], report["quarantined"]) == (2, 1, {"malformed_json": 1})
    arts = asyncio.run(_artifacts("ingest-summary"))
    assert arts and "| landed | 1 |" in arts[-1].data


def test_load_flow_runs_under_prefect(prefect_harness, settings, tmp_path):
    f = tmp_path / "h.jsonl"
    f.write_bytes(b"\n".join(raw(event(t)) for t in ALL_TYPES[:12]) + b"\n")
    report = load_flow(str(f), None, settings)
    assert report["landed"] == 12 and report["batches"] == 1
