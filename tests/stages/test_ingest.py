"""The ingest loop's publishing: a leader fenced by another publisher (the escalation or outreach
flow) skips that round and takes the role back at the next, sending every row once.

Real broker, real lake.
"""

from __future__ import annotations

import pytest

from stages.ingest import _publish_if, default_publish
from tests.connectors.test_publisher import once_each, senders, stage_one, staged, unsent_ids

pytestmark = pytest.mark.integration


def test_a_fenced_leader_skips_the_round_then_takes_publishing_back(kafka_settings):
    s = kafka_settings
    conn = staged(s, 10)
    with senders(s, 2) as (leader, flow):
        assert _publish_if(True, conn, leader, default_publish) == 10
        flow.open()  # a flow publishing meanwhile fences the leader's producer
        stage_one(s, conn, "late", b"late")
        assert _publish_if(True, conn, leader, default_publish) == 0, "fenced: the round is left, not raised"
        assert leader.producer is None and unsent_ids(conn) == ["late"]
        assert _publish_if(True, conn, leader, default_publish) == 1, "opened again: it publishes"
        assert _publish_if(False, conn, leader, default_publish) == 0 and leader.producer is None
    once_each(s, 11)
    conn.close()
