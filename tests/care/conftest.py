"""Care-plan tests land real events through the real landing code into a real DuckDB file."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from care.planner import plan_pending
from schemas.messages import Message
from schemas.validate import Clock
from stages.ingest import landing_config
from warehouse.db import open_warehouse
from warehouse.landing import land_batch

# Landing judges occurred_at against the clock; care tests span the whole of 2026.
CLOCK = datetime(2027, 1, 1, tzinfo=timezone.utc)


class Clinic:
    """A warehouse to land events into and read tasks and alerts from."""

    def __init__(self, settings, quality: bool = True, plan: bool = True):
        import dataclasses

        self.settings = settings
        self.conn = open_warehouse(settings)
        self.cfg = landing_config(settings, group_id="file", families=False)
        if not quality:  # GX is beside the point of care tests that land event by event
            self.cfg = dataclasses.replace(self.cfg, quality=None)
        self.offset = 0
        self.plan = plan

    def land(self, *events, clock=CLOCK, batches=None):
        """Land events (dicts or bytes) in one batch, or in the given list of batches."""
        for batch in batches or [events]:
            msgs = []
            for e in batch:
                self.offset += 1
                value = e if isinstance(e, bytes) else json.dumps(e).encode()
                msgs.append(Message("file:test", 0, self.offset, None, value))
            result = land_batch(self.conn, msgs, Clock(clock), self.cfg)
            assert result.n_quarantined == 0, result
            if self.plan:  # as every run does before it ends
                plan_pending(self.conn, self.settings, clock, all_=True)
        return self

    def tasks(self, kind=None):
        sql = (
            "SELECT kind, due_at, send_after, channel, status, completed_by, session_id, task_id, source_event_id "
            "FROM followup_tasks"
        )
        rows = self.conn.execute(
            sql + (" WHERE kind = ?" if kind else "") + " ORDER BY due_at, kind", [kind] if kind else []
        ).fetchall()
        cols = [
            "kind",
            "due_at",
            "send_after",
            "channel",
            "status",
            "completed_by",
            "session_id",
            "task_id",
            "source_event_id",
        ]
        return [dict(zip(cols, r)) for r in rows]

    def task(self, kind):
        [t] = self.tasks(kind)
        return t

    def alerts(self, status="open"):
        return self.conn.execute(
            "SELECT reason, source_event_id, severity FROM clinical_alerts WHERE status = ? "
            "ORDER BY reason, source_event_id",
            [status],
        ).fetchall()

    def reasons(self):
        return sorted(r for r, _, _ in self.alerts())


@pytest.fixture()
def clinic(settings):
    c = Clinic(settings)
    yield c
    c.conn.close()
