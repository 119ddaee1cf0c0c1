"""`clinicflow serve`: every deployment of prefect.yaml, served from this process without a work pool."""

from __future__ import annotations

from prefect import serve
from prefect.client.schemas.schedules import CronSchedule, IntervalSchedule

from flows.backup import backup_flow
from flows.escalation import escalation_flow
from flows.health import broker_health
from flows.ingest import ingest_flow
from flows.maintenance import maintenance_flow
from flows.outreach import outreach_flow
from flows.quality import quality_flow
from flows.replay import replay_flow


def deployments(schedules: bool = True) -> list:
    """The same deployments as prefect.yaml (a test keeps the two in step)."""

    def every(seconds):
        return [IntervalSchedule(interval=seconds, timezone="UTC")] if schedules else []

    cron = [CronSchedule(cron="15 * * * *", timezone="America/Chicago")] if schedules else []
    return [
        ingest_flow.to_deployment(
            "ingest-drain",
            parameters={"mode": "drain"},
            schedules=every(300),
            concurrency_limit=1,
            tags=["clinicflow", "ingest-worker"],
        ),
        outreach_flow.to_deployment(
            "outreach", schedules=every(900), concurrency_limit=1, tags=["clinicflow", "warehouse-writer"]
        ),
        escalation_flow.to_deployment(
            "escalation", schedules=every(60), concurrency_limit=1, tags=["clinicflow", "warehouse-writer"]
        ),
        quality_flow.to_deployment(
            "data-quality", schedules=cron, concurrency_limit=1, tags=["clinicflow", "warehouse-writer"]
        ),
        replay_flow.to_deployment("quarantine-replay", concurrency_limit=1, tags=["clinicflow", "warehouse-writer"]),
        backup_flow.to_deployment(
            "backup",
            schedules=[CronSchedule(cron="30 2 * * *", timezone="UTC")] if schedules else [],
            concurrency_limit=1,
            tags=["clinicflow", "warehouse-writer"],
        ),
        maintenance_flow.to_deployment(
            "maintenance",
            schedules=[CronSchedule(cron="0 3 * * *", timezone="UTC")] if schedules else [],
            concurrency_limit=1,
            tags=["clinicflow", "warehouse-writer"],
        ),
        broker_health.to_deployment("broker-health", schedules=every(300), tags=["clinicflow"]),
    ]


def serve_all(schedules: bool = True) -> None:
    serve(*deployments(schedules))
