import socket
import uuid
from pathlib import Path

import pytest

from connectors.exceptions import BrokerSetupError
from connectors.local_broker import LocalBroker
from tests.kafka_helpers import free_port

LIBS = Path(".cache/kafka/libs")


def test_config_binds_to_loopback_only(tmp_path):
    b = LocalBroker(tmp_path, 23456, LIBS)
    b.write_config()
    props = dict(line.split("=", 1) for line in b.config.read_text().splitlines())
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:23456,CONTROLLER://127.0.0.1:23457"
    assert props["process.roles"] == "broker,controller"
    assert props["log.dirs"] == str((tmp_path / "data").resolve())
    assert props["auto.create.topics.enable"] == "false"


def test_stale_pid_file_is_cleared(tmp_path):
    b = LocalBroker(tmp_path, 23456, LIBS)
    b.pidfile.parent.mkdir(parents=True, exist_ok=True)
    b.pidfile.write_text("999999")  # no such process
    assert b.pid() is None
    assert not b.pidfile.exists()


def test_port_in_use_gives_a_clear_message(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        b = LocalBroker(tmp_path, port, LIBS)
        with pytest.raises(BrokerSetupError, match=f"port {port} .* in use .*CLINICFLOW_LOCAL_KAFKA_PORT"):
            b.start(timeout_s=5)


@pytest.mark.integration
@pytest.mark.slow
def test_sigkill_and_restart_keeps_data(tmp_path):
    """A crashed broker comes back with its topics and messages."""
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition
    from kafka.admin import KafkaAdminClient

    port = free_port(span=2)  # the controller listens on port + 1
    b = LocalBroker(tmp_path / "kafka", port, LIBS, heap_mb=384)
    try:
        b.start(timeout_s=120)
        admin = KafkaAdminClient(bootstrap_servers=b.bootstrap)
        admin.create_topics({"keep": {"num_partitions": 1, "replication_factor": 1}}, wait_for_metadata=True)
        admin.close()
        marker = uuid.uuid4().hex.encode()
        producer = KafkaProducer(bootstrap_servers=b.bootstrap)
        producer.send("keep", marker).get(timeout=30)
        producer.close()

        b.kill()
        assert b.pid() is None
        b.start(timeout_s=120)  # a second start after the crash, same folder

        consumer = KafkaConsumer(bootstrap_servers=b.bootstrap, enable_auto_commit=False)
        tp = TopicPartition("keep", 0)
        consumer.assign([tp])
        consumer.seek_to_beginning(tp)
        values = [r.value for r in consumer.poll(timeout_ms=20_000).get(tp, [])]
        consumer.close()
        assert marker in values
        assert b.start(timeout_s=30) < 30  # starting a running broker is harmless
    finally:
        b.stop()
    assert b.pid() is None


def test_cluster_ids_never_look_like_options():
    from connectors.local_broker import _cluster_id

    ids = [_cluster_id() for _ in range(2000)]
    assert all(len(i) == 22 and not i.startswith("-") for i in ids)
