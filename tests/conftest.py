"""Shared fixtures: one real Kafka broker per test session, unique topics per test,
one Prefect test harness per session."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from core.settings import Settings

TEST_BROKER_PORT = int(os.environ.get("CLINICFLOW_TEST_BROKER_PORT", "19392"))
TEST_BROKER_DIR = Path("var/test/kafka")


@pytest.fixture(scope="session")
def bootstrap_servers() -> str:
    """The broker tests talk to: the configured cluster, else a local one started here."""
    configured = os.environ.get("CLINICFLOW_KAFKA_BOOTSTRAP_SERVERS")
    if configured:
        yield configured
        return
    from connectors.local_broker import LocalBroker

    broker = LocalBroker(TEST_BROKER_DIR, TEST_BROKER_PORT, Path(".cache/kafka/libs"), heap_mb=512)
    was_running = broker.pid() is not None
    broker.start(timeout_s=120)
    yield broker.bootstrap
    if not was_running:
        broker.stop()


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch):
    """Tests see neither the developer's CLINICFLOW_* variables nor their .env file."""
    for key in list(os.environ):
        if key.startswith("CLINICFLOW_") and key != "CLINICFLOW_KAFKA_BOOTSTRAP_SERVERS":
            monkeypatch.delenv(key)
    monkeypatch.setitem(Settings.model_config, "env_file", None)


@pytest.fixture()
def topic_prefix() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture()
def settings(tmp_path, topic_prefix) -> Settings:
    """Settings for one unit test: its own warehouse file and topic names (no broker)."""
    return Settings(
        kafka_bootstrap_servers="127.0.0.1:1",
        warehouse_path=tmp_path / "clinic.duckdb",
        quality_dir=tmp_path / "gx",
        pseudonym_secret="test-secret-test-secret-test-secret!!",
        consumer_group=f"{topic_prefix}-group",
        **{
            f"topic_{name}": f"{topic_prefix}.{name}"
            for name in ("intake", "sessions", "followups", "alertactions", "outreach", "alerts", "dlq")
        },
    )


@pytest.fixture()
def kafka_settings(settings, bootstrap_servers) -> Settings:
    """Settings for one integration test: the real broker, its own topics, created."""
    from connectors.kafka import ensure_topics

    s = settings.model_copy(update={"kafka_bootstrap_servers": bootstrap_servers})
    ensure_topics(s, s.all_topics)
    return s


@pytest.fixture(scope="session")
def prefect_harness():
    """One Prefect test harness for the session (starting one per test is slow)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield
