"""Prefect flows for ingest and backfill: thin wrappers over stages.ingest.

The batch is the unit of a task, never the event. Landing is not retried (a
warehouse error is not cured by trying again); publishing is, with backoff,
because a broker that is away usually comes back.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from connectors.exceptions import TransientKafkaError
from core.settings import Settings, get_settings
from flows.escalation import emit_escalation
from flows.writer import warehouse_writer
from stages.ingest import IngestReport, Mode, StopFlag, default_land, default_publish, run_ingest, run_load


@task(name="land-batch", cache_policy=NO_CACHE)
def land_batch_task(conn, messages, clock, cfg):
    """Validate and land one micro-batch in one warehouse transaction."""
    return default_land(conn, messages, clock, cfg)


@task(
    name="publish-outbox",
    cache_policy=NO_CACHE,
    retries=3,
    retry_delay_seconds=[30, 60, 120],
    retry_condition_fn=lambda task, run, state: _is_transient(state),
)
def publish_outbox_task(conn, sender) -> int:
    """Publish DLQ copies, alerts and outreach written by committed batches.

    default_publish already rides out a short outage; these retries cover a longer one.
    """
    return default_publish(conn, sender)


def _is_transient(state) -> bool:
    try:
        state.result()
    except TransientKafkaError:
        return True
    except Exception:
        return False
    return False


def _artifact(report: IngestReport, key: str) -> None:
    d = report.as_dict()
    rows = "\n".join(f"| quarantined: {k} | {v} |" for k, v in sorted(d["quarantined"].items()))
    lag = ", ".join(f"{k}={v}" for k, v in sorted(d["lag_left"].items()) if v) or "none"
    create_markdown_artifact(
        key=key,
        description=f"clinicflow {d['mode']} summary",
        markdown=f"""
# clinicflow {d["mode"]}

| measure | value |
| --- | --- |
| events read | {d["read"]} |
| landed | {d["landed"]} |
| duplicates | {d["duplicates"]} |
| quarantined | {d["quarantined_total"]} |
{rows}
| batches | {d["batches"]} |
| messages published | {d["published"]} |
| seconds | {d["seconds"]} |
| lag left | {lag} |
""",
    )


@flow(name="ingest", log_prints=True)
def ingest_flow(mode: Mode = "drain", settings: Settings | None = None, as_of: datetime | None = None) -> dict:
    """Kafka to DuckDB: `drain` catches up and exits, `follow` runs until SIGINT/SIGTERM.

    `as_of` (drain only) judges the drain at that clock instead of now."""
    settings = settings or get_settings()
    stop = StopFlag()
    stop.install()
    # No warehouse-writer slot: ingest workers share the topics through the consumer group, and
    # partition leases keep their landings apart (docs/DECISIONS.md, "Several workers").
    report = run_ingest(
        settings,
        mode,
        stop=stop,
        land=land_batch_task,
        publish=publish_outbox_task,
        notify=emit_escalation,
        as_of=as_of,
    )
    _artifact(report, "ingest-summary")
    return report.as_dict()


@flow(name="load-file", log_prints=True)
def load_flow(path: str, as_of: datetime | None = None, settings: Settings | None = None) -> dict:
    """Backfill: a JSON Lines file through the same validate-and-land code."""
    with warehouse_writer():
        report = run_load(settings or get_settings(), Path(path), as_of, land=land_batch_task)
    _artifact(report, "load-summary")
    return report.as_dict()
