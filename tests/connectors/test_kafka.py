import json
import uuid

import pytest
from kafka import KafkaConsumer, TopicPartition

from connectors.kafka import client_config, ensure_topics, make_producer

pytestmark = pytest.mark.integration


def test_round_trip_through_the_real_broker(kafka_settings):
    """Key, value and headers survive a produce and a consume, per patient partition."""
    topic = kafka_settings.topic_intake
    producer = make_producer(kafka_settings)
    sent = {}
    for i in range(20):
        patient = f"patient-{i % 4}"
        value = json.dumps({"n": i, "id": str(uuid.uuid4())}).encode()
        meta = producer.send(topic, key=patient.encode(), value=value, headers=[("h", b"v")]).get(timeout=30)
        sent.setdefault(patient, set()).add(meta.partition)
    producer.close()
    assert all(len(parts) == 1 for parts in sent.values()), "one patient's events share a partition"

    consumer = KafkaConsumer(
        **client_config(kafka_settings), enable_auto_commit=False, auto_offset_reset="earliest", group_id=None
    )
    parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
    consumer.assign(parts)
    got = []
    for _ in range(20):
        for records in consumer.poll(timeout_ms=1000).values():
            got.extend(records)
        if len(got) >= 20:
            break
    consumer.close()
    assert sorted(json.loads(r.value)["n"] for r in got) == list(range(20))
    assert all(r.headers == [("h", b"v")] for r in got)


def test_topic_creation_is_idempotent(kafka_settings):
    again = ensure_topics(kafka_settings, kafka_settings.all_topics)
    assert set(again.values()) == {"exists"}
    extra = f"{kafka_settings.topic_dlq}.extra"
    assert ensure_topics(kafka_settings, [extra], partitions=2) == {extra: "created"}
