"""The simulator: seeded, contract-valid, and invalid in every kind asked for."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timezone

from clinicflow.simulate import simulate
from schemas.validate import Clock, Rejection, validate_event

END = datetime(2026, 11, 1, tzinfo=timezone.utc)


def test_same_seed_same_bytes_other_seed_other_history():
    a = list(simulate(15, seed=3, end=END))
    assert a == list(simulate(15, seed=3, end=END))
    assert a != list(simulate(15, seed=4, end=END))


def test_valid_events_pass_and_invalid_ones_cover_every_kind():
    kinds, types = Counter(), Counter()
    for line in simulate(150, seed=5, invalid_rate=0.05, end=END):
        result = validate_event(line, Clock(END))
        if isinstance(result, Rejection):
            kinds[result.error_kind] += 1
        else:
            types[result.event_type] += 1
    assert set(kinds) == {"malformed_json", "schema", "unknown_event_type", "unsupported_version"}
    assert {
        "patient.registered",
        "intake.assessed",
        "consult.completed",
        "rems.enrolled",
        "session.scheduled",
        "session.completed",
        "session.cancelled",
        "rems.form_submitted",
        "checkin.completed",
    } <= set(types)
    assert 0.02 < sum(kinds.values()) / (sum(kinds.values()) + sum(types.values())) < 0.08


def test_zero_invalid_rate_gives_a_clean_history():
    assert not any(
        isinstance(validate_event(line, Clock(END)), Rejection)
        for line in simulate(20, seed=6, invalid_rate=0.0, end=END)
    )


def test_the_oncall_queues_answers_never_reuse_an_event_id_of_the_history():
    """Both are seeded; answers take their ids from the alert and the action, not from a generator."""
    import json as _json
    from datetime import timedelta

    from clinicflow.oncall import OnCall, Raised
    from clinicflow.simulate import simulate

    history = list(simulate(20, seed=2026, invalid_rate=0.0))
    ids = {_json.loads(e)["event_id"] for e in history}
    raised = [
        Raised(
            f"00000000-0000-4000-8000-{n:012d}",
            "P0001",
            "austin-1",
            "urgent",
            datetime(2026, 3, 1, tzinfo=timezone.utc) + timedelta(hours=n),
        )
        for n in range(200)
    ]
    answers = [_json.loads(a)["event_id"] for a in OnCall(seed=2026).answers(raised)]
    assert len(answers) > 100 and len(set(answers)) == len(answers) and not ids & set(answers)
    assert OnCall(seed=2026).answers(raised) == OnCall(seed=2026).answers(raised), "deterministic"
