"""`clinicflow publish` tells the truth: what it says was sent reached the topic, and a lost broker
ends with the count sent and the line to resume from. Real brokers, the real CLI in a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from connectors.kafka import ensure_topics
from core.settings import child_env
from tests.factories import event, raw
from tests.kafka_helpers import private_broker, read_all

pytestmark = pytest.mark.integration


def publish_cmd(path: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "clinicflow", "publish", str(path), *extra]


def test_an_over_size_line_is_reported_failed_and_the_others_are_sent(kafka_settings, tmp_path):
    s = kafka_settings
    first, last = event("consent.updated", patient_id="P0001"), event("consent.updated", patient_id="P0002")
    huge = event("consent.updated", patient_id="P0003")
    huge["source"] = "x" * 1_100_000
    f = tmp_path / "events.jsonl"
    f.write_bytes(b"\n".join([raw(first), raw(huge), raw(last)]) + b"\n")
    done = subprocess.run(publish_cmd(f), env=child_env(s), capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    assert report["sent_total"] == 2 and [x["line"] for x in report["failed"]] == [2]
    assert "MessageSizeTooLarge" in report["failed"][0]["error"] and "Traceback" not in done.stderr
    assert sorted(r.value for r in read_all(s, s.topic_intake, expect=2)) == sorted([raw(first), raw(last)])


@pytest.mark.slow
def test_a_broker_lost_mid_publish_ends_with_the_count_and_the_line_to_resume_from(settings, tmp_path):
    with private_broker(tmp_path / "kafka") as broker:
        s = settings.model_copy(update={"kafka_bootstrap_servers": broker.bootstrap, "kafka_request_timeout_ms": 5_000})
        ensure_topics(s, s.all_topics)
        one = event("consent.updated")  # copied with a new id and patient: building each anew takes 10 s
        events = [{**one, "event_id": str(uuid.uuid4()), "patient_id": f"P{i % 500:04d}"} for i in range(150_000)]
        f = tmp_path / "events.jsonl"
        f.write_bytes(b"\n".join(raw(e) for e in events) + b"\n")
        proc = subprocess.Popen(
            publish_cmd(f), env=child_env(s), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        time.sleep(4)
        assert proc.poll() is None, "publish finished before the broker could be stopped; grow the file"
        broker.stop()
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 1, err[-2000:]
        assert "Traceback" not in err and "--from-line" in err, err[-3000:]
        report = json.loads(out)
        resume = report["resume_from_line"]
        assert 1 < resume <= len(events) and report["sent_total"] >= resume - 1

        broker.start(timeout_s=120)
        again = subprocess.run(
            publish_cmd(f, "--from-line", str(resume)), env=child_env(s), capture_output=True, text=True, timeout=300
        )
        assert again.returncode == 0, again.stderr[-2000:]
        landed = {json.loads(r.value)["event_id"] for r in read_all(s, s.topic_intake, timeout_s=60)}
        assert landed == {e["event_id"] for e in events}, "every line reached the topic at least once"
