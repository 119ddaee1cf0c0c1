"""Prefect flow for outreach dispatch: a thin wrapper over care.outreach.run_outreach."""

from __future__ import annotations

from datetime import datetime, timezone

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from care.channels import KafkaTopicChannel, OutreachChannel
from core.settings import Settings, get_settings
from flows.writer import warehouse_writer
from stages.outreach import run_outreach_stage


@task(name="dispatch-outreach", cache_policy=NO_CACHE)
def dispatch_task(settings: Settings, as_of: datetime, channel: OutreachChannel) -> dict:
    return run_outreach_stage(settings, as_of, channel)


@flow(name="outreach", log_prints=True)
def outreach_flow(as_of: datetime | None = None, settings: Settings | None = None) -> dict:
    """Expire stale tasks, dispatch due check-ins, raise overdue REMS forms; judged at `as_of` (default now).

    Delivery goes through the built-in Kafka topic channel; a clinic that plugs in a provider
    calls dispatch_task with its ProviderChannel.
    """
    settings = settings or get_settings()
    as_of = as_of or datetime.now(timezone.utc)
    with warehouse_writer():
        report = dispatch_task(settings, as_of, KafkaTopicChannel(settings))
    create_markdown_artifact(
        key="outreach-summary",
        description="clinicflow outreach summary",
        markdown=(
            f"# clinicflow outreach at {as_of.isoformat()}\n\n| measure | value |\n| --- | --- |\n"
            + "".join(f"| {k} | {v} |\n" for k, v in report.items())
        ),
    )
    return report
