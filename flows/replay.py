"""Prefect flow (manual): re-validate quarantined messages at a later clock and land what now passes."""

from __future__ import annotations

from datetime import datetime

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from core.settings import Settings, get_settings
from flows.writer import warehouse_writer
from stages.replay import run_replay


@task(name="replay-quarantine", cache_policy=NO_CACHE)
def replay_task(settings: Settings, as_of: datetime | None) -> dict:
    return run_replay(settings, as_of)


@flow(name="quarantine-replay", log_prints=True)
def replay_flow(as_of: datetime | None = None, settings: Settings | None = None) -> dict:
    """Land quarantined messages that pass at `as_of` (default now); the rest stay, with their new errors."""
    with warehouse_writer():
        report = replay_task(settings or get_settings(), as_of)
    create_markdown_artifact(
        key="quarantine-replay",
        description="quarantine replay",
        markdown=(
            "# Quarantine replay\n\n| measure | value |\n| --- | --- |\n"
            + "".join(f"| {k} | {v} |\n" for k, v in report.items())
        ),
    )
    return report
