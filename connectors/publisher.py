"""Publish the warehouse outbox (DLQ copies, alerts, outreach) and mark what was sent."""

from __future__ import annotations

import base64
import json

import duckdb
from kafka import errors as kerr

from connectors.kafka import classify


def _headers(text: str) -> list[tuple[str, bytes]]:
    return [(k, base64.b64decode(v)) for k, v in json.loads(text)]


def publish_outbox(conn: duckdb.DuckDBPyConnection, producer, limit: int = 50_000, timeout_s: float = 130) -> int:
    """Send unsent outbox rows in creation order; mark them sent once the broker acknowledged them.

    A crash between the send and the mark re-sends on restart: message ids are
    deterministic, so consumers dedupe.
    """
    # Rows staged for a provider channel (topic `provider:<name>`) are that channel's to deliver.
    rows = conn.execute("""SELECT message_id, topic, "key", value, headers FROM outbox
                           WHERE sent_at IS NULL AND topic NOT LIKE 'provider:%'
                           ORDER BY created_at, message_id LIMIT ?""", [limit]).fetchall()
    if not rows:
        return 0
    try:
        futures = [producer.send(topic, key=key, value=value, headers=_headers(h)) for _, topic, key, value, h in rows]
        producer.flush(timeout=timeout_s)
        for f in futures:
            f.get(timeout=timeout_s)
    except (kerr.KafkaError, OSError) as e:
        raise classify(e, f"publishing {len(rows)} outbox message(s)") from e
    conn.register("sent_ids", _ids_table([r[0] for r in rows]))
    try:
        conn.execute("UPDATE outbox SET sent_at = now() WHERE message_id IN (SELECT message_id FROM sent_ids)")
    finally:
        conn.unregister("sent_ids")
    return len(rows)


def _ids_table(ids: list[str]):
    import pyarrow as pa

    return pa.table({"message_id": pa.array(ids, pa.string())})
