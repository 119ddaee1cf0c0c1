"""The outreach stage: expire stale tasks, dispatch due check-ins, raise overdue REMS forms."""

from __future__ import annotations

from datetime import datetime

from care.channels import KafkaTopicChannel, OutreachChannel
from care.outreach import run_outreach
from core.settings import Settings
from stages.boundary import stage
from stages.ingest import writer


@stage("outreach")
def run_outreach_stage(settings: Settings, as_of: datetime, channel: OutreachChannel | None = None) -> dict:
    """One outreach run at `as_of` through `channel` (default: the Kafka outreach topic)."""
    with writer(settings) as conn:
        return run_outreach(conn, settings, as_of, channel or KafkaTopicChannel(settings)).as_dict()
