"""One realistic multi-patient history with the on-call queue's answers, landed several ways (one
batch, one event per batch, shuffled so that answers arrive before their alerts), gives identical
tasks, alerts and episodes."""

from __future__ import annotations

import random
from datetime import datetime, timezone

from care.planner import plan_pending
from clinicflow.oncall import OnCall, Raised
from clinicflow.simulate import simulate
from tests.care.conftest import Clinic

END = datetime(2026, 11, 1, tzinfo=timezone.utc)
SEED = 3  # the simulated on-call queue's; it answers this history's alerts 10+ times


def outcome(clinic: Clinic):
    """Everything the history decides. Withdrawn alerts and episodes of withdrawn alerts only are
    left out: they exist only when an event arrived after the ones it changes."""
    tasks = clinic.conn.execute("""SELECT task_id, kind, due_at, send_after, channel, status, completed_by,
                                   source_event_id FROM followup_tasks ORDER BY task_id""").fetchall()
    alerts = clinic.conn.execute("""SELECT alert_id, reason, severity, source_event_id, episode_id
                                    FROM clinical_alerts WHERE status = 'open' ORDER BY alert_id""").fetchall()
    episodes = clinic.conn.execute("""SELECT episode_id, reason, first_alert_id, occurrences, status,
                                      acknowledged_at, acknowledged_by, resolved_at, resolution
                                      FROM alert_episodes WHERE status <> 'withdrawn'
                                      ORDER BY episode_id""").fetchall()
    return tasks, alerts, episodes


def with_answers(history: list[bytes], settings, tmp_path) -> list[bytes]:
    """The history plus the simulated on-call queue's answers to its alerts, dated from each
    alert's source event (as a live clinic would see them) and no later than END."""
    clinic = Clinic(settings.model_copy(update={"warehouse_path": tmp_path / "scratch.duckdb"}), quality=False)
    clinic.land(batches=[history], clock=END)
    rows = clinic.conn.execute(
        """SELECT a.alert_id, a.patient_id, a.clinic_id, a.severity, a.source_occurred_at FROM clinical_alerts a
           JOIN alert_episodes e ON e.first_alert_id = a.alert_id"""
    ).fetchall()
    clinic.conn.close()
    answers = OnCall(seed=SEED, horizon=END).answers([Raised(*r) for r in rows])
    return history + answers


def test_one_batch_single_event_batches_and_shuffled_agree(settings, tmp_path):
    plain = list(simulate(8, seed=3, invalid_rate=0.0, end=END))
    history = with_answers(plain, settings, tmp_path)
    assert len(plain) > 200 and len(history) - len(plain) >= 10
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
    tasks, alerts, episodes = ways["one_batch"]
    assert len(tasks) > 50 and {t[5] for t in tasks} >= {"open", "completed"} and len(alerts) > 0
    assert {e[4] for e in episodes} >= {"resolved", "open"}
    for name in plans:
        assert ways[name] == ways["one_batch"], name
