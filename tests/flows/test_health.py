import pytest
from prefect.client.schemas.objects import StateType

from flows.health import broker_health

pytestmark = [pytest.mark.integration, pytest.mark.prefect]


def test_health_flow_completes_against_the_real_broker(prefect_harness, kafka_settings):
    state = broker_health(kafka_settings, return_state=True)
    assert state.type == StateType.COMPLETED
    assert state.result() == "produce and consume round trip ok"


def test_health_flow_fails_when_no_broker_answers(prefect_harness, settings):
    dead = settings.model_copy(
        update={
            "kafka_bootstrap_servers": "127.0.0.1:1",
            "kafka_request_timeout_ms": 1000,
            "kafka_bootstrap_timeout_ms": 1000,
        }
    )
    state = broker_health.with_options(retries=0)(dead, return_state=True)
    assert state.type == StateType.FAILED
