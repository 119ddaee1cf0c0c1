"""The `clinicflow` command (contract/CLI.md).

Human output (progress, tables) goes to stderr, machine output to stdout.
Exit status: 0 success, 1 ran and found problems, 2 usage or configuration error.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from typing import Annotated

import typer
from rich.console import Console

from core.errors import ClinicflowError, SettingsError
from core.settings import get_settings

app = typer.Typer(
    help="clinicflow: the ketamine clinic's event pipeline.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
kafka_app = typer.Typer(
    help="Run the local single-node Kafka broker (skip if you set CLINICFLOW_KAFKA_BOOTSTRAP_SERVERS).",
    no_args_is_help=True,
)
schemas_app = typer.Typer(help="The event contract's JSON Schemas.", no_args_is_help=True)
topics_app = typer.Typer(help="Kafka topics of the event contract.", no_args_is_help=True)
postgres_app = typer.Typer(
    help="Run the local PostgreSQL server for the lake's catalog (127.0.0.1 only, data under var/).",
    no_args_is_help=True,
)
app.add_typer(kafka_app, name="kafka")
app.add_typer(postgres_app, name="postgres")
app.add_typer(topics_app, name="topics")
app.add_typer(schemas_app, name="schemas")

err = Console(stderr=True, highlight=False, soft_wrap=True, width=None if sys.stderr.isatty() else 160)


PREFECT_HELP = "Run as a Prefect flow (visible in the UI); default: when PREFECT_API_URL is set."


def use_prefect(flag: bool | None) -> bool:
    """Prefect when asked, or when a server is configured; otherwise the stage itself, and say so.

    Without an API URL Prefect would start a temporary server for one run (seconds, and
    warnings about telemetry) for runs nobody can look at afterwards.
    """
    if flag is not None:
        return flag
    if os.environ.get("PREFECT_API_URL"):
        return True
    say("running without Prefect (PREFECT_API_URL is not set; --prefect runs it as a flow)")
    return False


def say(msg: str) -> None:
    """Human progress, to stderr."""
    err.print(msg)


def fail(msg: str, code: int) -> typer.Exit:
    err.print(f"[bold red]error:[/] {msg}")
    return typer.Exit(code)


def cli_errors(fn):
    """Turn project errors into one readable line and the contract's exit status."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except SettingsError as e:
            raise fail(str(e), 2) from None
        except ClinicflowError as e:
            raise fail(str(e), 1) from None
        except Exception as e:
            if type(e).__module__.split(".")[0] in ("typer", "click"):
                raise  # exits and usage errors: Typer prints them in the contract's shape
            raise fail(unexpected(e), 1) from None

    return wrapper


def unexpected(e: Exception) -> str:
    """One line for an error nobody anticipated; the traceback goes to a file, not the terminal."""
    import tempfile
    import traceback

    path = os.path.join(tempfile.gettempdir(), f"clinicflow-{os.getpid()}.traceback")
    with open(path, "w") as f:
        traceback.print_exception(e, file=f)
    text = " ".join(str(e).split())[:300] or "no message"
    return f"unexpected {type(e).__name__}: {text}; this is a defect of clinicflow (traceback in {path})"


def _local_broker():
    from connectors import local_broker

    settings = get_settings()
    if not settings.uses_local_broker:
        raise SettingsError(
            "CLINICFLOW_KAFKA_BOOTSTRAP_SERVERS is set, so clinicflow does not manage a broker; "
            "unset it to use the local one"
        )
    return local_broker.from_settings(settings)


def _local_postgres():
    from warehouse.local_postgres import LocalPostgres

    settings = get_settings()
    return LocalPostgres(settings.local_postgres_dir, settings.local_postgres_port, settings.postgres_secret())


@postgres_app.command("up")
@cli_errors
def postgres_up(timeout: Annotated[float, typer.Option(help="Seconds to wait for readiness.")] = 60) -> None:
    """Initialise (once) and start the local PostgreSQL catalog server on 127.0.0.1; harmless when it runs."""
    server = _local_postgres()
    st = server.up(timeout_s=timeout, progress=say)
    say(f"PostgreSQL on {st.address}: {st.detail}")


@postgres_app.command("down")
@cli_errors
def postgres_down() -> None:
    """Stop the local PostgreSQL server; its data stays."""
    say("PostgreSQL stopped" if _local_postgres().down() else "PostgreSQL was not running")


@postgres_app.command("status")
@cli_errors
def postgres_status(as_json: Annotated[bool, typer.Option("--json", help="Machine output.")] = False) -> None:
    """Is the local PostgreSQL server running, and does it accept the clinicflow role?"""
    st = _local_postgres().status()
    result = {"address": st.address, "database": st.database, "running": st.running, "ready": st.ready,
              "detail": st.detail}  # fmt: skip
    if as_json:
        print(json.dumps(result))
    else:
        say(f"PostgreSQL {st.address}: {'ready' if st.ready else 'NOT ready'} ({st.detail})")
    if not st.ready:
        raise typer.Exit(1)


@kafka_app.command("up")
@cli_errors
def kafka_up(timeout: Annotated[float, typer.Option(help="Seconds to wait for readiness.")] = 120) -> None:
    """Install (once), format (once) and start the local broker; harmless when it runs already."""
    broker = _local_broker()
    took = broker.start(timeout_s=timeout, progress=say)
    say(f"Kafka broker healthy on {broker.bootstrap} (pid {broker.pid()}, {took:.1f}s)")


@kafka_app.command("down")
@cli_errors
def kafka_down() -> None:
    """Stop the local broker cleanly; its data stays."""
    broker = _local_broker()
    say("Kafka broker stopped" if broker.stop() else "Kafka broker was not running")


@kafka_app.command("status")
@cli_errors
def kafka_status(as_json: Annotated[bool, typer.Option("--json", help="Machine output.")] = False) -> None:
    """Is the broker running, and does it really serve clients?"""
    from connectors.kafka import probe_cluster

    settings = get_settings()
    if settings.uses_local_broker:
        st = _local_broker().status()
        result = {
            "bootstrap": st.bootstrap,
            "managed": True,
            "running": st.running,
            "pid": st.pid,
            "healthy": st.healthy,
            "detail": st.detail,
        }
    else:
        ok, detail = probe_cluster(settings)
        result = {
            "bootstrap": settings.bootstrap_servers,
            "managed": False,
            "running": ok,
            "pid": None,
            "healthy": ok,
            "detail": detail,
        }
    if as_json:
        print(json.dumps(result))
    else:
        say(f"broker {result['bootstrap']}: {'healthy' if result['healthy'] else 'NOT healthy'} ({result['detail']})")
    if not result["healthy"]:
        raise typer.Exit(1)


@topics_app.command("create")
@cli_errors
def topics_create(
    partitions: Annotated[int | None, typer.Option(min=1, max=1000, help="Partitions per topic.")] = None,
    replication: Annotated[int | None, typer.Option(min=1, max=10, help="Replication factor.")] = None,
) -> None:
    """Create the contract's topics that do not exist yet (idempotent)."""
    from connectors.kafka import ensure_topics

    settings = get_settings()
    result = ensure_topics(settings, settings.all_topics, partitions, replication)
    for topic, state in result.items():
        say(f"  {topic}: {state}")
    print(json.dumps(result))


def parse_as_of(value: str | None):
    """--as-of: an RFC 3339 timestamp with offset, or now."""
    from datetime import datetime, timezone

    if value is None:
        return datetime.now(timezone.utc)
    try:
        ts = datetime.fromisoformat(value)
    except ValueError:
        ts = None
    if ts is None or ts.tzinfo is None:
        raise typer.BadParameter(f"{value!r} is not a timestamp with an offset, e.g. 2026-03-01T12:00:00Z")
    return ts


@app.command("validate")
@cli_errors
def validate(
    file: Annotated[str, typer.Argument(help="JSON Lines file of events; - for stdin.")],
    as_of: Annotated[str | None, typer.Option(help="The pipeline's clock (default now), RFC 3339.")] = None,
) -> None:
    """Validate events against the contract without landing anything; one JSON verdict per line."""
    from schemas.validate import Clock, verdicts

    clock = Clock(parse_as_of(as_of), skew=_skew())
    stream = sys.stdin.buffer if file == "-" else _open(file)
    invalid = 0
    with stream:
        for verdict in verdicts(stream, clock):
            invalid += not verdict["valid"]
            sys.stdout.write(json.dumps(verdict, ensure_ascii=False) + "\n")
    if invalid:
        say(f"{invalid} invalid line(s)")
        raise typer.Exit(1)


def _skew():
    from datetime import timedelta

    return timedelta(seconds=get_settings().clock_skew_seconds)


def _open(path: str):
    try:
        return open(path, "rb")
    except OSError as e:
        raise fail(f"cannot read {path}: {e.strerror}; check the path", 2) from None


@schemas_app.command("export")
@cli_errors
def schemas_export(directory: Annotated[str, typer.Argument(help="Where to write one .json per event type.")]) -> None:
    """Write the JSON Schema of every event type, generated from the models."""
    from pathlib import Path

    from schemas.export import export

    for path in export(Path(directory)):
        print(path)


def _print_report(report: dict) -> None:
    q = ", ".join(f"{k} {v}" for k, v in sorted(report["quarantined"].items())) or "none"
    say(
        f"{report['mode']}: read {report['read']}, landed {report['landed']}, duplicates {report['duplicates']}, "
        f"quarantined {report['quarantined_total']} ({q}) in {report['batches']} batch(es), "
        f"{report['seconds']}s ({report['events_per_second'] or 0} events/s)"
    )
    print(json.dumps(report))


@app.command("ingest")
@cli_errors
def ingest(
    drain: Annotated[bool, typer.Option("--drain", help="Catch up to the end of every partition, then exit.")] = False,
    follow: Annotated[
        bool, typer.Option("--follow", help="Run until SIGINT/SIGTERM; the batch in hand finishes.")
    ] = False,
    as_of: Annotated[
        str | None, typer.Option(help="With --drain: the pipeline's clock, RFC 3339 (default now).")
    ] = None,
    prefect: Annotated[bool | None, typer.Option(help=PREFECT_HELP)] = None,
) -> None:
    """The Kafka path: consume the inbound topics into the warehouse."""
    if drain == follow:
        raise fail("choose exactly one of --drain and --follow", 2)
    if as_of is not None and follow:
        raise fail("--as-of fixes the clock of a drain; --follow runs on the wall clock", 2)
    mode = "drain" if drain else "follow"
    settings = get_settings()
    clock = parse_as_of(as_of) if as_of else None
    if use_prefect(prefect):
        from flows.ingest import ingest_flow

        report = ingest_flow(mode=mode, settings=settings, as_of=clock)
    else:
        from stages.ingest import StopFlag, run_ingest

        stop = StopFlag()
        stop.install()
        report = run_ingest(settings, mode, stop=stop, progress=say, as_of=clock).as_dict()
    _print_report(report)


@app.command("load")
@cli_errors
def load(
    file: Annotated[str, typer.Argument(help="JSON Lines file of events.")],
    warehouse: Annotated[str | None, typer.Option(help="Warehouse file (default: the settings').")] = None,
    as_of: Annotated[str | None, typer.Option(help="The pipeline's clock, RFC 3339 (default now).")] = None,
    prefect: Annotated[bool | None, typer.Option(help=PREFECT_HELP)] = None,
) -> None:
    """The backfill path: land a file exactly as the Kafka path would, with no broker."""
    from pathlib import Path

    path = Path(file)
    if not path.is_file():
        raise fail(f"cannot read {file}: no such file; check the path", 2)
    clock = parse_as_of(as_of) if as_of else None
    settings = get_settings()
    if warehouse:
        settings = settings.model_copy(update={"warehouse_path": Path(warehouse)})
    if use_prefect(prefect):
        from flows.ingest import load_flow

        report = load_flow(str(path), clock, settings)
    else:
        from stages.ingest import run_load

        report = run_load(settings, path, clock, progress=say).as_dict()
    _print_report(report)
    if report["quarantined_total"]:
        say(f"{report['quarantined_total']} line(s) quarantined: `clinicflow validate {file}` shows why")
        raise typer.Exit(1)


@app.command("publish")
@cli_errors
def publish(
    file: Annotated[str, typer.Argument(help="JSON Lines file of events; - for stdin.")],
    from_line: Annotated[int, typer.Option(min=1, help="Skip the lines before this one (resume).")] = 1,
) -> None:
    """Publish events to their family's topic, keyed by patient_id; exit 1 when a line could not be sent."""
    from rich.progress import Progress, SpinnerColumn, TextColumn

    from connectors.exceptions import PublishInterruptedError
    from connectors.publish import publish_lines

    stream = sys.stdin.buffer if file == "-" else _open(file)
    with stream, Progress(SpinnerColumn(), TextColumn("{task.description}"), console=err) as bar:
        task = bar.add_task("publishing", total=None)
        try:
            report = publish_lines(
                get_settings(),
                stream,
                lambda n: bar.update(task, advance=n, description=f"published {bar.tasks[0].completed + n:,.0f}"),
                from_line=from_line,
            )
        except PublishInterruptedError as e:
            print(json.dumps({**e.report.as_dict(), "resume_from_line": e.report.resume_line()}))
            raise
    for topic, n in sorted(report.items()):
        say(f"  {topic}: {n}")
    for f in report.failed:
        say(f"[bold red]line {f['line']} not sent[/]: {f['error']}")
    print(json.dumps(report.as_dict()))
    if report.failed:
        raise typer.Exit(1)


def _clocked_run(prefect: bool | None, flow: str, stage: str, as_of: str | None) -> None:
    """A writer verb judged at a clock: `module:function` of its flow, or of its stage without
    Prefect (imported late: Prefect is only loaded when it runs); the report to both outputs."""
    import importlib

    settings = get_settings()
    clock = parse_as_of(as_of)
    module, name = (flow if use_prefect(prefect) else stage).split(":")
    fn = getattr(importlib.import_module(module), name)
    report = fn(settings=settings, as_of=clock)
    say(", ".join(f"{k.replace('_', ' ')} {v}" for k, v in report.items()))
    print(json.dumps(report))


@app.command("outreach")
@cli_errors
def outreach(
    as_of: Annotated[str | None, typer.Option(help="The flow's clock, RFC 3339 (default now).")] = None,
    prefect: Annotated[bool | None, typer.Option(help=PREFECT_HELP)] = None,
) -> None:
    """Dispatch due follow-up tasks as outreach.requested events, expire stale ones, raise overdue REMS forms."""
    _clocked_run(prefect, "flows.outreach:outreach_flow", "stages.outreach:run_outreach_stage", as_of)


@app.command("escalate")
@cli_errors
def escalate_cmd(
    as_of: Annotated[str | None, typer.Option(help="The flow's clock, RFC 3339 (default now).")] = None,
    prefect: Annotated[bool | None, typer.Option(help=PREFECT_HELP)] = None,
) -> None:
    """Escalate alert episodes nobody acknowledged in time and publish the escalations."""
    _clocked_run(prefect, "flows.escalation:escalation_flow", "stages.escalation:run_escalation_stage", as_of)


@app.command("backup")
@cli_errors
def backup_cmd(
    dest: Annotated[str | None, typer.Argument(help="Folder for backups (default CLINICFLOW_BACKUP_DIR).")] = None,
    prefect: Annotated[bool | None, typer.Option(help=PREFECT_HELP)] = None,
) -> None:
    """Copy the lake (catalog + new data files, with a manifest) into DEST; keeps CLINICFLOW_BACKUP_KEEP backups."""
    from pathlib import Path

    settings = get_settings()
    if use_prefect(prefect):
        from flows.backup import backup_flow

        report = backup_flow(dest, settings)
    else:
        from stages.backup import run_backup_stage

        report = run_backup_stage(settings, Path(dest) if dest else None)
    say(
        f"backed up {report['events']:,} events to {report['backup']} ({report['data_files']:,} data files, "
        f"{report['copied_files']:,} new: {report['copied_bytes']:,} bytes copied)"
    )
    print(json.dumps(report))


@app.command("maintain")
@cli_errors
def maintain_cmd(prefect: Annotated[bool | None, typer.Option(help=PREFECT_HELP)] = None) -> None:
    """Compact, expire and clean both lakes (DuckLake's recommended maintenance) and check event ids."""
    settings = get_settings()
    if use_prefect(prefect):
        from flows.maintenance import maintenance_flow

        report = maintenance_flow(settings)
    else:
        from stages.maintenance import run_maintenance_stage

        report = run_maintenance_stage(settings)
    before, after = report["data_files_before"], report["data_files_after"]
    say(
        f"maintained the lakes in {report['seconds']:.1f} s ({report['steps']} steps, longest "
        f"{report['longest_step_s']:.2f} s): data files {before} -> {after}, {report['snapshots_expired']} "
        f"snapshots expired, {report['duplicate_event_ids']} duplicate event ids"
    )
    print(json.dumps(report))


@app.command("restore")
@cli_errors
def restore_cmd(
    src: Annotated[str, typer.Argument(help="A backup folder, or a folder of backups (the newest is used).")],
    force: Annotated[bool, typer.Option("--force", help="Move an existing warehouse aside first.")] = False,
) -> None:
    """Put a backup in place of the warehouse; the next ingest resumes from the offsets stored in it."""
    from pathlib import Path

    from stages.backup import run_restore_stage

    report = run_restore_stage(get_settings(), Path(src), force)
    say(f"restored {report['events']:,} events into {report['restored']}; ingest resumes from the stored offsets")
    print(json.dumps(report))


@app.command("import")
@cli_errors
def import_cmd(
    source: Annotated[
        str,
        typer.Argument(help="An older release's warehouse file (DuckDB 1.5) or its EXPORT DATABASE folder (2.x)."),
    ],
) -> None:
    """Carry an older release's file warehouse into the lake (which must not exist yet), once."""
    from pathlib import Path

    from stages.upgrade import run_import_stage

    report = run_import_stage(get_settings(), Path(source))
    say(f"imported {report['rows'].get('raw_events', 0):,} events into {report['warehouse']}")
    print(json.dumps(report))


@app.command("simulate")
@cli_errors
def simulate_cmd(
    patients: Annotated[int, typer.Option(min=1, max=1_000_000, help="How many patients.")] = 100,
    seed: Annotated[int, typer.Option(help="Same seed, same history.")] = 7,
    invalid_rate: Annotated[float, typer.Option(min=0.0, max=1.0, help="Share of invalid events.")] = 0.02,
    end: Annotated[str | None, typer.Option(help="Last day of the history, RFC 3339 (default 2026-11-01).")] = None,
) -> None:
    """Write a realistic synthetic clinic history as JSON Lines to stdout."""
    from clinicflow.simulate import simulate

    out = sys.stdout.buffer
    n = 0
    for line in simulate(patients, seed, invalid_rate, parse_as_of(end) if end else None):
        out.write(line + b"\n")
        n += 1
    say(f"simulated {patients} patients: {n} events")


@app.command("sql")
@cli_errors
def sql(
    query: Annotated[str, typer.Argument(help="A read-only query over the analytics views.")],
    as_json: Annotated[bool, typer.Option("--json", help="JSON rows on stdout.")] = False,
    limit: Annotated[int, typer.Option(min=1, max=1_000_000, help="Rows to print at most.")] = 1000,
) -> None:
    """Query the analysts' snapshot (read-only; never blocks ingestion)."""
    from clinicflow.sqlview import run_query

    run_query(get_settings(), query, as_json, limit, err)


@app.command("report")
@cli_errors
def report(out: Annotated[str, typer.Argument(help="The HTML file to write.")] = "var/report.html") -> None:
    """Outcomes and operations with charts, as one self-contained HTML file."""
    from pathlib import Path

    from clinicflow.report import write_report

    path = write_report(get_settings(), Path(out))
    say(f"report written to {path.resolve()}")
    print(str(path))


@app.command("replay")
@cli_errors
def replay(
    as_of: Annotated[str | None, typer.Option(help="The clock to re-validate at, RFC 3339 (default now).")] = None,
    prefect: Annotated[bool | None, typer.Option(help=PREFECT_HELP)] = None,
) -> None:
    """Re-validate quarantined messages; land what now passes, keep the rest with their new errors."""
    clock = parse_as_of(as_of)
    if use_prefect(prefect):
        from flows.replay import replay_flow

        result = replay_flow(clock, get_settings())
    else:
        from stages.replay import run_replay

        result = run_replay(get_settings(), clock)
    say(", ".join(f"{k.replace('_', ' ')} {v}" for k, v in result.items()))
    print(json.dumps(result))


@app.command("serve")
@cli_errors
def serve_cmd(
    no_schedules: Annotated[bool, typer.Option("--no-schedules", help="Serve for manual runs only.")] = False,
) -> None:
    """Run every flow's deployment from this process (no work pool); needs PREFECT_API_URL."""
    from flows.serve import serve_all

    say(
        "serving ingest-drain, outreach, escalation, data-quality, quarantine-replay, backup, maintenance, "
        "broker-health; Ctrl-C stops"
    )
    serve_all(schedules=not no_schedules)


@app.command("status")
@cli_errors
def status(as_json: Annotated[bool, typer.Option("--json", help="Machine output.")] = False) -> None:
    """Broker, consumer lag per partition, landed and quarantined counts, reconciliation."""
    from clinicflow.status import collect, render

    report = collect(get_settings())
    if as_json:
        print(json.dumps(report, default=str))
    else:
        render(report, err)
    if not report["healthy"]:
        raise typer.Exit(1)


@app.command("settings")
@cli_errors
def show_settings(
    markdown: Annotated[bool, typer.Option("--markdown", help="Print docs/SETTINGS.md.")] = False,
) -> None:
    """Print the settings in force (secrets masked), or their documentation."""
    from core.settings import settings_markdown

    if markdown:
        print(settings_markdown(), end="")
        return
    print(get_settings().model_dump_json(indent=2))


@app.command("demo")
@cli_errors
def demo(
    patients: Annotated[int, typer.Option(min=1, max=100_000, help="Patients to simulate.")] = 200,
    prefect_port: Annotated[int, typer.Option(min=1024, max=65535, help="Local Prefect server port.")] = 4200,
    workers: Annotated[
        int, typer.Option(min=1, max=8, help="Ingest workers sharing the topics (one consumer group).")
    ] = 1,
) -> None:
    """The main job end to end on the local defaults: broker, Prefect server, simulate, publish, ingest,
    outreach, data quality, report."""
    from clinicflow.demo import run_demo
    from clinicflow.prefect_server import PrefectServer

    settings = get_settings()
    if settings.uses_local_broker:
        kafka_up(timeout=120)
    home = settings.warehouse_path.parent / "prefect"
    result = run_demo(settings, patients, say, PrefectServer(port=prefect_port, home=home), workers=workers)
    print(json.dumps(result, default=str))
