"""A flow that proves the broker serves clients: schedule it to page on an outage."""

from __future__ import annotations

from prefect import flow, task

from connectors.exceptions import TransientKafkaError
from connectors.kafka import probe_cluster
from core.settings import Settings, get_settings


@task(retries=2, retry_delay_seconds=[2, 10])
def probe_broker(settings: Settings) -> str:
    """Round-trip one message; raises (and so retries) while the broker does not answer."""
    ok, detail = probe_cluster(settings, timeout_s=settings.kafka_request_timeout_ms / 1000)
    if not ok:
        raise TransientKafkaError(
            f"broker {settings.bootstrap_servers} failed the round trip: {detail}; "
            "start it with `clinicflow kafka up` or check CLINICFLOW_KAFKA_BOOTSTRAP_SERVERS"
        )
    return detail


@flow(name="broker-health")
def broker_health(settings: Settings | None = None) -> str:
    """Fail when the broker cannot take and give back a message."""
    return probe_broker(settings or get_settings())
