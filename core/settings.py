"""One settings object for the whole project.

Values come from `CLINICFLOW_*` environment variables or a `.env` file in the
working directory; command-line options override them. The object is frozen:
code receives it, never changes it.
"""

from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from dotenv import dotenv_values
from pydantic import Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from core.errors import SettingsError

ENV_PREFIX = "CLINICFLOW_"


class Settings(BaseSettings):
    """Typed, bounded configuration of clinicflow."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=".env",
        env_file_encoding="utf-8",
        frozen=True,
        extra="ignore",
    )

    home: Path | None = Field(
        default=None, description="The checkout a Prefect worker runs flows from (prefect.yaml's pull step)."
    )

    # --- Kafka -----------------------------------------------------------------
    kafka_bootstrap_servers: str | None = Field(
        default=None,
        min_length=3,
        description="host:port[,host:port] of your own cluster. Unset: the local broker "
        "that `clinicflow kafka up` runs on 127.0.0.1.",
    )
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        default="PLAINTEXT", description="Kafka security protocol of the cluster."
    )
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = Field(
        default=None, description="SASL mechanism, for SASL_* protocols."
    )
    kafka_sasl_username: str | None = Field(default=None, max_length=256, description="SASL user name.")
    kafka_sasl_password: SecretStr | None = Field(default=None, description="SASL password (never logged).")
    kafka_ssl_cafile: Path | None = Field(default=None, description="CA bundle for SSL protocols.")
    kafka_request_timeout_ms: int = Field(
        default=30_000, ge=1_000, le=300_000, description="Timeout of one Kafka request."
    )
    kafka_bootstrap_timeout_ms: int = Field(
        default=30_000,
        ge=1_000,
        le=300_000,
        description="How long a client tries to reach the first broker before the command fails and names "
        "CLINICFLOW_KAFKA_BOOTSTRAP_SERVERS (a refused SASL password looks the same).",
    )

    # --- The local broker (ignored when kafka_bootstrap_servers is set) --------
    local_kafka_port: int = Field(
        default=19092, ge=1024, le=65534, description="Client port of the local broker; the controller uses port+1."
    )
    local_kafka_dir: Path = Field(default=Path("var/kafka"), description="Config, data and logs of the local broker.")
    local_kafka_heap_mb: int = Field(default=512, ge=256, le=8192, description="JVM heap of the local broker.")
    kafka_libs_dir: Path = Field(default=Path(".cache/kafka/libs"), description="Broker jars, copied there by Maven.")

    # --- Topics (defaults from contract/EVENTS.md) -----------------------------
    topic_intake: str = Field(default="clinic.intake.v1", min_length=1, max_length=249, description="Intake events.")
    topic_sessions: str = Field(
        default="clinic.sessions.v1", min_length=1, max_length=249, description="Session events."
    )
    topic_followups: str = Field(
        default="clinic.followups.v1", min_length=1, max_length=249, description="Follow-up events."
    )
    topic_alertactions: str = Field(
        default="clinic.alertactions.v1",
        min_length=1,
        max_length=249,
        description="alert.acknowledged and alert.resolved in, from the on-call queue.",
    )
    topic_outreach: str = Field(
        default="clinic.outreach.v1", min_length=1, max_length=249, description="outreach.requested out."
    )
    topic_alerts: str = Field(
        default="clinic.alerts.v1", min_length=1, max_length=249, description="clinical.alert out."
    )
    topic_dlq: str = Field(
        default="clinic.dlq.v1", min_length=1, max_length=249, description="Rejected input, byte for byte."
    )
    topic_partitions: int = Field(default=3, ge=1, le=1000, description="Partitions of topics that clinicflow creates.")
    topic_replication_factor: int = Field(
        default=1, ge=1, le=10, description="Replication factor of topics that clinicflow creates."
    )

    # --- Ingest ----------------------------------------------------------------
    consumer_group: str = Field(
        default="clinicflow-ingest", min_length=1, max_length=255, description="Consumer group."
    )
    consumer_session_timeout_ms: int = Field(
        default=10_000,
        ge=2_000,
        le=300_000,
        description="How long the group waits for a silent worker before its partitions go to the others "
        "(a worker killed outright is replaced after this long). At least the broker's "
        "group.min.session.timeout.ms: 6 s by default, 2 s on the local broker.",
    )
    batch_max_events: int = Field(
        default=20_000,
        ge=1,
        le=200_000,
        description="Micro-batch bound: events. Reached only with a backlog (a follower's steady stream is "
        "cut when nothing more has arrived); larger batches re-derive a busy patient once for many of its events.",
    )
    batch_max_ms: int = Field(
        default=500,
        ge=10,
        le=60_000,
        description="Micro-batch bound: milliseconds of polling. A follower with events in hand stops sooner, as "
        "soon as nothing more has arrived; a drain, when caught up.",
    )
    max_message_bytes: int = Field(
        default=1_048_576, ge=1_024, le=16_777_216, description="Larger messages are rejected, not parsed."
    )
    kafka_max_message_bytes: int = Field(
        default=1_048_588,
        ge=1_024,
        le=104_857_600,
        description="The largest record the cluster accepts (the broker's message.max.bytes, or the topic's "
        "max.message.bytes if lower). A DLQ copy that would not fit carries a truncated value and the "
        "header clinicflow.truncated; the full bytes stay in quarantine.",
    )
    escalation_interval_s: int = Field(
        default=60,
        ge=5,
        le=3600,
        description="While ingest runs it also escalates due alert episodes this often, so an ingest that holds "
        "the warehouse for hours (follow mode) never holds escalation up.",
    )
    clock_skew_seconds: int = Field(
        default=300, ge=0, le=86_400, description="How far ahead of the pipeline's clock a timestamp may be."
    )

    backup_dir: Path | None = Field(
        default=None,
        description="Where `clinicflow backup` and the daily backup deployment put warehouse backups; put it on "
        "another disk or a mounted share (a backup on the warehouse's own disk dies with it).",
    )
    lake_snapshot_retention_days: float = Field(
        default=7,
        ge=0,
        le=3650,
        description="Time travel (`AT (VERSION => n)`) reaches this far back: lake maintenance expires older "
        "snapshots and then removes the files only they referenced.",
    )
    maintenance_interval_s: int = Field(
        default=86_400,
        ge=60,
        le=30 * 86_400,
        description="`ingest --follow` runs a round of lake maintenance this often, one short step between two "
        "batches (the daily `maintenance` deployment does the same when no follower holds the writer).",
    )
    lake_compact_interval_s: int = Field(
        default=30,
        ge=5,
        le=86_400,
        description="A running ingest merges the lake's small Parquet files this often (files under 16 MiB, "
        "table by table between batches, within about 0.1 s a gap): every batch writes a file per table, and "
        "every statement on a table reads all of its files, so without it a follower's batches slow down "
        "by the hour until the daily maintenance. The analysts' refresh thread compacts the analysts' lake "
        "as often (rewriting its files at least half deleted, then merging).",
    )
    backup_keep: int = Field(
        default=7, ge=1, le=3650, description="Backups kept in backup_dir; older ones are removed."
    )

    # --- The local PostgreSQL catalog server (`clinicflow postgres up`) ----------
    local_postgres_port: int = Field(
        default=15432, ge=1024, le=65535, description="Port of the local PostgreSQL server, on 127.0.0.1."
    )
    local_postgres_dir: Path = Field(
        default=Path("var/postgres"), description="Data, log and socket of the local PostgreSQL server."
    )
    postgres_password: SecretStr | None = Field(
        default=None,
        description="Password of the `clinicflow` role of the local PostgreSQL server (`make setup` writes a "
        "random one to .env).",
    )

    # --- Warehouse -------------------------------------------------------------
    warehouse_path: Path = Field(
        default=Path("var/clinic.duckdb"),
        description="Names the writers' local folder: each writing process spills to "
        "<stem>.writers/<pid>/ beside it, and the default lake is <stem>.lake/ (see warehouse_catalog "
        "and warehouse_data_path). A file here with tables is a warehouse of the release before the lake.",
    )
    warehouse_memory_limit_mb: int = Field(
        default=512,
        ge=64,
        le=65536,
        description="DuckDB buffer pool of the writer; bounds ingest's memory (beyond it DuckDB spills to the "
        "writer's temporary folder, but not everything can spill). 256 ran out of memory near 3.1 million events "
        "(a million-event drain peaked at 1,000 MiB with 256, 1,184 with 512).",
    )
    warehouse_threads: int = Field(
        default=1,
        ge=1,
        le=64,
        description="DuckDB threads of the pipeline's warehouse connections (analysts' queries keep DuckDB's "
        "default). One measured fastest on 2 cores: a one-event batch 162 -> 111 ms, 20,000-event batches "
        "7,821 -> 8,548 events/s; raise it on a larger machine only after `make bench-landing` says so.",
    )
    warehouse_catalog: SecretStr | None = Field(
        default=None,
        description="The lake's catalog: `sqlite:<file>` (one machine) or `postgres:<libpq connection string>` "
        "(several hosts; e.g. `postgres:host=127.0.0.1 port=15432 dbname=clinicflow user=clinicflow`, the "
        "password from CLINICFLOW_POSTGRES_PASSWORD when the string has none). Unset: "
        "<stem>.lake/catalog.sqlite beside the warehouse file. Kept secret: it may hold a password.",
    )
    warehouse_data_path: Path | None = Field(
        default=None,
        description="Folder of the lake's Parquet files (a local disk or a shared mount). Unset: "
        "<stem>.lake/data/ beside the warehouse file.",
    )
    analytics_catalog: SecretStr | None = Field(
        default=None,
        description="The analysts' lake's catalog (`sqlite:<file>` or `postgres:<libpq string>`): the analytics "
        "views as tables, no patient_id, refreshed incrementally. Unset: analytics.lake/catalog.sqlite beside "
        "clinic.duckdb (else <stem>.analytics.lake/), so a scratch backfill never replaces what analysts see.",
    )
    analytics_data_path: Path | None = Field(
        default=None,
        description="Folder of the analysts' lake's Parquet files. Unset: the data/ folder beside its catalog "
        "(analytics.lake/data/).",
    )
    analytics_group: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="Unix group whose members may read the analysts' lake (its files 0640, its folders 0750). "
        "Unset: the writer's own group. The writer's warehouse stays readable by its owner only.",
    )
    snapshot_interval_s: float = Field(
        default=15.0,
        ge=0,
        le=3600,
        description="Refresh the analysts' lake at most this often while ingesting (their staleness bound).",
    )
    quality_dir: Path = Field(default=Path("var/gx"), description="Great Expectations project and Data Docs.")
    quality_max_stale_hours: float = Field(
        default=24, gt=0, le=24 * 365, description="The quality flow fails when nothing landed for this long."
    )
    writer_slot_timeout_s: float = Field(
        default=600,
        ge=1,
        le=86_400,
        description="How long a writing flow waits for the warehouse-writer slot before it fails.",
    )
    pseudonym_secret: SecretStr | None = Field(
        default=None,
        description="HMAC key for analysts' patient_key; at least 32 characters. Required to land data.",
    )

    # --- Care plan (contract/CARE_PLAN.md); every number there is one of these ----------
    care_plan_delay_s: float = Field(
        default=60,
        ge=0,
        le=3600,
        description="Re-plan a patient's follow-up tasks at most this often while events land (0: in every batch). "
        "Alerts never wait; consent changes and cancellations re-plan at once; every run plans all "
        "queued patients before it ends, and outreach before it dispatches.",
    )
    care_plan_chunk_patients: int = Field(
        default=2_000, ge=1, le=100_000, description="Queued patients re-planned per transaction (bounds memory)."
    )
    care_day1_hours: int = Field(default=24, ge=1, le=168, description="checkin_day1 due this long after ended_at.")
    care_month_days: tuple[int, int, int, int] = Field(
        default=(30, 90, 180, 365), description="checkin_month1/3/6/12 due these days after the first session."
    )
    care_rems_form_days: int = Field(default=7, ge=1, le=30, description="rems_form_due this long after ended_at.")
    care_quiet_start: str = Field(
        default="21:00",
        pattern=r"^([01]\d|2[0-3]):[0-5]\d$",
        description="Default quiet hours start, patient local time.",
    )
    care_quiet_end: str = Field(
        default="08:00",
        pattern=r"^([01]\d|2[0-3]):[0-5]\d$",
        description="Default quiet hours end, patient local time.",
    )
    care_expire_days: int = Field(
        default=7, ge=1, le=60, description="An open/dispatched patient task expires this long after send_after."
    )
    care_checkin_match_days: int = Field(
        default=3, ge=0, le=30, description="An unlinked check-in completes a task due within this window."
    )
    care_bp_crisis_systolic: int = Field(default=180, ge=100, le=260, description="bp_crisis at or above (mmHg).")
    care_bp_crisis_diastolic: int = Field(default=110, ge=60, le=160, description="bp_crisis at or above (mmHg).")
    care_spo2_min: int = Field(default=90, ge=50, le=100, description="respiratory_depression below this SpO2 %.")
    care_rems_monitoring_minutes: int = Field(
        default=120, ge=1, le=720, description="rems_monitoring_short under this many minutes."
    )
    care_dosing_bp_systolic: int = Field(
        default=140, ge=90, le=260, description="dosed_above_bp_threshold when bp_pre systolic is above."
    )
    care_dosing_bp_diastolic: int = Field(
        default=90, ge=50, le=160, description="dosed_above_bp_threshold when bp_pre diastolic is above."
    )
    care_worsening_points: int = Field(
        default=5, ge=1, le=27, description="worsening when a PHQ-9 total is this far above baseline."
    )
    care_item9_threshold: int = Field(default=1, ge=1, le=3, description="phq9_item9_positive at or above.")
    care_escalate_urgent_level1_minutes: int = Field(
        default=15,
        ge=0,
        le=10_080,
        description="An unacknowledged urgent episode escalates to level 1 after this "
        "many minutes from its first alert's raised_at; 0: never.",
    )
    care_escalate_urgent_level2_minutes: int = Field(
        default=30, ge=0, le=10_080, description="Urgent episodes: level 2 after this many minutes; 0: never."
    )
    care_escalate_high_level1_minutes: int = Field(
        default=1440, ge=0, le=10_080, description="High episodes: level 1 after this many minutes; 0: never."
    )
    care_escalate_high_level2_minutes: int = Field(
        default=0, ge=0, le=10_080, description="High episodes: level 2 after this many minutes; 0: never."
    )
    care_escalate_routine_level1_minutes: int = Field(
        default=0, ge=0, le=10_080, description="Routine episodes: level 1 after this many minutes; 0: never."
    )
    care_escalate_routine_level2_minutes: int = Field(
        default=0, ge=0, le=10_080, description="Routine episodes: level 2 after this many minutes; 0: never."
    )
    care_escalate_max_age_days: int = Field(
        default=7,
        ge=1,
        le=90,
        description="Episodes whose first alert was raised longer ago than this before "
        "the escalation clock are never escalated (history loaded late is not paged).",
    )
    care_outcome_min_baseline: int = Field(
        default=10, ge=0, le=27, description="Response/remission count patients with this baseline or more."
    )
    care_remission_below: int = Field(default=5, ge=1, le=27, description="Remission: latest PHQ-9 below this.")

    @model_validator(mode="after")
    def _check(self) -> Settings:
        if self.kafka_security_protocol.startswith("SASL") and not (
            self.kafka_sasl_mechanism and self.kafka_sasl_username and self.kafka_sasl_password
        ):
            raise ValueError(
                "kafka_security_protocol is SASL_*; set CLINICFLOW_KAFKA_SASL_MECHANISM, "
                "CLINICFLOW_KAFKA_SASL_USERNAME and CLINICFLOW_KAFKA_SASL_PASSWORD"
            )
        for name in ("warehouse_catalog", "analytics_catalog"):
            value = getattr(self, name)
            if value is not None and not value.get_secret_value().startswith(("sqlite:", "postgres:")):
                raise ValueError(f"{name} must be sqlite:<file> or postgres:<libpq connection string>")
        for sev in ("urgent", "high", "routine"):
            one, two = (getattr(self, f"care_escalate_{sev}_level{n}_minutes") for n in (1, 2))
            if two and not (one and two > one):
                raise ValueError(
                    f"care_escalate_{sev}_level2_minutes ({two}) needs a level 1 threshold below it "
                    f"(care_escalate_{sev}_level1_minutes is {one})"
                )
        secret = self.pseudonym_secret
        if secret is not None and len(secret.get_secret_value()) < 32:
            raise ValueError("pseudonym_secret is shorter than 32 characters; use e.g. `openssl rand -hex 32`")
        return self

    @property
    def uses_local_broker(self) -> bool:
        """True when clinicflow manages the broker itself."""
        return self.kafka_bootstrap_servers is None

    @property
    def bootstrap_servers(self) -> str:
        """The bootstrap servers clients connect to."""
        return self.kafka_bootstrap_servers or f"127.0.0.1:{self.local_kafka_port}"

    @property
    def inbound_topics(self) -> tuple[str, str, str, str]:
        """Topics the ingest flow consumes, in the order of INBOUND_FAMILIES."""
        return (self.topic_intake, self.topic_sessions, self.topic_followups, self.topic_alertactions)

    @property
    def all_topics(self) -> tuple[str, ...]:
        """Every topic of the contract."""
        return (*self.inbound_topics, self.topic_outreach, self.topic_alerts, self.topic_dlq)

    def lake_location(self) -> tuple[str, Path]:
        """(catalog, data path) of the warehouse's lake, the defaults following warehouse_path."""
        home = self.warehouse_path.with_name(self.warehouse_path.stem + ".lake")
        return self._location(self.warehouse_catalog, self.warehouse_data_path, home)

    def analytics_location(self) -> tuple[str, Path]:
        """(catalog, data path) of the analysts' lake; by default it follows the warehouse, so that a
        scratch backfill into another warehouse never replaces what analysts see."""
        wh = self.warehouse_path
        home = wh.with_name("analytics.lake" if wh.name == "clinic.duckdb" else f"{wh.stem}.analytics.lake")
        return self._location(self.analytics_catalog, self.analytics_data_path, home)

    def _location(self, catalog: SecretStr | None, data: Path | None, home: Path) -> tuple[str, Path]:
        text = f"sqlite:{home / 'catalog.sqlite'}" if catalog is None else catalog.get_secret_value()
        if text.startswith("postgres:") and "password=" not in text and self.postgres_password:
            text += f" password={self.postgres_secret()}"
        return text, data or home / "data"

    def postgres_secret(self) -> str:
        """The local PostgreSQL role's password; fails loudly when it is not configured."""
        if self.postgres_password is None:
            raise SettingsError(
                "CLINICFLOW_POSTGRES_PASSWORD is not set; put a random value in the environment or .env "
                "(`make setup` writes one for local use)"
            )
        return self.postgres_password.get_secret_value()

    def pseudonym_key(self) -> bytes:
        """The HMAC key for patient_key; fails loudly when it is not configured."""
        if self.pseudonym_secret is None:
            raise SettingsError(
                "CLINICFLOW_PSEUDONYM_SECRET is not set; put a random value of 32+ characters in the "
                "environment or .env (`make setup` writes one for local use)"
            )
        return self.pseudonym_secret.get_secret_value().encode()


def _unknown_env_vars(environ: dict[str, str]) -> list[str]:
    known = {ENV_PREFIX + name.upper() for name in Settings.model_fields}
    return sorted(k for k in environ if k.upper().startswith(ENV_PREFIX) and k.upper() not in known)


def _dotenv_names() -> dict[str, str]:
    """The variables of the .env file the settings read (none when there is no such file)."""
    env_file = Settings.model_config.get("env_file")
    if not env_file or not Path(env_file).is_file():
        return {}
    return {k: v or "" for k, v in dotenv_values(env_file).items()}


def load_settings(**overrides: object) -> Settings:
    """Build the settings, turning every problem into one readable SettingsError."""
    unknown = _unknown_env_vars(dict(os.environ))
    if unknown:
        raise SettingsError(f"unknown setting(s) {', '.join(unknown)}; check the spelling against docs/SETTINGS.md")
    in_file = _unknown_env_vars(_dotenv_names())
    if in_file:
        raise SettingsError(
            f"unknown setting(s) {', '.join(in_file)} in {Settings.model_config.get('env_file')}; check the spelling "
            "against docs/SETTINGS.md"
        )
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as e:
        problems = "; ".join(
            f"{ENV_PREFIX}{'.'.join(map(str, err['loc'])).upper() or 'SETTINGS'}: {err['msg']}" for err in e.errors()
        )
        raise SettingsError(f"invalid settings: {problems}") from e


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return load_settings()


def settings_markdown() -> str:
    """docs/SETTINGS.md, generated from the model so it cannot drift."""
    lines = [
        "# Settings",
        "",
        "Generated from `core/settings.py` by `clinicflow settings --markdown`; a test keeps it current.",
        "Set them as environment variables or in `.env`.",
        "",
        "| variable | default | bounds | description |",
        "| --- | --- | --- | --- |",
    ]
    for name, field in Settings.model_fields.items():
        bounds = ", ".join(str(m) for m in field.metadata) or ""
        default = "(unset)" if field.default is None else f"`{field.default}`"
        lines.append(f"| `{ENV_PREFIX}{name.upper()}` | {default} | {bounds} | {field.description} |")
    return "\n".join(lines) + "\n"


def child_env(settings: Settings, base: dict[str, str] | None = None) -> dict[str, str]:
    """An environment that gives a child process exactly these settings (secrets included: for
    child processes only, never for logs)."""
    env = {k: v for k, v in (base if base is not None else os.environ).items() if not k.startswith(ENV_PREFIX)}
    for name, value in settings:
        if value is None:
            continue
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        elif isinstance(value, tuple):
            value = json.dumps(value)
        env[ENV_PREFIX + name.upper()] = str(value)
    return env
