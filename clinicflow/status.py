"""`clinicflow status`: what operations staff look at first."""

from __future__ import annotations

from kafka import KafkaConsumer, TopicPartition
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowFilter, FlowFilterName
from prefect.client.schemas.sorting import FlowRunSort
from prefect.settings import PREFECT_API_URL
from rich.console import Console
from rich.table import Table

from connectors.kafka import client_config, probe_cluster
from core.settings import Settings
from warehouse.db import Lake, connect
from warehouse.exceptions import WarehouseError, WarehouseLockedError
from warehouse.status import warehouse_figures


def _broker(settings: Settings) -> dict:

    ok, detail = probe_cluster(settings, timeout_s=5)
    return {"bootstrap": settings.bootstrap_servers, "reachable": ok, "detail": detail}


def _lag(settings: Settings, stored: dict[str, int] | None) -> tuple[dict[str, int] | str, str]:
    """Lag per partition, and what it is measured from.

    The offsets stored with each batch in the warehouse are the truth, read beside a running
    writer; when the lake cannot be read, ingest's commits to Kafka (made after each batch) stand in.
    """

    try:
        c = KafkaConsumer(
            **{**client_config(settings), "request_timeout_ms": 5000},
            group_id=settings.consumer_group if stored is None else None,
            enable_auto_commit=False,
        )
        try:
            parts = [TopicPartition(t, p) for t in settings.inbound_topics for p in (c.partitions_for_topic(t) or ())]
            ends = c.end_offsets(parts)
            if stored is None:
                stored = {f"{tp.topic}/{tp.partition}": c.committed(tp) or 0 for tp in parts}
                source = "Kafka committed offsets (the warehouse cannot be read)"
            else:
                source = "warehouse offsets"
        finally:
            c.close()
    except Exception as e:  # status reports, it does not fail on a half-broken cluster
        return f"unavailable: {e}", "none"
    return {
        f"{tp.topic}/{tp.partition}": max(0, end - stored.get(f"{tp.topic}/{tp.partition}", 0))
        for tp, end in sorted(ends.items())
    }, source


def _warehouse(settings: Settings) -> dict:
    lake = Lake.of(settings)
    if not lake.exists():
        return {"available": False, "detail": f"{lake.catalog_file} does not exist yet; run an ingest"}
    try:
        conn = connect(settings.warehouse_path, read_only=True, lake=lake)
    except WarehouseLockedError:
        return {"available": False, "detail": "a writer holds the warehouse; try again between batches"}
    except WarehouseError as e:
        return {"available": False, "detail": str(e)}
    try:
        return {"available": True, **warehouse_figures(conn, settings.consumer_group)}
    finally:
        conn.close()


FLOWS = ("ingest", "load-file", "outreach", "data-quality", "quarantine-replay", "broker-health")


def _flow_runs() -> dict | str:
    """The last run of each flow and its state, from the Prefect API in PREFECT_API_URL."""

    if not PREFECT_API_URL.value():
        return "no Prefect API configured (set PREFECT_API_URL, e.g. http://127.0.0.1:4200/api)"
    try:
        out = {}
        with get_client(sync_client=True) as client:
            for name in FLOWS:
                runs = client.read_flow_runs(
                    flow_filter=FlowFilter(name=FlowFilterName(any_=[name])), sort=FlowRunSort.START_TIME_DESC, limit=1
                )
                if runs:
                    r = runs[0]
                    out[name] = {"state": r.state_name, "start": r.start_time, "run": r.name}
        return out
    except Exception as e:  # status reports; it never fails on an unreachable Prefect
        return f"unavailable: {e}"


def collect(settings: Settings) -> dict:
    broker = _broker(settings)
    wh = _warehouse(settings)
    stored = wh.get("stored_offsets", {}) if wh["available"] else None
    lag, source = _lag(settings, stored) if broker["reachable"] else ("broker unreachable", "none")
    healthy = broker["reachable"] and (not wh["available"] or wh["reconciliation_balanced"])
    return {
        "healthy": healthy,
        "broker": broker,
        "consumer_lag": lag,
        "lag_source": source,
        "workers": workers(wh.get("partition_holders", []), lag if isinstance(lag, dict) else {}),
        "warehouse": wh,
        "flow_runs": _flow_runs(),
    }


def workers(holding: list[dict], lag: dict[str, int]) -> list[dict]:
    """Each ingest worker of the group with the partitions its lease holds and their lag: a worker
    that died keeps its lease until another takes the partitions over (within the session timeout)."""
    out: dict[str, dict] = {}
    for h in holding:
        name = f"{h['topic']}/{h['partition']}"
        w = out.setdefault(h["worker_id"], {"worker": h["worker_id"], "partitions": [], "lag": 0, "since": h["since"]})
        w["partitions"].append(name)
        w["lag"] += lag.get(name, 0)
        w["since"] = max(w["since"], h["since"])
    return sorted(out.values(), key=lambda w: w["worker"])


def render(report: dict, console: Console) -> None:
    b = report["broker"]
    console.print(f"broker {b['bootstrap']}: {'reachable' if b['reachable'] else 'UNREACHABLE'} ({b['detail']})")
    lag = report["consumer_lag"]
    if isinstance(lag, dict):
        t = Table("topic/partition", "lag", title=f"consumer lag (from {report.get('lag_source', '')})")
        for k, v in lag.items():
            t.add_row(k, str(v))
        console.print(t)
    else:
        console.print(f"consumer lag: {lag}")
    if report["workers"]:
        t = Table("worker", "partitions", "lag", "holding since", title="ingest workers (partition leases)")
        for w in report["workers"]:
            t.add_row(w["worker"], ", ".join(w["partitions"]), str(w["lag"]), str(w["since"]))
        console.print(t)
    runs = report["flow_runs"]
    if isinstance(runs, dict):
        t = Table("flow", "last run", "state", "started", title="flow runs")
        for name, r in runs.items():
            t.add_row(name, r["run"], r["state"], str(r["start"]))
        console.print(t)
    else:
        console.print(f"flow runs: {runs}")
    wh = report["warehouse"]
    if not wh["available"]:
        console.print(f"warehouse: {wh['detail']}")
        return
    console.print(
        "open tasks by kind: "
        + (", ".join(f"{k} {v}" for k, v in wh["open_tasks_by_kind"].items()) or "none")
        + f"; blocked (no consent): {wh['blocked_tasks']}"
        f"; patients queued for re-planning: {wh['patients_queued_for_planning']}"
    )
    console.print(
        "open alerts by severity: "
        + (", ".join(f"{k} {v}" for k, v in wh["open_alerts_by_severity"].items()) or "none")
    )
    episodes = wh["open_episodes_by_severity"]
    console.print(
        "open alert episodes (queue items) by severity: "
        + (", ".join(f"{k} {v['open']} ({v['escalated']} escalated)" for k, v in episodes.items()) or "none")
        + f"; not yet acknowledged: {wh['unacknowledged_episodes']}"
        + f"; answers waiting for their alert: {wh['alert_actions_waiting']}"
    )
    console.print(
        f"landed: {wh['landed']['last_hour']} last hour, {wh['landed']['last_day']} last day "
        f"({wh['landed_total']} in all); quarantined: {wh['quarantined']['last_hour']} last hour, "
        f"{wh['quarantined']['last_day']} last day ({wh['quarantined_open']} open); "
        f"outbox unsent: {wh['outbox_unsent']}; last batch: {wh['last_batch_at']}"
    )
    for p in wh.get("patients_parked", []):
        console.print(
            f"[bold red]patient {p['patient_id']} parked[/]: follow-up plan cannot be computed "
            f"({p['error']}; {p['attempts']} attempt(s), last {p['parked_at']}); their next event retries"
        )
    for m in wh.get("outbox_parked", []):
        console.print(
            f"[bold red]outbox message {m['message_id']} parked[/] ({m['kind']} to {m['topic']}, "
            f"{m['bytes']} bytes): {m['error']}"
        )
    t = Table(
        "topic",
        "partition",
        "consumed",
        "landed",
        "duplicates",
        "quarantined",
        "balanced",
        title="reconciliation: consumed = landed + duplicates + quarantined",
    )
    for r in wh["reconciliation"]:
        t.add_row(
            r["topic"],
            str(r["partition"]),
            str(r["consumed"]),
            str(r["landed"]),
            str(r["duplicates"]),
            str(r["quarantined"]),
            "yes" if r["balanced"] else "[bold red]NO[/]",
        )
    console.print(t)
