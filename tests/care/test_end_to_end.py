"""load + outreach through the CLI on a multi-month history, against the real broker."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timezone

import pytest

from clinicflow.simulate import simulate
from core.settings import child_env
from stages.ingest import run_ingest
from tests.factories import event, raw
from tests.kafka_helpers import produce, read_all
from warehouse.db import open_warehouse

pytestmark = pytest.mark.integration
END = datetime(2026, 11, 1, tzinfo=timezone.utc)


def cli(s, *args):
    done = subprocess.run(
        [sys.executable, "-m", "clinicflow", *args, "--no-prefect"],
        env=child_env(s),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode in (0, 1), done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def state(s):
    conn = open_warehouse(s)
    try:
        tasks = conn.execute(
            "SELECT task_id, kind, status, send_after, due_at, outreach_id FROM followup_tasks ORDER BY task_id"
        ).fetchall()
        alerts = conn.execute("SELECT alert_id, reason, status FROM clinical_alerts ORDER BY alert_id").fetchall()
        sessions = conn.execute("SELECT count(DISTINCT session_id) FROM sessions_completed").fetchall()[0][0]
        esk = conn.execute(
            "SELECT count(DISTINCT session_id) FROM sessions_completed WHERE modality = 'esketamine_nasal'"
        ).fetchall()[0][0]
        patients = conn.execute("SELECT count(DISTINCT patient_id) FROM sessions_completed").fetchall()[0][0]
        return tasks, alerts, sessions, esk, patients
    finally:
        conn.close()


def test_load_then_outreach_twice_changes_nothing_the_second_time(kafka_settings, tmp_path):
    s = kafka_settings
    history = tmp_path / "history.jsonl"
    history.write_bytes(b"\n".join(simulate(40, seed=11, invalid_rate=0.02, end=END)) + b"\n")
    as_of = "2026-11-01T12:00:00Z"
    runs = ["2026-10-12T12:00:00Z", "2026-10-22T12:00:00Z", as_of]  # a daily flow, sampled
    first_load = cli(s, "load", str(history), "--as-of", as_of)
    outs = [cli(s, "outreach", "--as-of", t) for t in runs]
    first_out = {k: sum(o[k] for o in outs) for k in ("dispatched", "expired")}
    tasks, alerts, sessions, esk, patients = state(s)

    # What the rules say, checked from the tables' own facts:
    kinds = [t[1] for t in tasks]
    assert kinds.count("checkin_day1") <= sessions and kinds.count("rems_form_due") <= esk
    assert kinds.count("checkin_month1") == patients
    as_of_dt = datetime(2026, 11, 1, 12, tzinfo=timezone.utc)
    for _, kind, status, send_after, due_at, outreach_id in tasks:
        if kind != "rems_form_due" and status in ("open", "dispatched"):
            assert (as_of_dt - send_after).days < 7, "stale patient tasks are expired"
        if status == "open" and kind != "rems_form_due":
            assert send_after > as_of_dt, "due patient tasks were dispatched"
        if status == "dispatched":
            assert outreach_id is not None and send_after <= as_of_dt
    statuses = {t[2] for t in tasks}
    assert {"completed", "expired", "open"} <= statuses
    assert first_out["dispatched"] > 0 and first_out["expired"] > 0
    assert first_load["quarantined_total"] > 0

    outreach_msgs = read_all(s, s.topic_outreach, expect=first_out["dispatched"])
    alert_msgs = read_all(s, s.topic_alerts)
    assert len(outreach_msgs) == first_out["dispatched"] == sum(1 for t in tasks if t[5] is not None)
    assert len(alert_msgs) == len(alerts) > 0

    second_load = cli(s, "load", str(history), "--as-of", as_of)
    again = [cli(s, "outreach", "--as-of", t) for t in runs]
    assert second_load["landed"] == 0 and all(o["dispatched"] == 0 and o["expired"] == 0 for o in again)
    assert state(s) == (tasks, alerts, sessions, esk, patients)
    assert len(read_all(s, s.topic_outreach)) == len(outreach_msgs), "nothing new published"
    assert len(read_all(s, s.topic_alerts)) == len(alert_msgs)


def test_urgent_alert_is_on_its_topic_when_the_batch_that_carried_it_is_done(kafka_settings):
    s = kafka_settings
    crisis = event("checkin.completed", patient_id="P0042", phq9_items=[1] * 8 + [3])
    produce(s, s.topic_followups, [(b"P0042", raw(crisis))])
    report = run_ingest(s, "drain")
    assert report.batches == 1
    [msg] = read_all(s, s.topic_alerts, expect=1)
    body = json.loads(msg.value)
    assert msg.key == b"P0042" and body["payload"]["reason"] == "phq9_item9_positive"
    assert body["payload"]["severity"] == "urgent" and body["payload"]["source_event_id"] == crisis["event_id"]
