"""`clinicflow demo`: the main job end to end, on the local defaults, through a local Prefect server.

Safe to run again: the history is seeded, so a second run publishes the same
events, which land as counted duplicates.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterStartTime
from prefect.settings import PREFECT_API_URL, PREFECT_LOGGING_LEVEL, temporary_settings
from rich.progress import Progress

from clinicflow.oncall import OnCall, raised_from
from clinicflow.prefect_server import PrefectServer
from clinicflow.report import write_report
from clinicflow.simulate import simulate
from connectors.consumer import read_to_end
from connectors.kafka import ensure_topics
from connectors.publish import publish_lines
from core.errors import ClinicflowError
from core.settings import Settings, child_env
from flows.escalation import escalation_flow
from flows.ingest import ingest_flow
from flows.outreach import outreach_flow
from flows.quality import quality_flow
from warehouse.analytics import open_analytics
from warehouse.db import Lake

# How long the simulated on-call queue is given to answer before the demo escalates the rest.
ONCALL_WINDOW = timedelta(hours=48)


def run_demo(settings: Settings, patients: int, say, server=None, workers: int = 1) -> dict:

    server = server or PrefectServer()
    server.start(progress=say)
    # Flow logs go to the Prefect UI; the terminal gets the summary.
    with temporary_settings({PREFECT_API_URL: server.api_url, PREFECT_LOGGING_LEVEL: "WARNING"}):
        started = datetime.now(timezone.utc)
        result = _pipeline(settings, patients, say, workers)
        result["flow_runs"] = _flow_runs(started)
    _print_summary(settings, server, result, say)
    return result


def _pipeline(settings: Settings, patients: int, say, workers: int = 1) -> dict:

    ensure_topics(settings, settings.all_topics)
    today = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    history = list(simulate(patients, seed=2026, invalid_rate=0.02, end=today))
    say(f"simulated {patients} patients: {len(history):,} events (2% invalid)")
    with Progress(transient=True) as bar:
        task = bar.add_task("publishing", total=len(history))
        publish_lines(settings, history, lambda n: bar.advance(task, n))
    say(f"published {len(history):,} events to {', '.join(settings.inbound_topics)}")
    ingest = _ingest(settings, workers)
    outreach = outreach_flow(settings=settings)
    before = _queue(settings)
    oncall = _oncall(settings, say, workers)
    quality = quality_flow(settings=settings, return_state=True)
    report = write_report(settings, settings.warehouse_path.parent / "report.html")
    return {
        "ingest": ingest,
        "outreach": outreach,
        "queue_before": before,
        "oncall": oncall,
        "report": str(report),
        "quality": quality.result(raise_on_failure=False)
        if quality.is_completed()
        else {"success": False, "message": quality.message},
    }


def _ingest(settings: Settings, workers: int, as_of: datetime | None = None) -> dict:
    """ingest --drain as `workers` members of the consumer group: each its own process and flow run."""
    if workers == 1:
        return ingest_flow(mode="drain", settings=settings, as_of=as_of)
    cmd = [sys.executable, "-m", "clinicflow", "ingest", "--drain"] + (["--as-of", as_of.isoformat()] if as_of else [])
    env = child_env(settings, {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value())})
    procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(workers)]
    outs = [p.communicate() for p in procs]
    for p, (_, err) in zip(procs, outs):
        if p.returncode != 0:
            raise ClinicflowError(f"an ingest worker of the demo failed (exit {p.returncode}): {err.decode()[-500:]}")
    return merged([json.loads(out.decode().strip().splitlines()[-1]) for out, _ in outs])


def merged(reports: list[dict]) -> dict:
    """Several workers' ingest reports as one, with each worker's share under "workers"."""
    total = {k: sum(r[k] for r in reports) for k in ("batches", "read", "landed", "duplicates", "published")}
    quarantined = sum((Counter(r["quarantined"]) for r in reports), Counter())
    return {
        **total,
        "mode": reports[0]["mode"],
        "quarantined": dict(quarantined),
        "quarantined_total": sum(quarantined.values()),
        "seconds": max(r["seconds"] for r in reports),
        "workers": [{k: r[k] for k in ("worker", "partitions", "read", "landed")} for r in reports],
    }


def _oncall(settings: Settings, say, workers: int = 1) -> dict:
    """The on-call queue answers the raised alerts over the next two days (simulated), and the
    pipeline is fast-forwarded to that clock: answers landed, then escalation of the unanswered."""
    raised = raised_from([json.loads(v) for v in read_to_end(settings, settings.topic_alerts)])
    if not raised:
        return {"answers": 0, "as_of": None}
    horizon = max(r.raised_at for r in raised) + ONCALL_WINDOW
    answers = OnCall(seed=2026, horizon=horizon).answers(raised)
    publish_lines(settings, answers)
    say(
        f"the simulated on-call queue answered {len(answers):,} times to {len(raised):,} raised alerts; "
        f"fast-forwarding the pipeline to {horizon.isoformat(timespec='minutes')}"
    )
    _ingest(settings, workers, as_of=horizon)
    escalation = escalation_flow(as_of=horizon, settings=settings)
    return {"answers": len(answers), "as_of": horizon.isoformat(), "escalation": escalation}


def _queue(settings: Settings) -> dict:
    """Open items as the on-call queue would count them: alerts one by one, or episodes."""
    conn = open_analytics(Lake.analysts(settings))
    try:
        alerts = conn.execute("SELECT count(*) FROM alerts WHERE status = 'open'").fetchall()[0][0]
        episodes = conn.execute(
            "SELECT count(*) FROM alert_episodes WHERE status IN ('open', 'acknowledged')"
        ).fetchall()[0][0]
    finally:
        conn.close()
    return {"open_alerts": alerts, "open_episodes": episodes}


def _flow_runs(since: datetime) -> list[dict]:

    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(flow_run_filter=FlowRunFilter(start_time=FlowRunFilterStartTime(after_=since)))
        flows = {f.id: f.name for f in client.read_flows()}
    return [{"flow": flows.get(r.flow_id, "?"), "run": r.name, "state": r.state_name} for r in runs]


def _figures(settings: Settings) -> dict:

    conn = open_analytics(Lake.analysts(settings))
    try:
        q = lambda sql: conn.execute(sql).fetchall()  # noqa: E731
        return {
            "tasks": dict(q("SELECT status, count(*) FROM followup_tasks GROUP BY 1 ORDER BY 2 DESC")),
            "alerts": dict(q("SELECT reason, count(*) FROM alerts WHERE status = 'open' GROUP BY 1 ORDER BY 2 DESC")),
            "episodes": dict(q("SELECT status, count(*) FROM alert_episodes GROUP BY 1 ORDER BY 2 DESC")),
            "escalations": dict(
                q(
                    "SELECT escalation_level, count(*) FROM alert_episodes WHERE escalation_level > 0 "
                    "GROUP BY 1 ORDER BY 1"
                )
            ),
            "queue_after": dict(
                zip(
                    ("open_alerts", "open_episodes"),
                    q(
                        "SELECT (SELECT count(*) FROM alerts WHERE status = 'open'), "
                        "(SELECT count(*) FROM alert_episodes WHERE status IN ('open', 'acknowledged'))"
                    )[0],
                )
            ),
            "outcomes": q(
                "SELECT modality, response_rate, responders, patients_with_baseline, remission_rate "
                "FROM outcomes_by_modality ORDER BY modality"
            ),
        }
    finally:
        conn.close()


def _print_summary(settings: Settings, server, result: dict, say) -> None:
    ing, out = result["ingest"], result["outreach"]
    fig = _figures(settings)
    result["figures"] = fig
    q = ", ".join(f"{k} {v}" for k, v in sorted(ing["quarantined"].items())) or "none"
    say("\n[bold]What happened[/]")
    say(
        f"  events read {ing['read']:,}: landed {ing['landed']:,}, duplicates {ing['duplicates']:,}, "
        f"quarantined {ing['quarantined_total']:,} ({q}) in {ing['seconds']}s"
    )
    for w in ing.get("workers", []):
        say(f"  worker {w['worker']}: read {w['read']:,}, landed {w['landed']:,}, from {', '.join(w['partitions'])}")
    say(f"  tasks: {sum(fig['tasks'].values()):,} planned; " + ", ".join(f"{k} {v}" for k, v in fig["tasks"].items()))
    say(
        f"  outreach this run: dispatched {out['dispatched']}, expired {out['expired']}, "
        f"blocked (no consent) {out['blocked_no_consent']}, REMS forms overdue {out['rems_overdue_alerts']}"
    )
    say("  open alerts by reason: " + ", ".join(f"{k} {v}" for k, v in fig["alerts"].items()))
    before, after = result["queue_before"], fig["queue_after"]
    say(
        f"  on-call queue: {before['open_alerts']} open alerts are {before['open_episodes']} open episodes "
        f"(one per patient and reason); after the queue's answers, {after['open_episodes']} episodes still open"
    )
    say("  alert episodes by status: " + (", ".join(f"{k} {v}" for k, v in fig["episodes"].items()) or "none"))
    esc = fig["escalations"]
    sent = (result["oncall"].get("escalation") or {}).get("escalated", 0)
    say(
        f"  escalations (nobody acknowledged in time): {sent} published, on {sum(esc.values())} episodes "
        "(highest level " + (", ".join(f"{k}: {v}" for k, v in esc.items()) or "none") + ")"
    )
    for modality, rate, resp, base, remission in fig["outcomes"]:
        say(f"  response rate, {modality}: {rate * 100:.1f}% ({resp} of {base}); remission {remission * 100:.1f}%")
    say(f"  data quality: {'pass' if result['quality'].get('success') else 'FAIL'}")
    say("  flow runs: " + ", ".join(f"{r['flow']} {r['state']}" for r in result["flow_runs"]))
    docs = (
        result["quality"].get("data_docs") or f"{settings.quality_dir}/gx/uncommitted/data_docs/local_site/index.html"
    )
    say("\n[bold]Where to look next[/]")
    say(f"  Prefect UI:   {server.ui_url}  (make prefect-down stops it; make kafka-down stops the broker)")
    say(
        f"  warehouse:    {Lake.of(settings).data_path.parent} (writer) and {Lake.analysts(settings).data_path.parent} "
        "(analysts' lake)"
    )
    say('  a query:      .venv/bin/clinicflow sql "FROM outcomes_by_modality"')
    say(f"  report:       {Path(result['report']).resolve()}")
    say(f"  data docs:    {docs}")
    say("  status:       .venv/bin/clinicflow status")
