"""The batch suite's column-wise checks agree with Great Expectations, which they stand in for."""

from __future__ import annotations

import json
from datetime import timedelta

import pandas as pd
import pytest

from schemas.validate import Clock
from tests.factories import NOW
from warehouse.quality import SUITE, check_batch

CLOCK = Clock(NOW)


def clean() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "event_id": ["e1", "e2", "e3"],
            "patient_id": ["P0001", "P0002", "P0003"],
            "event_type": ["checkin.completed", "session.completed", "patient.registered"],
            "occurred_at": [NOW - timedelta(days=d) for d in (1, 2, 3)],
        }
    )


def broken(column: str, value) -> pd.DataFrame:
    df = clean()
    df[column] = df[column].astype(object)
    df.loc[1, column] = value
    return df


# One frame per expectation of SUITE, each breaking that expectation only.
BREAKS = {
    ("ExpectColumnValuesToNotBeNull", "event_id"): broken("event_id", None),
    ("ExpectColumnValuesToBeUnique", "event_id"): broken("event_id", "e1"),
    ("ExpectColumnValuesToNotBeNull", "patient_id"): broken("patient_id", None),
    ("ExpectColumnValuesToMatchRegex", "patient_id"): broken("patient_id", "P 1"),
    ("ExpectColumnValuesToBeInSet", "event_type"): broken("event_type", "session.teleported"),
    ("ExpectColumnValuesToNotBeNull", "occurred_at"): broken("occurred_at", None),
    ("ExpectColumnValuesToBeBetween", "occurred_at_epoch_s"): broken("occurred_at", NOW + timedelta(days=2)),
}


def test_every_expectation_has_a_breaking_case():
    assert set(BREAKS) == {(name, kwargs["column"]) for name, kwargs in SUITE}


def test_a_clean_batch_passes_without_gx():
    ok, result = check_batch(clean(), CLOCK)
    assert ok is True
    assert json.loads(result)["engine"] == "columnwise" and json.loads(result)["failed"] == []


@pytest.mark.parametrize("key", sorted(BREAKS), ids=lambda k: f"{k[0]}-{k[1]}")
def test_a_broken_batch_fails_in_gx_on_that_expectation(key):
    ok, result = check_batch(BREAKS[key], CLOCK)
    failed = json.loads(result)["failed"]
    assert ok is False and "engine" not in json.loads(result)
    assert any(f["column"] == key[1] for f in failed), failed
