"""Task, alert and outreach ids: uuid5 of their parts, byte for byte, whatever the parts."""

from __future__ import annotations

import uuid

from hypothesis import given
from hypothesis import strategies as st

from care.rules import NAMESPACE, stable_id


@given(st.lists(st.text(max_size=40), min_size=1, max_size=4))
def test_stable_id_is_uuid5_of_the_joined_parts(parts):
    assert stable_id(*parts) == str(uuid.uuid5(NAMESPACE, ":".join(parts)))


def test_stable_id_of_a_known_task_never_changes():
    # Ids already stored in warehouses and sent to consumers must stay what they were.
    assert stable_id("austin-1", "S1", "checkin_day1") == str(uuid.uuid5(NAMESPACE, "austin-1:S1:checkin_day1"))
    assert uuid.UUID(stable_id("P0001", "checkin_month1")).version == 5
