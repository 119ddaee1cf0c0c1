"""`clinicflow demo`: the main job end to end, on the local defaults, safe to run again."""

from __future__ import annotations

from datetime import datetime, timezone

from clinicflow.settings import Settings


def run_demo(settings: Settings, patients: int, say) -> dict:
    from care.channels import KafkaTopicChannel
    from care.outreach import run_outreach
    from clinicflow.ingest import run_ingest
    from clinicflow.simulate import simulate
    from connectors.kafka import ensure_topics
    from connectors.publish import publish_lines
    from warehouse.db import connect

    say("creating topics ...")
    ensure_topics(settings, settings.all_topics)
    now = datetime.now(timezone.utc)
    # A fixed seed and a history ending today: a second demo publishes the same events, which land as duplicates.
    history = list(simulate(patients, seed=2026, invalid_rate=0.02, end=now.replace(hour=0, minute=0, second=0,
                                                                                   microsecond=0)))
    say(f"simulated {patients} patients: {len(history):,} events; publishing ...")
    sent = publish_lines(settings, history)
    say(f"published {sum(sent.values()):,} events; ingesting (drain) ...")
    ingest = run_ingest(settings, "drain", progress=lambda m: None)
    say(f"ingest: read {ingest.read:,}, landed {ingest.landed:,}, duplicates {ingest.duplicates:,}, "
        f"quarantined {sum(ingest.quarantined.values()):,} {dict(ingest.quarantined)} "
        f"in {ingest.seconds:.1f}s")
    conn = connect(settings.warehouse_path)
    try:
        out = run_outreach(conn, settings, now, KafkaTopicChannel(settings))
        summary = _summary(conn)
    finally:
        conn.close()
    say(f"outreach: dispatched {out.dispatched}, expired {out.expired}, blocked (no consent) "
        f"{out.blocked_no_consent}, REMS forms overdue {out.rems_overdue_alerts}")
    say("tasks by status: " + ", ".join(f"{k} {v}" for k, v in summary["tasks"].items()))
    say("alerts by reason: " + ", ".join(f"{k} {v}" for k, v in summary["alerts"].items()))
    say(f"\nwarehouse: {settings.warehouse_path}\n  clinicflow status\n  clinicflow validate FILE\n"
        "  .venv/bin/python -c \"import duckdb; print(duckdb.connect('"
        f"{settings.warehouse_path}', read_only=True).sql('FROM analytics.alerts LIMIT 5'))\"")
    return {"ingest": ingest.as_dict(), "outreach": out.as_dict(), **summary}


def _summary(conn) -> dict:
    tasks = dict(conn.execute("SELECT status, count(*) FROM followup_tasks GROUP BY 1 ORDER BY 2 DESC").fetchall())
    alerts = dict(conn.execute("SELECT reason, count(*) FROM clinical_alerts WHERE status = 'open' "
                               "GROUP BY 1 ORDER BY 2 DESC").fetchall())
    return {"tasks": tasks, "alerts": alerts}
