import pytest

from connectors.exceptions import PermanentKafkaError, TransientKafkaError
from connectors.kafka import retry_transient


def test_transient_errors_are_retried_until_success():
    calls, slept = [], []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise TransientKafkaError("away")
        return "ok"

    assert retry_transient(flaky, delays=(1, 2, 5), sleep=slept.append) == "ok"
    assert slept == [1, 2]


def test_permanent_errors_are_not_retried():
    calls = []

    def bad():
        calls.append(1)
        raise PermanentKafkaError("no such topic")

    with pytest.raises(PermanentKafkaError):
        retry_transient(bad, delays=(1, 2), sleep=lambda s: None)
    assert len(calls) == 1


def test_the_last_transient_failure_propagates():
    with pytest.raises(TransientKafkaError):
        retry_transient(lambda: (_ for _ in ()).throw(TransientKafkaError("x")), delays=(0, 0), sleep=lambda s: None)
