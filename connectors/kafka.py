"""kafka-python clients built from settings, and the error classification at this boundary."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

from kafka import KafkaProducer
from kafka import errors as kerr
from kafka.admin import KafkaAdminClient

from connectors.exceptions import PermanentKafkaError, TransientKafkaError
from connectors.local_broker import probe
from core.settings import Settings

_PERMANENT = (
    kerr.SaslAuthenticationFailedError,
    kerr.ClusterAuthorizationFailedError,
    kerr.TopicAuthorizationFailedError,
    kerr.GroupAuthorizationFailedError,
    kerr.InvalidTopicError,
    kerr.UnknownTopicOrPartitionError,
    kerr.MessageSizeTooLargeError,
    kerr.InvalidConfigurationError,
    kerr.InvalidReplicationFactorError,
    kerr.PolicyViolationError,
)


def client_config(settings: Settings) -> dict:
    """Connection options shared by every client (never logged: it holds the SASL password)."""
    cfg: dict = {
        "bootstrap_servers": settings.bootstrap_servers.split(","),
        "security_protocol": settings.kafka_security_protocol,
        "request_timeout_ms": settings.kafka_request_timeout_ms,
        "bootstrap_timeout_ms": settings.kafka_bootstrap_timeout_ms,
        "client_id": "clinicflow",
    }
    if settings.kafka_sasl_mechanism:
        cfg["sasl_mechanism"] = settings.kafka_sasl_mechanism
        cfg["sasl_plain_username"] = settings.kafka_sasl_username
        cfg["sasl_plain_password"] = settings.kafka_sasl_password.get_secret_value()
    if settings.kafka_ssl_cafile:
        cfg["ssl_cafile"] = str(settings.kafka_ssl_cafile)
    return cfg


def classify(e: Exception, doing: str) -> Exception:
    """Map a kafka-python or socket error to our transient/permanent pair, once, here."""
    if isinstance(e, _PERMANENT):
        return PermanentKafkaError(
            f"{doing} failed permanently: {type(e).__name__}: {e}; "
            "check topic names, credentials and message size in the settings"
        )
    return TransientKafkaError(
        f"{doing} failed: {type(e).__name__}: {e}; is the broker at the "
        "configured CLINICFLOW_KAFKA_BOOTSTRAP_SERVERS up? `clinicflow kafka status` tells"
    )


def connecting_error(e: Exception, doing: str, settings: Settings) -> Exception:
    """classify() for a failed connection, with the SASL hint when SASL is on: kafka-python reports a
    refused user name or password during bootstrap as a bootstrap timeout, like an absent broker."""
    err = classify(e, doing)
    if isinstance(err, TransientKafkaError) and settings.kafka_sasl_mechanism:
        return TransientKafkaError(
            f"{err}; with SASL on, a refused user name or password looks the same: check "
            "CLINICFLOW_KAFKA_SASL_USERNAME and CLINICFLOW_KAFKA_SASL_PASSWORD"
        )
    return err


PRODUCER_BATCH_BYTES = 256 * 1024


def make_producer(settings: Settings, **overrides) -> KafkaProducer:
    """An idempotent producer (acks=all) for everything clinicflow publishes."""
    try:
        # The cluster's record limit, checked here: a record the broker refuses aborts every batch in flight.
        # batch_size: kafka-python's sender moves one batch per partition per request, so with its
        # 16 KiB default a partition taking lines faster than that queued up to the whole buffer
        # (32 MiB) and its oldest batches expired unsent (a million-line publish, or one busy
        # patient's partition). 256 KiB moves 16 times as much per round trip; linger_ms still
        # sends a lone alert at once.
        return KafkaProducer(
            **client_config(settings),
            acks="all",
            linger_ms=5,
            batch_size=PRODUCER_BATCH_BYTES,
            max_request_size=settings.kafka_max_message_bytes,
            **overrides,
        )
    except (kerr.KafkaError, OSError) as e:
        raise connecting_error(e, "connecting a producer", settings) from e


def make_admin(settings: Settings) -> KafkaAdminClient:
    try:
        return KafkaAdminClient(**client_config(settings))
    except (kerr.KafkaError, OSError) as e:
        raise connecting_error(e, "connecting the admin client", settings) from e


def ensure_topics(
    settings: Settings, topics: Iterable[str], partitions: int | None = None, replication: int | None = None
) -> dict[str, str]:
    """Create the topics that do not exist yet; returns {topic: 'created' | 'exists'}."""
    wanted = list(dict.fromkeys(topics))
    spec = {
        "num_partitions": partitions or settings.topic_partitions,
        "replication_factor": replication or settings.topic_replication_factor,
    }
    admin = make_admin(settings)
    missing: list[str] = []
    try:
        existing = set(admin.list_topics())
        missing = [t for t in wanted if t not in existing]
        if missing:
            admin.create_topics({t: spec for t in missing}, raise_errors=False, wait_for_metadata=True)
        now = set(admin.list_topics())
    except (kerr.KafkaError, OSError) as e:
        raise classify(e, f"creating topics {missing or wanted}") from e
    finally:
        admin.close()
    absent = [t for t in wanted if t not in now]
    if absent:
        raise PermanentKafkaError(
            f"topics {absent} could not be created; check their names and that the "
            f"cluster allows {spec['replication_factor']} replica(s)"
        )
    return {t: ("created" if t in missing else "exists") for t in wanted}


def retry_transient(fn, delays=(1, 2, 5, 10, 20, 30), sleep=None):
    """Call fn, retrying TransientKafkaError after each delay; the last failure propagates."""
    sleep = sleep or time.sleep
    for delay in delays:
        try:
            return fn()
        except TransientKafkaError as e:
            logging.getLogger("clinicflow.kafka").warning("%s; retrying in %ss", e, delay)
            sleep(delay)
    return fn()


def probe_cluster(settings: Settings, timeout_s: float = 10) -> tuple[bool, str]:
    """The produce-and-consume round trip against the configured cluster, with its security settings."""
    cfg = {k: v for k, v in client_config(settings).items() if k != "bootstrap_servers"}
    return probe(settings.bootstrap_servers, timeout_s=timeout_s, client_config=cfg)


def close_producer(producer, timeout_s: float = 10) -> None:
    """Close a producer; with the broker gone, drop what it still holds rather than raise from a finally.

    What it held is unsent by definition, and every caller accounts for it (the outbox keeps the
    rows unsent; `clinicflow publish` reports the line to resume from).
    """
    try:
        producer.close(timeout=timeout_s)
    except (kerr.KafkaError, OSError):
        # kafka-python's close() flushes first and raises while records are pending, even with
        # timeout=0 (and again from __del__): stop its sender and fail the pending batches, then close.
        sender = getattr(producer, "_sender", None)
        if sender is not None:
            sender.force_close()  # its thread fails the pending batches as it stops
            sender.join(timeout_s)
        try:
            producer.close(timeout=0)
        except (kerr.KafkaError, OSError):
            pass
