"""The alert loop on the real broker: raised alerts out, the queue's answers in on clinic.alertactions.v1,
bad answers dead-lettered, the unanswered episode escalated, status counting the queue."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from care.rules import stable_id
from clinicflow.status import collect
from stages.escalation import run_escalation_stage
from stages.ingest import run_ingest
from tests.factories import event, raw
from tests.kafka_helpers import produce, read_all

pytestmark = [pytest.mark.integration]
ITEM9 = [0] * 8 + [3]


def test_answers_close_episodes_and_the_unanswered_one_is_escalated(kafka_settings):
    s = kafka_settings
    now = datetime.now(timezone.utc)
    checkins = [
        event("checkin.completed", f"P000{n}", at=now - timedelta(minutes=5), phq9_items=ITEM9) for n in (1, 2, 3)
    ]
    produce(s, s.topic_followups, [(e["patient_id"].encode(), raw(e)) for e in checkins])
    run_ingest(s, "drain")
    raised = [json.loads(r.value) for r in read_all(s, s.topic_alerts, expect=3)]
    assert sorted(m["payload"]["action"] for m in raised) == ["raised"] * 3
    aid = {m["patient_id"]: m["payload"]["alert_id"] for m in raised}
    assert aid["P0001"] == stable_id(checkins[0]["event_id"], "phq9_item9_positive")

    answers = [
        event("alert.acknowledged", "P0001", at=now, alert_id=aid["P0001"], by="nurse-1"),
        event("alert.resolved", "P0002", at=now, alert_id=aid["P0002"], by="dr-1", resolution="actioned"),
        event("alert.acknowledged", "P0003", at=now, alert_id=aid["P0001"], by="nurse-9"),  # not P0003's alert
    ]
    produce(s, s.topic_alertactions, [(a["patient_id"].encode(), raw(a)) for a in answers])
    produce(s, s.topic_alertactions, [(b"P0003", b'{"event_type": "alert.acknowledged"}')])
    report = run_ingest(s, "drain")
    assert report.landed == 2 and report.quarantined == {"schema": 2}

    dlq = read_all(s, s.topic_dlq, expect=2)
    kinds = sorted(dict(r.headers)["clinicflow.error.kind"].decode() for r in dlq)
    assert kinds == ["schema", "schema"]
    assert any(b'"loc": "patient_id"' in dict(r.headers)["clinicflow.errors"] for r in dlq)

    wh = collect(s)["warehouse"]
    assert wh["open_episodes_by_severity"] == {"urgent": {"open": 2, "escalated": 0}}
    assert wh["unacknowledged_episodes"] == 1
    done = run_escalation_stage(s, now + timedelta(hours=1))
    assert (done["escalated"], done["level_1"], done["level_2"]) == (2, 1, 1)
    escalated = [json.loads(r.value) for r in read_all(s, s.topic_alerts, expect=5)]
    escalated = [m for m in escalated if m["payload"]["action"] == "escalated"]
    assert {m["patient_id"] for m in escalated} == {"P0003"}
    wh = collect(s)["warehouse"]
    assert wh["open_episodes_by_severity"] == {"urgent": {"open": 2, "escalated": 1}}
