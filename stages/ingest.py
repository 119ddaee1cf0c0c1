"""The ingest loop shared by `--drain`, `--follow` and `load`: read, validate, land, publish, commit.

Plain functions; flows/ingest.py wraps the batch steps in Prefect tasks.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import signal
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from functools import partial
from pathlib import Path
from typing import Literal

import duckdb

from care.channels import publish_outbox
from care.escalation import Notify, escalate, notify_all
from care.lifecycle import backfill_episodes
from care.planner import CarePlanner, PendingPlans, plan_pending
from care.policy import CarePolicy
from connectors.consumer import KafkaSource
from connectors.exceptions import PublisherFencedError
from connectors.publisher import OutboxSender
from core.settings import Settings
from schemas.events import INBOUND_FAMILIES
from schemas.messages import Message
from schemas.validate import Clock, file_lines
from stages.boundary import stage
from stages.exceptions import StageError
from warehouse.analytics import ALIAS as ANALYSTS
from warehouse.analytics import SnapshotPublisher, apply_params
from warehouse.db import Lake, connect
from warehouse.exceptions import PartitionsLostError
from warehouse.landing import BatchResult, LandingConfig, stored_offsets
from warehouse.leases import Leases, exclusive
from warehouse.maintenance import MaintenanceTimer
from warehouse.poison import land_isolating
from warehouse.quality import check_batch

log = logging.getLogger("clinicflow.ingest")
Mode = Literal["drain", "follow"]


class StopFlag:
    """Set by SIGINT/SIGTERM; the loop finishes the batch in hand, then exits."""

    def __init__(self) -> None:
        self.stopped = False
        self.signal: int | None = None

    def set(self, signum: int | None = None, _frame=None) -> None:
        self.stopped = True
        self.signal = signum

    def install(self) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                signal.signal(sig, self.set)
            except ValueError:  # not the main thread: the caller stops us instead
                return


_gc_tuned = False


def tune_gc() -> None:
    """Freeze what start-up loaded and collect young objects less often (once per process).

    A batch allocates hundreds of thousands of short-lived objects (rows, histories).
    With CPython's default thresholds (700, 10, 10) a drain spent about 35% of its
    time in the cycle collector (measured with gc.callbacks), mostly re-scanning the
    long-lived objects of Great Expectations, pydantic and DuckDB's client. Frozen
    objects are never scanned again; everything allocated later is collected as usual.
    """
    global _gc_tuned
    if not _gc_tuned:
        gc.collect()
        gc.freeze()
        gc.set_threshold(50_000, 20, 10)
        _gc_tuned = True


def prepare_process() -> None:
    """Before a run's first event: tune the collector.

    Great Expectations is not imported here: the batch suite asks it only about a batch that
    fails a column-wise check (warehouse/quality.py), so a run pays its five seconds of import
    (and its memory) only then, if ever.
    """
    tune_gc()


def peak_rss_mib() -> int | None:
    """This process's own peak resident memory (Linux VmHWM).

    Not getrusage's ru_maxrss: across fork and exec it keeps the parent's high-water
    mark, so a child started by a process holding a gigabyte reports a gigabyte.
    """
    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) // 1024 for line in f if line.startswith("VmHWM:"))
    except (OSError, StopIteration, ValueError):
        return None


@dataclass
class IngestReport:
    """What a run did: the flow run's artifact and the CLI's summary."""

    mode: str
    batches: int = 0
    read: int = 0
    landed: int = 0
    duplicates: int = 0
    quarantined: Counter = field(default_factory=Counter)
    published: int = 0
    planned: int = 0  # patients whose tasks were re-planned from the queue
    escalated: int = 0  # alert episodes escalated while ingest held the warehouse
    lag_left: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    worker: str = ""  # this run's id in the consumer group (leases)
    partitions: set[str] = field(default_factory=set)  # every partition it held during the run

    def add(self, r: BatchResult) -> None:
        self.batches += 1
        self.read += r.read
        self.landed += r.landed
        self.duplicates += r.duplicates
        self.quarantined.update(r.quarantined)

    def as_dict(self) -> dict:
        return {
            "mode": self.mode,
            "batches": self.batches,
            "read": self.read,
            "landed": self.landed,
            "duplicates": self.duplicates,
            "quarantined": dict(self.quarantined),
            "quarantined_total": sum(self.quarantined.values()),
            "published": self.published,
            "escalated": self.escalated,
            "planned": self.planned,
            "lag_left": self.lag_left,
            "worker": self.worker,
            "partitions": sorted(self.partitions),
            "seconds": round(self.seconds, 3),
            "events_per_second": round(self.read / self.seconds, 1) if self.seconds else None,
            "peak_rss_mib": peak_rss_mib(),
        }


def landing_config(settings: Settings, group_id: str | None = None, families: bool = True) -> LandingConfig:
    """Where messages come from and go to, with the care planner and the batch quality suite."""
    fam = dict(zip(settings.inbound_topics, INBOUND_FAMILIES)) if families else {}
    return LandingConfig(
        group_id=group_id or settings.consumer_group,
        dlq_topic=settings.topic_dlq,
        families=fam,
        max_bytes=settings.max_message_bytes,
        pseudonym_key=settings.pseudonym_key(),
        planner=CarePlanner(CarePolicy.from_settings(settings)),
        quality=check_batch,
        fence=exclusive,  # ingest's workers replace it with their leases' check
    )


def clock_now(settings: Settings) -> Clock:
    return Clock(datetime.now(timezone.utc), timedelta(seconds=settings.clock_skew_seconds))


LandFn = Callable[[duckdb.DuckDBPyConnection, list[Message], Clock, LandingConfig], BatchResult]
PublishFn = Callable[[duckdb.DuckDBPyConnection, OutboxSender], int]


def default_land(conn, messages, clock, cfg) -> BatchResult:
    """Land a batch; a message that cannot be landed is quarantined as unprocessable, the rest lands."""
    return land_isolating(conn, messages, clock, cfg)


def default_publish(conn, sender: OutboxSender) -> int:
    """Publish the outbox, waiting out a broker that is briefly away (about 70 s in all)."""
    return publish_outbox(conn, sender)


@contextlib.contextmanager
def writer(settings: Settings, publish_snapshot: bool = True, plan: bool = True):
    """The warehouse for writing (migrated, with the settings' thresholds), closed on exit.

    A body that ends without an error then does what its stage asks: plans every patient
    still queued (stages that land events or dispatch tasks: `plan`), and publishes the
    analysts' lake with what it wrote (`publish_snapshot`).
    """
    conn = connect(
        settings.warehouse_path,
        memory_limit_mb=settings.warehouse_memory_limit_mb,
        lake=Lake.of(settings),
        threads=settings.warehouse_threads,
    )
    policy = CarePolicy.from_settings(settings)
    try:
        apply_params(conn, policy)
        backfill_episodes(conn, datetime.now(timezone.utc))
        yield conn
        if plan:
            plan_pending(conn, policy, datetime.now(timezone.utc), all_=True)
        if publish_snapshot:
            snapshots(settings).maybe(conn, force=True)
    finally:
        conn.close()


class EscalationTimer:
    """Escalate due episodes at the wall clock, at most every escalation_interval_s."""

    def __init__(self, settings: Settings, policy: CarePolicy, notify: Notify | None, clock, enabled: bool = True):
        self.interval, self.policy, self.notify, self.clock = settings.escalation_interval_s, policy, notify, clock
        self.enabled = enabled
        self.last: float | None = None

    def maybe(self, conn) -> int:
        started = time.monotonic()
        if not self.enabled or (self.last is not None and started - self.last < self.interval):
            return 0
        self.last = started
        now = self.clock()
        done = escalate(conn, self.policy, now)
        if self.notify is not None:
            notify_all(conn, self.notify, timedelta(days=self.policy.escalate_max_age_days), now)
        return len(done)


def snapshots(settings: Settings):
    return SnapshotPublisher(
        Lake.analysts(settings),
        settings.snapshot_interval_s,
        settings.analytics_group,
        compact_interval_s=settings.lake_compact_interval_s,
    )


@stage("ingest")
def run_ingest(
    settings: Settings,
    mode: Mode,
    *,
    stop: StopFlag | None = None,
    land: LandFn = default_land,
    publish: PublishFn = default_publish,
    progress: Callable[[str], None] = log.info,
    notify: Notify | None = None,
    as_of: datetime | None = None,
) -> IngestReport:
    """Consume the inbound topics into the warehouse until caught up (drain) or stopped (follow).

    Every escalation_interval_s it also escalates due alert episodes (handed to `notify`): the
    writer it holds would otherwise keep the escalation flow out for as long as it runs.
    `as_of` (drain only) fixes the pipeline's clock, as `load --as-of` does for files: backfills
    judged at a known instant, and the demo's fast-forward through the on-call queue's answers.
    """
    if as_of is not None and mode != "drain":
        raise StageError("ingest --as-of fixes the clock of a drain; a follower runs on the wall clock")
    now = (
        (lambda: Clock(as_of, timedelta(seconds=settings.clock_skew_seconds)))
        if as_of
        else partial(clock_now, settings)
    )
    policy = CarePolicy.from_settings(settings)
    stop = stop or StopFlag()
    prepare_process()
    report, t0 = IngestReport(mode), time.monotonic()
    snap = snapshots(settings)
    # A drain at a fixed clock replays answers that may postdate that clock's pages: it leaves
    # escalation to `clinicflow escalate --as-of` after it.
    escalations = EscalationTimer(settings, policy, notify, lambda: now().now, enabled=as_of is None)
    upkeep = MaintenanceTimer.full(
        ["lake", ANALYSTS], settings.lake_snapshot_retention_days, settings.maintenance_interval_s
    )
    compact = MaintenanceTimer.compaction("lake", settings.lake_compact_interval_s)
    pending = PendingPlans(policy)
    with writer(settings) as conn:
        snap.maybe(conn, force=True)  # analysts see the warehouse as it stands from the start
        sender = OutboxSender(settings)
        source = KafkaSource(settings, settings.inbound_topics)
        leases = Leases(settings.consumer_group)
        report.worker = leases.worker
        try:
            source.subscribe(partial(take_over, conn, leases, report.partitions), leases.release)
            cfg = replace(landing_config(settings), fence=leases.check, worker=leases.worker)
            goal = source.topic_ends() if mode == "drain" else None
            while not stop.stopped and not (goal is not None and drained(conn, source, goal, settings)):
                messages = source.poll_batch(settings.batch_max_events, settings.batch_max_ms, drain=mode == "drain")
                report.planned += pending(conn, now().now)
                if messages and not _land_fenced(conn, messages, now(), cfg, land, report, source, progress):
                    continue
                lead = leads(conn, leases, settings)
                # After landing: an answer in the batch in hand counts before anyone is paged.
                escalated = escalations.maybe(conn) if lead else 0
                report.escalated += escalated
                report.published += _publish_if(lead, conn, sender, publish)
                if messages:
                    source.commit(messages)
                    if lead:
                        snap.maybe(conn)
                    progress(f"batch {report.batches}: {len(messages)} read, {report.read} so far")
                if lead and not snap.busy:  # the analysts' lake has one writer at a time
                    _upkeep(conn, upkeep if mode == "follow" else None, compact)
            report.planned += plan_pending(conn, policy, now().now, all_=True, progress=progress)
            report.lag_left = source.lag()
        finally:
            source.close()
            sender.close()
            snap.wait()  # a background refresh of the analysts' lake ends before the warehouse closes
    report.seconds = time.monotonic() - t0
    return report


def _upkeep(conn, daily: MaintenanceTimer | None, light: MaintenanceTimer) -> None:
    """One kind of lake upkeep a gap between batches: the daily round while it is under way (its
    merges take in what the light round would do), the light one otherwise."""
    if daily is None or not daily.maybe(conn):
        light.maybe(conn)


def drained(conn, source: KafkaSource, goal: dict[tuple[str, int], int], settings: Settings) -> bool:
    """A drain ends when the group, not only this worker, has stored every partition's offset up to
    its end as of the start: partitions still leased to a worker that died come to this one when the
    group expels it, and are drained too."""
    if not source.caught_up():
        return False
    stored = stored_offsets(conn, settings.consumer_group)
    return all(stored.get(tp, 0) >= end for tp, end in goal.items())


def leads(conn, leases: Leases, settings: Settings) -> bool:
    """Whether this worker publishes the outbox, escalates, refreshes the analysts' lake and maintains
    the lake: the holder of the intake topic's partition 0 does, so that one process at a time does
    each (two publishers would send the same rows twice), handed over with that partition.

    Asked of the lake, not only of memory: a worker resumed after a pause past its session timeout
    still believes it holds the partition until it polls again."""
    return leases.confirm(conn, (settings.topic_intake, 0))


def _publish_if(lead: bool, conn, sender: OutboxSender, publish: PublishFn) -> int:
    """The leader publishes every iteration: the other workers' alerts, a crash's leftovers,
    escalations. A former leader lets its producer go; fenced, it leaves the round to the
    process that fenced it and opens again (fencing that one) next time it leads."""
    if not lead:
        sender.close()
        return 0
    try:
        return publish(conn, sender)
    except PublisherFencedError as e:
        # Routine when the outreach or escalation flow published meanwhile: info, not a warning.
        log.info("%s", e)
        return 0


def take_over(conn, leases: Leases, held: set[str], partitions: list[tuple[str, int]]) -> dict[tuple[str, int], int]:
    """On assignment: lease the partitions (fencing their previous holder), then say where each starts."""
    leases.acquire(conn, partitions)
    held.update(f"{t}/{p}" for t, p in partitions)
    names = ", ".join(f"{t}/{p}" for t, p in sorted(partitions)) or "no partitions"
    log.info("worker %s holds %s", leases.worker, names)
    return stored_offsets(conn, leases.group_id)


def _land_fenced(conn, messages, clock, cfg, land, report, source, progress) -> bool:
    """Land the batch; False if its partitions went to another worker meanwhile (then it is dropped
    unlanded, unpublished and uncommitted, and this worker rejoins the group to learn what it holds)."""
    try:
        report.add(land(conn, messages, clock, cfg))
    except PartitionsLostError as e:
        progress(f"{e}; rejoining the consumer group")
        source.rejoin()
        return False
    return True


def file_batches(path: Path, batch_size: int) -> Iterator[list[Message]]:
    """A JSON Lines file as batches of messages: topic `file:<name>`, offset = line number."""
    topic = f"file:{path.name}"
    batch: list[Message] = []
    with open(path, "rb") as f:
        for n, line in file_lines(f):
            batch.append(Message(topic, 0, n, None, line))
            if len(batch) >= batch_size:
                yield batch
                batch = []
    if batch:
        yield batch


@stage("load")
def run_load(
    settings: Settings,
    path: Path,
    as_of: datetime | None = None,
    *,
    land: LandFn = default_land,
    progress: Callable[[str], None] = log.info,
) -> IngestReport:
    """The backfill path: a file through the same validate-and-land code, no broker."""
    policy = CarePolicy.from_settings(settings)
    prepare_process()
    report, t0 = IngestReport("load"), time.monotonic()
    skew = timedelta(seconds=settings.clock_skew_seconds)
    cfg = landing_config(settings, group_id="file", families=False)
    with writer(settings) as conn:
        for messages in file_batches(path, settings.batch_max_events):
            clock = Clock(as_of or datetime.now(timezone.utc), skew)
            report.add(land(conn, messages, clock, cfg))
            report.planned += plan_pending(conn, policy, clock.now)
            progress(f"{path.name}: {report.read} lines landed or quarantined")
        report.planned += plan_pending(conn, policy, as_of or datetime.now(timezone.utc), all_=True, progress=progress)
    report.seconds = time.monotonic() - t0
    return report
