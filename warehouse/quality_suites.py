"""Warehouse-level data quality with Great Expectations: suites over DataFrames pulled from DuckDB.

Each suite validates one small frame built by one query, so a failure points
at one fact: an orphan session, a task without its source event, an impossible
value, a stale warehouse, an unbalanced reconciliation. Results are stored in
`quality_runs` (with history) and rendered as GX Data Docs for operations.
"""

from __future__ import annotations

import logging
import shutil
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb
import pandas as pd

from warehouse.quality import summarize
from warehouse.reconcile import RECONCILIATION_SQL

log = logging.getLogger(__name__)

FRAMES = {
    "referential_sessions": """SELECT s.event_id, EXISTS (SELECT 1 FROM main.patients_registered r
                                   WHERE r.patient_id = s.patient_id) AS has_registration
                                 FROM main.sessions_completed s""",
    "referential_tasks": """SELECT t.task_id, EXISTS (SELECT 1 FROM main.raw_events e
                               WHERE e.event_id = t.source_event_id) AS has_source_event
                             FROM main.followup_tasks t""",
    "ranges": """SELECT 'phq9' AS measure, total::DOUBLE AS value FROM main.phq9_measurements
                 UNION ALL SELECT 'monitoring_minutes', (epoch(ended_at) - epoch(started_at)) / 60.0
                 FROM main.sessions_completed
                 UNION ALL SELECT 'bp_pre_systolic', bp_pre_systolic FROM main.sessions_completed""",
    "freshness": """SELECT coalesce(greatest(0, epoch(?::TIMESTAMPTZ) - epoch(max(received_at))) / 3600.0, 1e9)
                       AS hours_since_last_landed FROM main.raw_events""",
    "reconciliation": f'SELECT topic, "partition", balanced FROM ({RECONCILIATION_SQL})',
}


def _expectations(gxe, max_stale_hours: float) -> dict[str, list]:
    return {
        "referential_sessions": [gxe.ExpectColumnValuesToBeInSet(column="has_registration", value_set=[True])],
        "referential_tasks": [gxe.ExpectColumnValuesToBeInSet(column="has_source_event", value_set=[True])],
        "ranges": [
            gxe.ExpectColumnValuesToBeBetween(column="value", min_value=0, max_value=720),
            gxe.ExpectColumnValuesToNotBeNull(column="value"),
        ],
        "freshness": [
            gxe.ExpectColumnValuesToBeBetween(column="hours_since_last_landed", min_value=0, max_value=max_stale_hours)
        ],
        "reconciliation": [gxe.ExpectColumnValuesToBeInSet(column="balanced", value_set=[True])],
    }


@dataclass
class QualityReport:
    run_id: str
    success: bool
    suites: dict[str, bool]
    docs_index: str | None

    def as_dict(self) -> dict:
        return {"run_id": self.run_id, "success": self.success, "suites": self.suites, "data_docs": self.docs_index}


class WarehouseQuality:
    """A file-backed GX context under `root` whose checkpoints update Data Docs."""

    def __init__(self, root: Path, max_stale_hours: float):
        # lazy: Great Expectations takes seconds to import; only the quality stage pays it
        import great_expectations as gx  # noqa: PLC0415
        import great_expectations.expectations as gxe  # noqa: PLC0415
        from great_expectations.checkpoint import UpdateDataDocsAction  # noqa: PLC0415

        logging.getLogger("great_expectations").setLevel(logging.WARNING)
        shutil.rmtree(root / "gx" / "expectations", ignore_errors=True)  # suites are code, not state
        self.ctx = gx.get_context(mode="file", project_root_dir=str(root))
        self.ctx.variables.progress_bars = {"globally": False}
        self.ctx.variables.save()
        source = self.ctx.data_sources.add_or_update_pandas("warehouse")
        self.checkpoints = {}
        for name, exps in _expectations(gxe, max_stale_hours).items():
            asset = source.get_asset(name) if name in source.get_asset_names() else source.add_dataframe_asset(name)
            batch = (
                asset.get_batch_definition("whole")
                if asset.batch_definitions
                else asset.add_batch_definition_whole_dataframe("whole")
            )
            suite = self.ctx.suites.add_or_update(gx.ExpectationSuite(name=name, expectations=exps))
            vd = self.ctx.validation_definitions.add_or_update(
                gx.ValidationDefinition(name=name, data=batch, suite=suite)
            )
            self.checkpoints[name] = self.ctx.checkpoints.add_or_update(
                gx.Checkpoint(
                    name=name,
                    validation_definitions=[vd],
                    actions=[UpdateDataDocsAction(name="docs")],
                    result_format="SUMMARY",
                )
            )

    def run(self, conn: duckdb.DuckDBPyConnection, as_of: datetime) -> QualityReport:
        run_id = str(uuid.uuid4())
        outcome = {}
        for name, checkpoint in self.checkpoints.items():
            params = [as_of] if name == "freshness" else []
            frame: pd.DataFrame = conn.execute(FRAMES[name], params).df()
            result = checkpoint.run(batch_parameters={"dataframe": frame})
            vr = next(iter(result.run_results.values()))
            outcome[name] = bool(vr.success)
            conn.execute(
                "INSERT INTO quality_runs VALUES (?, ?, ?, ?, ?, ?)",
                [run_id, as_of, name, bool(vr.success), len(frame), summarize(vr)],
            )
        urls = self.ctx.get_docs_sites_urls()
        index = urls[0]["site_url"] if urls else None
        return QualityReport(run_id, all(outcome.values()), outcome, index)
