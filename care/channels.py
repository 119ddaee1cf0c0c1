"""Outreach channel adapters: how a dispatched task reaches the patient.

The planner never knows which channel delivers. `stage` runs inside the
outreach transaction and records what must be sent (in the outbox); `deliver`
runs after the commit and sends what is staged and unsent. The built-in
channel is the `clinic.outreach.v1` Kafka topic, for the clinic's messaging
provider to consume; a clinic plugs a provider in directly with a
ProviderChannel. Either way one task has one outreach_id, so a resend after a
crash is recognisable as the same message.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import duckdb

from care.exceptions import ChannelError
from connectors.exceptions import PublisherFencedError
from connectors.kafka import retry_transient
from connectors.publisher import OutboxSender, SendOutcome
from warehouse import outbox

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OutreachRequest:
    """One check-in to send: ids, channel and template only, never clinical content."""

    outreach_id: str
    task_id: str
    patient_id: str
    clinic_id: str
    channel: str
    template: str
    send_after: datetime
    value: bytes  # the outreach.requested event, contract-validated


class OutreachChannel(Protocol):
    name: str

    def stage(self, conn: duckdb.DuckDBPyConnection, requests: list[OutreachRequest], now: datetime) -> None: ...

    def deliver(self, conn: duckdb.DuckDBPyConnection) -> int: ...


def _stage_outbox(conn, requests: list[OutreachRequest], topic: str, now: datetime) -> None:
    outbox.stage_rows(conn, "outreach", topic, [(r.outreach_id, r.patient_id.encode(), r.value) for r in requests], now)


def publish_outbox(conn: duckdb.DuckDBPyConnection, sender: OutboxSender, kinds: tuple[str, ...] | None = None) -> int:
    """Publish the unsent outbox rows (of these kinds), riding out a short broker outage.

    The sender opens at the first round that has rows: opening fences every earlier publisher,
    so the rows they committed to Kafka and did not mark are found there first and not sent again.
    """

    def send(records):
        if sender.open():
            try:
                done = set(outbox.reconcile(conn, sender.find))
            except BaseException:
                sender.close()  # the next attempt opens again, and so scans again, before it sends
                raise
            records = [r for r in records if r.message_id not in done]
        return sender.send(records) if records else SendOutcome()

    return retry_transient(lambda: outbox.publish(conn, send, kinds=kinds))


def publish_to_kafka(conn, settings, kinds: tuple[str, ...]) -> int:
    """Publish the unsent outbox rows of these kinds with a sender of its own. Fenced by an ingest
    worker that publishes at the same time, it leaves the rows to that worker, which sends every kind."""
    sender = OutboxSender(settings)
    try:
        return publish_outbox(conn, sender, kinds)
    except PublisherFencedError as e:
        log.info("%s", e)
        return 0
    finally:
        sender.close()


class KafkaTopicChannel:
    """The built-in channel: outreach.requested on the outreach topic."""

    name = "kafka"

    def __init__(self, settings):
        self.settings = settings

    def stage(self, conn, requests, now) -> None:
        _stage_outbox(conn, requests, self.settings.topic_outreach, now)

    def deliver(self, conn) -> int:
        """Publish the staged outreach requests (only those: the stage publishes its alerts itself)."""
        return publish_to_kafka(conn, self.settings, ("outreach",))


class Provider(Protocol):
    """An SMS or e-mail provider's client; must treat a repeated outreach_id as the same message."""

    def send(self, outreach_id: str, patient_id: str, channel: str, template: str) -> None: ...


class ProviderChannel:
    """Deliver straight to a provider; staged rows wait in the outbox under `provider:<name>`."""

    def __init__(self, name: str, provider: Provider):
        self.name = name
        self.provider = provider
        self.topic = f"provider:{name}"

    def stage(self, conn, requests, now) -> None:
        _stage_outbox(conn, requests, self.topic, now)

    def deliver(self, conn) -> int:
        rows = conn.execute(
            "SELECT message_id, value FROM outbox WHERE topic = ? AND sent_at IS NULL ORDER BY created_at, message_id",
            [self.topic],
        ).fetchall()
        sent = 0
        for message_id, value in rows:
            ev = json.loads(bytes(value))
            p = ev["payload"]
            try:
                self.provider.send(p["outreach_id"], ev["patient_id"], p["channel"], p["template"])
            except Exception as e:  # the provider is outside the system: any failure is its own
                raise ChannelError(
                    f"{self.name} refused outreach {message_id}: {e}; it stays queued and is "
                    "retried on the next outreach run"
                ) from e
            outbox.mark(conn, [message_id], [])  # retried if an ingest worker's batch conflicts
            sent += 1
        return sent
