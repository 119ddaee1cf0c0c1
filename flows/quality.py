"""Prefect flow for warehouse data quality: GX suites, results stored with history, Data Docs built."""

from __future__ import annotations

from datetime import datetime

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from core.settings import Settings, get_settings
from flows.writer import warehouse_writer
from stages.quality import run_quality


@task(name="warehouse-suites", cache_policy=NO_CACHE)
def quality_task(settings: Settings, as_of: datetime | None) -> dict:
    return run_quality(settings, as_of)


@flow(name="data-quality", log_prints=True)
def quality_flow(as_of: datetime | None = None, settings: Settings | None = None) -> dict:
    """Referential integrity, ranges, freshness and reconciliation over the warehouse."""
    with warehouse_writer():
        report = quality_task(settings or get_settings(), as_of)
    rows = "".join(f"| {k} | {'pass' if v else 'FAIL'} |\n" for k, v in report["suites"].items())
    create_markdown_artifact(
        key="data-quality",
        description="warehouse data quality",
        markdown=(
            f"# Data quality: {'pass' if report['success'] else 'FAIL'}\n\n| suite | result |\n| --- | --- |\n{rows}"
            f"\nData Docs: {report['data_docs']}\n"
        ),
    )
    if not report["success"]:
        failed = [k for k, v in report["suites"].items() if not v]
        raise RuntimeError(
            f"data quality failed: {', '.join(failed)}; see the Data Docs at {report['data_docs']} "
            "and the quality_runs table"
        )
    return report
