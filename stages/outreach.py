"""The outreach stage: expire stale tasks, dispatch due check-ins, raise overdue REMS forms."""

from __future__ import annotations

from datetime import datetime

from care.channels import KafkaTopicChannel, OutreachChannel, publish_to_kafka
from care.outreach import run_outreach
from care.policy import CarePolicy
from core.settings import Settings
from stages.boundary import stage
from stages.ingest import writer


@stage("outreach")
def run_outreach_stage(settings: Settings, as_of: datetime, channel: OutreachChannel | None = None) -> dict:
    """One outreach run at `as_of` through `channel` (default: the Kafka outreach topic)."""
    with writer(settings) as conn:
        policy = CarePolicy.from_settings(settings)
        report = run_outreach(conn, policy, as_of, channel or KafkaTopicChannel(settings)).as_dict()
        # Alerts go to the on-call queue whatever the patients' channel: the overdue REMS forms
        # raised here, and any a backfill (`load`, which has no broker) staged before.
        report["alerts_published"] = publish_to_kafka(conn, settings, ("alert",))
        return report
