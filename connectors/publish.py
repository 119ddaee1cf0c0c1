"""`clinicflow publish`: send a JSON Lines file of events to their family's topic, keyed by patient_id."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path

from kafka import errors as kerr

from clinicflow.settings import Settings
from connectors.kafka import classify, make_producer
from schemas.events import FAMILY_OF


def route(line: bytes, settings: Settings) -> tuple[str, bytes | None]:
    """(topic, key) for a line: its family's topic; lines whose type cannot be read go to intake."""
    topics = {"intake": settings.topic_intake, "sessions": settings.topic_sessions,
              "followups": settings.topic_followups, "outreach": settings.topic_outreach,
              "alerts": settings.topic_alerts}
    try:
        obj = json.loads(line)
    except (ValueError, RecursionError):
        return settings.topic_intake, None
    if not isinstance(obj, dict):
        return settings.topic_intake, None
    key = obj.get("patient_id")
    family = FAMILY_OF.get(obj.get("event_type")) if isinstance(obj.get("event_type"), str) else None
    return topics.get(family, settings.topic_intake), key.encode() if isinstance(key, str) else None


def publish_lines(settings: Settings, lines: Iterable[bytes], tick: Callable[[int], None] = lambda n: None) -> Counter:
    """Publish every line (even invalid ones: the pipeline must see them to quarantine them)."""
    producer = make_producer(settings)
    sent: Counter = Counter()
    try:
        for n, line in enumerate(lines, start=1):
            line = line.rstrip(b"\r\n")
            if not line:
                continue
            topic, key = route(line, settings)
            producer.send(topic, key=key, value=line)
            sent[topic] += 1
            if n % 1000 == 0:
                tick(1000)
        producer.flush(timeout=120)
    except (kerr.KafkaError, OSError) as e:
        raise classify(e, "publishing events") from e
    finally:
        producer.close(timeout=30)
    return sent


def publish_file(settings: Settings, path: Path, tick=lambda n: None) -> Counter:
    with open(path, "rb") as f:
        return publish_lines(settings, f, tick)
