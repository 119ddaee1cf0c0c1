"""`clinicflow publish`: each event to its family's topic, keyed by patient_id (contract/EVENTS.md, Transport)."""

from __future__ import annotations

import json
import uuid

import pytest

from connectors.publish import publish_lines, route
from tests.factories import ALL_TYPES, event, raw
from tests.kafka_helpers import read_all

FAMILY = {
    "patient.registered": "intake",
    "consent.updated": "intake",
    "intake.assessed": "intake",
    "consult.completed": "intake",
    "rems.enrolled": "intake",
    "session.scheduled": "sessions",
    "session.completed": "sessions",
    "session.cancelled": "sessions",
    "rems.form_submitted": "sessions",
    "checkin.completed": "followups",
    "adverse_event.reported": "followups",
    "outreach.status": "followups",
    "alert.acknowledged": "alertactions",
    "alert.resolved": "alertactions",
    "outreach.requested": "outreach",
    "clinical.alert": "alerts",
}


@pytest.mark.parametrize("event_type", ALL_TYPES)
def test_every_type_is_routed_to_its_family_topic_keyed_by_patient(settings, event_type):
    topic, key = route(raw(event(event_type, patient_id="P0042")), settings)
    assert topic == getattr(settings, f"topic_{FAMILY[event_type]}") and key == b"P0042"


@pytest.mark.parametrize("line", [b"{not json", b"[1, 2]", json.dumps({"event_type": "x.y"}).encode()])
def test_unroutable_lines_still_go_out_so_they_are_quarantined(settings, line):
    assert route(line, settings) == (settings.topic_intake, None)


@pytest.mark.integration
def test_publish_sends_every_line_keyed_by_patient(kafka_settings):
    s = kafka_settings
    lines = [
        raw(event("session.completed", patient_id="P0001")),
        raw(event("checkin.completed", patient_id="P0002")),
        b"{broken",
        b"",
    ]
    sent = publish_lines(s, lines)
    assert dict(sent) == {s.topic_sessions: 1, s.topic_followups: 1, s.topic_intake: 1}, "blank lines skipped"
    [session] = read_all(s, s.topic_sessions, expect=1)
    assert session.key == b"P0001" and session.value == lines[0]


@pytest.mark.integration
def test_one_busy_partition_is_published_in_full_without_queueing_towards_the_deadline(kafka_settings):
    """100,000 lines of one patient (one partition) as fast as they come. kafka-python moves one
    batch per partition per request, so with its 16 KiB default batches the partition's queue grew
    for the whole publish: a record waited 8.1 s before it was sent (measured), and a million-line
    publish expired its oldest batches unsent. With the product's batches the wait stays near 0.05 s.
    The bound (5 s) leaves a loaded machine's stalls room and still fails with 16 KiB batches."""
    one = event("consent.updated", patient_id="P0001")
    lines = [raw({**one, "event_id": str(uuid.uuid4())}) for _ in range(100_000)]
    report = publish_lines(kafka_settings, lines)
    assert sum(report.values()) == len(lines) and not report.failed
    assert report.queue_max_s is not None and report.queue_max_s < 5.0, report.queue_max_s
