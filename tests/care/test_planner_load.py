"""How the planner reads histories: one Arrow table a load, values as the rules expect them."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pyarrow as pa
import pytest

from care.exceptions import CareError
from care.planner import TASK_LOADERS, _py, _Rows


@pytest.mark.parametrize("unit", ["us", "ns"])
@pytest.mark.parametrize("tz", ["UTC", "Etc/UTC", "America/New_York"])
def test_instants_convert_to_the_same_utc_datetimes_as_arrow(unit, tz):
    base = datetime(2026, 3, 8, 6, 59, 59, 999_999, tzinfo=timezone.utc)  # across New York's DST change
    values = [base + timedelta(hours=h, microseconds=h) for h in range(4)] + [None]
    column = pa.chunked_array([pa.array(values, pa.timestamp("us", tz="UTC")).cast(pa.timestamp(unit, tz=tz))])
    out = _py(column)
    assert out == values  # the same instants, to the microsecond, and None kept
    assert all(v.tzinfo is timezone.utc for v in out if v is not None)


def test_other_columns_convert_as_arrow_does():
    column = pa.chunked_array([pa.array([1, None, 3], pa.int32())])
    assert _py(column) == [1, None, 3]


def test_a_reader_asking_for_an_event_type_its_load_did_not_fetch_fails_loudly():
    # The query fetches FAMILY_TYPES' types only: another type would come back empty, silently.
    rows = _Rows(pa.table({"event_type": pa.array([], pa.string())}), TASK_LOADERS)
    assert rows("patient.registered", "event_type") == []
    with pytest.raises(CareError, match="intake.assessed rows"):
        rows("intake.assessed", "event_type")  # tasks read no intake
