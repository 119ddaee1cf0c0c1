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


TEST_POSTGRES_PORT = int(os.environ.get("CLINICFLOW_TEST_POSTGRES_PORT", "15442"))
TEST_POSTGRES_PASSWORD = "clinicflow-test-catalog"  # a loopback-only server that holds test data only
# The integration suite's lake catalog: PostgreSQL (the several-hosts setup) unless this says sqlite.
TEST_CATALOG = os.environ.get("CLINICFLOW_TEST_CATALOG", "postgres")


@pytest.fixture(scope="session")
def postgres_server():
    """A local PostgreSQL for the integration suite's lake catalogs, started like the broker."""
    from warehouse.local_postgres import LocalPostgres

    server = LocalPostgres(Path("var/test/postgres"), TEST_POSTGRES_PORT, TEST_POSTGRES_PASSWORD)
    was_running = server.running()
    server.up(timeout_s=120, progress=lambda _msg: None)
    yield server
    if not was_running:
        server.down()


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
def kafka_settings(settings, bootstrap_servers, request, topic_prefix):
    """Settings for one integration test: the real broker, its own topics, created, and its own lake
    catalog: a fresh database on the test session's PostgreSQL (CLINICFLOW_TEST_CATALOG=sqlite: a file)."""
    from connectors.kafka import ensure_topics

    s = settings.model_copy(update={"kafka_bootstrap_servers": bootstrap_servers})
    server = request.getfixturevalue("postgres_server") if TEST_CATALOG == "postgres" else None
    if server is not None:
        s = s.model_copy(update=_postgres_catalog(server, topic_prefix))
    ensure_topics(s, s.all_topics)
    yield s
    if server is not None:
        server._psql(f"DROP DATABASE IF EXISTS {topic_prefix} WITH (FORCE)")


def _postgres_catalog(server, name: str) -> dict:
    from pydantic import SecretStr

    done = server._psql(f"CREATE DATABASE {name}")
    assert done.returncode == 0, done.stderr
    dsn = f"postgres:host=127.0.0.1 port={server.port} dbname={name} user=clinicflow"
    return {"warehouse_catalog": SecretStr(dsn), "postgres_password": SecretStr(server.password)}


@pytest.fixture(scope="session")
def prefect_harness():
    """One Prefect test harness for the session (starting one per test is slow)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield
