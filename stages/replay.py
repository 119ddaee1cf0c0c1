"""The replay stage: re-validate quarantined messages at a later clock and land what now passes."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from core.settings import Settings
from schemas.validate import Clock
from stages.boundary import stage
from stages.ingest import landing_config, writer
from warehouse.replay import replay_quarantine


@stage("replay")
def run_replay(settings: Settings, as_of: datetime | None = None) -> dict:
    """Replay every open quarantined message at `as_of` (default now); the report as a dict."""
    clock = Clock(as_of or datetime.now(timezone.utc), timedelta(seconds=settings.clock_skew_seconds))
    with writer(settings) as conn:
        return replay_quarantine(conn, clock, landing_config(settings, group_id="replay")).as_dict()
