"""`clinicflow publish`: send a JSON Lines file of events to their family's topic, keyed by patient_id.

It tells the truth: a line counts as sent once the broker acknowledged it; a line
the broker can never take (over the record size limit) is reported failed with its
line number; and when the broker goes away mid-file the run stops with the count
sent and the line to resume from (`--from-line`), the lines before it all acknowledged.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable

from kafka import errors as kerr

from connectors.exceptions import PermanentKafkaError, PublishInterruptedError
from connectors.kafka import classify, close_producer, make_producer
from core.settings import Settings
from schemas.events import FAMILY_OF


def route(line: bytes, settings: Settings) -> tuple[str, bytes | None]:
    """(topic, key) for a line: its family's topic; lines whose type cannot be read go to intake."""
    topics = {
        "intake": settings.topic_intake,
        "sessions": settings.topic_sessions,
        "followups": settings.topic_followups,
        "alertactions": settings.topic_alertactions,
        "outreach": settings.topic_outreach,
        "alerts": settings.topic_alerts,
    }
    try:
        obj = json.loads(line)
    except (ValueError, RecursionError):
        return settings.topic_intake, None
    if not isinstance(obj, dict):
        return settings.topic_intake, None
    key = obj.get("patient_id")
    family = FAMILY_OF.get(obj.get("event_type")) if isinstance(obj.get("event_type"), str) else None
    return topics.get(family, settings.topic_intake), key.encode() if isinstance(key, str) else None


class PublishReport(Counter):
    """Lines acknowledged per topic (the Counter), lines refused for good, and where to resume."""

    def __init__(self, from_line: int = 1) -> None:
        super().__init__()
        self.failed: list[dict] = []
        self.from_line = from_line
        self.last_line = from_line - 1
        self._settled: set[int] = set()  # acknowledged or refused for good
        self.transient: Exception | None = None
        # The longest a record waited in the producer's queue before it was sent: a deadline's margin.
        self.queue_max_s: float | None = None

    def acked(self, line: int, topic: str) -> None:
        self[topic] += 1
        self._settled.add(line)

    def refused(self, line: int, e: Exception) -> None:
        self.failed.append({"line": line, "error": f"{type(e).__name__}: {e}"})
        self._settled.add(line)

    def resume_line(self) -> int:
        """The first line not settled: every line before it was acknowledged or reported failed."""
        n = self.from_line
        while n in self._settled:
            n += 1
        return n

    def as_dict(self) -> dict:
        return {
            "sent": dict(self),
            "sent_total": sum(self.values()),
            "failed": sorted(self.failed, key=lambda f: f["line"]),
            "first_line": self.from_line,
            "last_line": self.last_line,
        }


def publish_lines(
    settings: Settings, lines: Iterable[bytes], tick: Callable[[int], None] = lambda n: None, from_line: int = 1
) -> PublishReport:
    """Publish every line from `from_line` on (even invalid ones: the pipeline must see them to quarantine them)."""
    # A lost broker fails each pending line within two request timeouts, not the client's default two minutes.
    deadline_ms = 2 * settings.kafka_request_timeout_ms
    producer = make_producer(settings, max_block_ms=deadline_ms, delivery_timeout_ms=deadline_ms)
    report = PublishReport(from_line)
    try:
        for n, line in enumerate(lines, start=1):
            if n < from_line:
                continue
            report.last_line = n
            line = line.rstrip(b"\r\n")
            if not line:
                report._settled.add(n)
                continue
            _send(producer, settings, report, n, line)
            if report.transient is not None:
                break
            if n % 1000 == 0:
                tick(1000)
        _flush(producer, report, deadline_ms / 1000 + 5)
        report.queue_max_s = _queue_max_s(producer)
    finally:
        close_producer(producer)
    if report.transient is not None:
        raise _interrupted(report)
    return report


def _send(producer, settings: Settings, report: PublishReport, n: int, line: bytes) -> None:
    topic, key = route(line, settings)
    try:
        future = producer.send(topic, key=key, value=line)
    except (kerr.KafkaError, OSError) as e:
        _failed(report, n, e)
        return
    future.add_callback(lambda _meta, n=n, topic=topic: report.acked(n, topic))
    future.add_errback(lambda e, n=n: _failed(report, n, e))


def _failed(report: PublishReport, n: int, e: Exception) -> None:
    if isinstance(classify(e, "publishing"), PermanentKafkaError):
        report.refused(n, e)
    elif report.transient is None:
        report.transient = e


def _flush(producer, report: PublishReport, timeout_s: float) -> None:
    try:
        producer.flush(timeout=timeout_s)
    except (kerr.KafkaError, OSError) as e:
        report.transient = report.transient or e


def _queue_max_s(producer) -> float | None:
    value = producer.metrics().get("producer-metrics", {}).get("record-queue-time-max")
    return value if isinstance(value, float) and value >= 0 else None  # kafka-python reports seconds


def _interrupted(report: PublishReport) -> PublishInterruptedError:
    e = report.transient
    resume = report.resume_line()
    err = PublishInterruptedError(
        f"the broker was lost while publishing ({type(e).__name__}: {e}); {sum(report.values())} line(s) were "
        f"acknowledged, every line before line {resume} among them; when the broker is back, resume with "
        f"`clinicflow publish FILE --from-line {resume}` (lines sent twice land once: event ids dedupe)"
    )
    err.report = report
    return err
