"""The escalation stage: escalate unacknowledged episodes at a clock, publish, notify operators."""

from __future__ import annotations

from datetime import datetime, timedelta

from care.channels import publish_to_kafka
from care.escalation import EscalationReport, Notify, escalate, notify_all
from care.policy import CarePolicy
from core.settings import Settings
from stages.boundary import stage
from stages.ingest import snapshots, writer


@stage("escalate")
def run_escalation_stage(settings: Settings, as_of: datetime, notify: Notify | None = None) -> dict:
    """Escalate what is due at `as_of`, publish every unsent alert message, then hand escalations
    to `notify` (the flow's Prefect events); without `notify` they wait for a run that has one."""
    policy = CarePolicy.from_settings(settings)
    # Runs every minute: no re-planning and a snapshot only when something changed.
    with writer(settings, publish_snapshot=False, plan=False) as conn:
        report = EscalationReport(as_of, escalate(conn, policy, as_of))
        report.published = publish_to_kafka(conn, settings, ("alert",))
        if notify is not None:
            report.notified = notify_all(conn, notify, timedelta(days=policy.escalate_max_age_days), as_of)
        if report.escalated:
            snapshots(settings).maybe(conn, force=True)
        return report.as_dict()
