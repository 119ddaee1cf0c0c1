"""One realistic multi-patient history, landed three ways, gives identical tasks and alerts."""

from __future__ import annotations

import random
from datetime import datetime, timezone

from care.planner import plan_pending
from clinicflow.simulate import simulate
from tests.care.conftest import Clinic

END = datetime(2026, 11, 1, tzinfo=timezone.utc)


def outcome(clinic: Clinic):
    tasks = clinic.conn.execute("""SELECT task_id, kind, due_at, send_after, channel, status, completed_by,
                                   source_event_id FROM followup_tasks ORDER BY task_id""").fetchall()
    alerts = clinic.conn.execute("""SELECT alert_id, reason, severity, source_event_id FROM clinical_alerts
                                    WHERE status = 'open' ORDER BY alert_id""").fetchall()
    return tasks, alerts


def test_one_batch_single_event_batches_and_shuffled_agree(settings, tmp_path):
    history = list(simulate(8, seed=3, invalid_rate=0.0, end=END))
    assert len(history) > 200
    ways = {}
    shuffled = history[:]
    random.Random(5).shuffle(shuffled)
    rnd = random.Random(9)
    chunks, i = [], 0
    while i < len(shuffled):
        n = rnd.randint(1, 40)
        chunks.append(shuffled[i : i + n])
        i += n
    plans = {
        "one_batch": [history],
        "single_events": [[e] for e in history],
        "shuffled": chunks,
        "shuffled_queued": chunks,
        "shuffled_in_batch": chunks,
    }
    for name, batches in plans.items():
        # queued: tasks planned only once, from the queue at the end; in_batch: care_plan_delay_s = 0
        s = settings.model_copy(
            update={
                "warehouse_path": tmp_path / f"{name}.duckdb",
                "care_plan_delay_s": 0 if name.endswith("in_batch") else 60,
            }
        )
        clinic = Clinic(s, quality=False, plan=not name.endswith("queued"))
        clinic.land(batches=batches, clock=END)
        plan_pending(clinic.conn, s, END, all_=True)
        ways[name] = outcome(clinic)
        clinic.conn.close()
    tasks, alerts = ways["one_batch"]
    assert len(tasks) > 50 and {t[5] for t in tasks} >= {"open", "completed"} and len(alerts) > 0
    for name in plans:
        assert ways[name] == ways["one_batch"], name
