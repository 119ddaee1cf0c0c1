"""Prefect flow for escalation: a thin wrapper over stages.escalation, emitting one Prefect event
per escalation so that operators can attach automations (deploy/automations/)."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.events import emit_event

from care.escalation import Escalation
from core.settings import Settings, get_settings
from flows.writer import warehouse_writer
from stages.escalation import run_escalation_stage

EVENT = "clinicflow.alert.escalated"


def emit_escalation(esc: Escalation) -> None:
    """The Prefect event: episode, reason, severity and level; never the patient. Its id is the
    published message's id, so a re-emitted event is recognisably the same one."""
    emit_event(
        event=EVENT,
        resource={
            "prefect.resource.id": f"clinicflow.alert-episode.{esc.episode_id}",
            "prefect.resource.name": f"{esc.severity} {esc.reason}",
            "clinicflow.severity": esc.severity,
            "clinicflow.reason": esc.reason,
            "clinicflow.escalation-level": str(esc.level),
        },
        occurred=esc.escalated_at,
        payload={
            "episode_id": esc.episode_id,
            "level": esc.level,
            "severity": esc.severity,
            "reason": esc.reason,
            "due_at": esc.due_at.isoformat(),
        },
        id=uuid.UUID(esc.message_id),
    )


@task(name="escalate-episodes", cache_policy=NO_CACHE)
def escalate_task(settings: Settings, as_of: datetime) -> dict:
    return run_escalation_stage(settings, as_of, emit_escalation)


@flow(name="escalation", log_prints=True)
def escalation_flow(as_of: datetime | None = None, settings: Settings | None = None) -> dict:
    """Escalate alert episodes nobody acknowledged in time, judged at `as_of` (default now)."""
    settings = settings or get_settings()
    as_of = as_of or datetime.now(timezone.utc)
    with warehouse_writer():
        report = escalate_task(settings, as_of)
    if report["escalated"]:  # every minute: an artifact only when something was escalated
        create_markdown_artifact(
            key="escalation-summary",
            description="clinicflow escalations",
            markdown=(
                f"# clinicflow escalation at {report['as_of']}\n\n| measure | value |\n| --- | --- |\n"
                + "".join(f"| {k.replace('_', ' ')} | {v} |\n" for k, v in report.items() if k != "as_of")
            ),
        )
    return report
