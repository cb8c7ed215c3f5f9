"""The `guidepost` command. Each command builds its settings here and passes them down."""

from __future__ import annotations

import asyncio
import functools
import gc
import importlib
import json
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import track
from rich.table import Table

from schemas.base import COMPANY_PATTERN
from schemas.streams import Streams
from services.cli.failures import EXIT_CODES, BadInputError, NotFoundError, ensure_reachable
from services.cli.group import GuidepostGroup, flags_take_no_placeholder
from services.common.logging import configure_logging
from services.common.settings import RedisSettings, WorkerSettings

T = TypeVar("T")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)  # stream ids count milliseconds from it
EPILOG = "Exit status: " + "; ".join(f"{code} {meaning}" for code, meaning in EXIT_CODES.items())
app = typer.Typer(
    cls=GuidepostGroup,  # every failure: one line on stderr and an exit status (failures.py)
    help="Guidepost: forecasts of company results against their guidance.",
    epilog=EPILOG + ". With --json a failure's line is a JSON object.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
flags_take_no_placeholder()
alerts_app = typer.Typer(help="Read the alerts stream.", no_args_is_help=True)
dlq_app = typer.Typer(help="Inspect, replay and purge dead letters.", no_args_is_help=True)
silence_app = typer.Typer(help="Mute matching alerts for a while.", no_args_is_help=True)
schemas_app = typer.Typer(help="Event contracts.", no_args_is_help=True)
app.add_typer(alerts_app, name="alerts")
app.add_typer(dlq_app, name="dlq")
app.add_typer(silence_app, name="silence")
app.add_typer(schemas_app, name="schemas")
console = Console()
errors = Console(stderr=True)

RedisUrl = Annotated[str | None, typer.Option("--redis-url", help="Overrides GUIDEPOST_REDIS_URL.")]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]


def _company(value: str | None) -> str | None:
    if value is not None and not re.match(COMPANY_PATTERN, value):
        raise BadInputError(
            f"--company {value!r} is not a company identifier (upper case, e.g. ACME)"
        )
    return value


Company = Annotated[str, typer.Option(help="Company identifier, e.g. ACME.", callback=_company)]


def _settings(cls: type[T], redis_url: str | None, **overrides: Any) -> T:
    values = {k: v for k, v in {"redis_url": redis_url, **overrides}.items() if v is not None}
    return cls(**values)


def _run(coroutine: Awaitable[T]) -> T:
    """On uvloop where it is installed: its event loop and sockets cost the workers less CPU
    per small batch than asyncio's own (about 5% per event at 1,000 events/s)."""
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        return runner.run(coroutine)  # type: ignore[arg-type]


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:  # not on Windows
        return None
    return uvloop.new_event_loop


@app.command()
def demo(
    redis_url: RedisUrl = None,
    out: Annotated[Path | None, typer.Option(help="Also write report.json here.")] = None,
    json_output: JsonFlag = False,
    data_dir: Annotated[Path | None, typer.Option(help="Bundled inputs (demo.json).")] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the pipeline.")] = 600,
) -> None:
    """Run every worker on the bundled history and announcement, then report."""
    from services.cli.demo_report import run_demo_command

    raise typer.Exit(run_demo_command(redis_url, out, json_output, data_dir, timeout))


@app.command()
def run(
    services: Annotated[
        str | None, typer.Option(help="Comma list: ingest,forecast,guidance,alerts.")
    ] = None,
    redis_url: RedisUrl = None,
) -> None:
    """Run workers (all by default) until interrupted."""
    from services.app import create_app
    from services.common.transport import check_connection

    settings = _settings(WorkerSettings, redis_url, services=services)
    configure_logging(settings.log_level, as_json=settings.log_json)
    ensure_reachable(settings)
    _run(check_connection(settings))  # unreachable: one line and exit 1, not a retry loop
    application = create_app(settings)
    # what start-up loaded (pydantic, statsmodels, FastStream) lives as long as the process:
    # kept out of the collector's reach, a full collection scans only what the work allocates
    gc.freeze()
    _run(application.run())


@app.command()
def publish(
    file: Annotated[
        Path, typer.Argument(help='JSON lines: {"stream": ..., "event": {...}}.', exists=True)
    ],
    json_output: JsonFlag = False,
    redis_url: RedisUrl = None,
) -> None:
    """Validate every line first; publish only if all are valid."""
    from services.common.publishing import publish_events, read_jsonl

    events, problems = read_jsonl(file)
    if problems:
        shown = "; ".join(str(problem) for problem in problems[:MAX_PROBLEMS_SHOWN])
        hidden = len(problems) - MAX_PROBLEMS_SHOWN
        more = f"; and {hidden} more" if hidden > 0 else ""
        raise BadInputError(
            f"{file.name}: {len(problems)} invalid line(s), nothing was published: {shown}{more}"
        )
    settings = _settings(RedisSettings, redis_url)
    ensure_reachable(settings)
    count = _run(publish_events(settings, events))
    _report({"published": count}, f"published {count} event(s)", json_output=json_output)


MAX_PROBLEMS_SHOWN = 10  # the error stays one readable line


def _report(payload: Any, text: str, *, json_output: bool) -> None:
    """A command's result: `payload` as JSON with --json, else `text`."""
    if json_output:
        print(json.dumps(payload))
    else:
        console.print(text, highlight=False, soft_wrap=True)


@app.command()
def backfill(
    history: Annotated[Path, typer.Option(help="Quarterly history CSV.", exists=True)],
    company: Company,
    guidance: Annotated[Path | None, typer.Option(help="Guidance CSV.", exists=True)] = None,
    until: Annotated[str | None, typer.Option(help="Last quarter to publish, e.g. 2024Q1.")] = None,
    currency: Annotated[str, typer.Option(help="Currency of the CSV's money columns.")] = "CNY",
    scale: Annotated[str, typer.Option(help="Scale of the CSV's money columns.")] = "millions",
    reporting_lag_days: Annotated[int, typer.Option(help="Days from quarter end to release.")] = 50,
    json_output: JsonFlag = False,
    redis_url: RedisUrl = None,
) -> None:
    """Turn the history CSV format into events, known as of each quarter's release."""
    from services.common.publishing import publish_events

    units = _csv_units(currency, scale, reporting_lag_days)
    events = _backfill_events(history, guidance, company=company, units=units, until=until)
    if not json_output:
        console.print(f"money columns read as {units.currency} {units.scale.value}")
    settings = _settings(RedisSettings, redis_url)
    ensure_reachable(settings)
    batches = range(0, len(events), 200)
    for start in batches if json_output else track(batches, description="publishing"):
        _run(publish_events(settings, events[start : start + 200]))
    _report(
        {"company": company, "published": len(events), "currency": units.currency,
         "scale": units.scale.value},
        f"published {len(events)} event(s) for {company}",
        json_output=json_output,
    )  # fmt: skip


def _csv_units(currency: str, scale: str, reporting_lag_days: int) -> Any:
    from schemas.money import Scale
    from services.ingest.backfill import CsvUnits

    try:
        return CsvUnits(currency, Scale(scale), reporting_lag_days)
    except ValueError:
        known = ", ".join(s.value for s in Scale)
        raise BadInputError(f"--scale {scale!r} is not a scale; known: {known}") from None


def _backfill_events(
    history: Path, guidance: Path | None, *, company: str, units: Any, until: str | None
) -> list[Any]:
    """Every event of the CSVs, or BadInputError naming the file, line and column at fault."""
    from schemas.periods import PeriodError
    from services.ingest.backfill import BackfillError, guidance_events, history_events

    try:
        events = list(history_events(history, company=company, units=units, until=until))
        if guidance is not None:
            events += guidance_events(guidance, company=company, units=units, until=until)
    except (BackfillError, PeriodError) as problem:
        raise BadInputError(f"{problem}; nothing was published") from None
    return events


@app.command()
def backtest(
    history: Annotated[Path | None, typer.Option(help="Quarterly history CSV.")] = None,
    guidance: Annotated[Path | None, typer.Option(help="Guidance CSV.")] = None,
    start: Annotated[str | None, typer.Option(help="First quarter to forecast.")] = None,
    metric: Annotated[
        list[str] | None,
        typer.Option(help="Metric(s); default: net income, non-GAAP and guided metrics it has."),
    ] = None,
    panel: Annotated[
        Path | None,
        typer.Option(help="Long CSV series,quarter,value[,low,high]: backtest every series."),
    ] = None,
    last: Annotated[int, typer.Option(help="With --panel: quarters scored per series.")] = 8,
    plots: Annotated[
        Path | None,
        typer.Option(help="Directory for a reliability diagram and a PIT histogram (PNG)."),
    ] = None,
    json_output: JsonFlag = False,
) -> None:
    """Rolling-origin backtest, one quarter ahead, no broker needed: one company's history
    (--history) or a panel of series (--panel)."""
    if (history is None) == (panel is None):
        _refuse("give exactly one of --history FILE or --panel FILE")
    try:
        if panel is not None:
            _panel_backtest(panel, last=last, plots=plots, json_output=json_output)
            return
        assert history is not None
        _history_backtest(history, guidance, start, metric, plots, json_output)
    except (OSError, ValueError) as error:
        _refuse(str(error))


def _refuse(message: str) -> None:
    raise BadInputError(message)


def _history_backtest(
    history: Path,
    guidance: Path | None,
    start: str | None,
    metric: list[str] | None,
    plots: Path | None,
    json_output: bool,
) -> None:
    from services.forecast.core import load_guidance_csv, load_history_csv, run_backtest

    frame = load_history_csv(history)
    table = load_guidance_csv(guidance, history=frame) if guidance else None
    metrics = tuple(metric) if metric else _default_metrics(frame, table)
    report = run_backtest(frame, guidance=table, metrics=metrics, start=start)
    if plots is not None:
        _write_backtest_plots(report.forecasts, plots, name="backtest")
    if json_output:
        print(json.dumps(report.to_dict(), indent=2))
        return
    _print_backtest(report.to_dict())


def _default_metrics(frame: Any, guidance: Any) -> tuple[str, ...]:
    """Net income and non-GAAP net income where the history has them, and every metric
    guided in the guidance table that it has."""
    guided = [] if guidance is None else sorted(set(guidance["metric"]))
    wanted = ["net_income", "non_gaap_net_income", *guided]
    found = tuple(dict.fromkeys(m for m in wanted if m in frame.columns))
    if not found:
        raise ValueError(
            "the history has neither net_income nor non_gaap_net_income nor a guided metric; "
            f"name one with --metric (columns: {', '.join(map(str, frame.columns))})"
        )
    return found


def _panel_backtest(panel: Path, *, last: int, plots: Path | None, json_output: bool) -> None:
    from rich.progress import Progress

    from services.forecast.core.panel import load_panel_csv, run_panel

    frame = load_panel_csv(panel)
    with Progress(console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("backtest", total=None)
        report = run_panel(
            frame, last=last, progress=lambda done, total: bar.update(task, completed=done,
                                                                       total=total)
        )  # fmt: skip
    if plots is not None:
        _write_panel_plots(report, plots)
    if json_output:
        print(json.dumps(report.to_dict(), indent=2))
        return
    summary = report.to_dict()["summary"]
    table = Table(title=f"Panel, last {last} quarters, one step ahead")
    for key in summary:
        table.add_column(key)
    table.add_row(*(_fmt(v) for v in summary.values()))
    console.print(table)


def _write_backtest_plots(rows: Any, directory: Path, *, name: str) -> None:
    from services.api.png import write_pit_histogram, write_reliability_diagram

    directory.mkdir(parents=True, exist_ok=True)
    calls = [((r.p_below, r.p_inside, r.p_above), r.outcome) for r in rows if r.outcome]
    pits = [r.pit for r in rows if r.pit is not None]
    written = [
        write_reliability_diagram(calls, directory, name=name),
        write_pit_histogram(pits, directory, name=name),
    ]
    # stderr: with --json, stdout holds the report alone
    errors.print(f"wrote {', '.join(str(p) for p in written)}", highlight=False, soft_wrap=True)


def _write_panel_plots(report: Any, directory: Path) -> None:
    rows = [f for s in report.series for f in s.forecasts]
    _write_backtest_plots(rows, directory, name="panel")


def _print_backtest(report: dict[str, Any]) -> None:
    table = Table(title="Out-of-sample, one quarter ahead")
    for column in (
        "metric",
        "mape",
        "mase",
        "coverage80",
        "coverage95",
        "naive_mape",
        "drift_mape",
    ):
        table.add_column(column)
    for name, summary in report["summary"].items():
        table.add_row(
            name,
            *(
                _fmt(summary.get(k))
                for k in ("mape", "mase", "coverage80", "coverage95", "naive_mape", "drift_mape")
            ),
        )
    console.print(table)
    banded = {name: s["bands"] for name, s in report["summary"].items() if s.get("bands")}
    if banded:
        _print_band_scores(banded)


def _print_band_scores(banded: dict[str, dict[str, Any]]) -> None:
    table = Table(title="Band calls: mean Brier / RPS / log score (lower is better)")
    for column in ("metric", "calls", "Guidepost", "uniform 1/3", "midpoint", "guidance only"):
        table.add_column(column)
    for name, bands in banded.items():
        cells = [
            " / ".join(_fmt(bands[who][k]) for k in ("brier", "rps", "log_score"))
            for who in ("model", "uniform", "midpoint", "guidance_only")
        ]
        table.add_row(name, str(bands["calls"]), *cells)
    console.print(table)


def _fmt(value: Any) -> str:
    return "–" if value is None else f"{value:.2f}" if isinstance(value, float) else str(value)


history_app = typer.Typer(
    help="Stored facts with their versions, as known at --as-of; retract a fact.",
    invoke_without_command=True,
)
app.add_typer(history_app, name="history")


@history_app.callback()
def history(
    ctx: typer.Context,
    company: Annotated[
        str | None, typer.Option(help="Company identifier, e.g. ACME.", callback=_company)
    ] = None,
    period: Annotated[str | None, typer.Option(help="Only this period.")] = None,
    as_of: Annotated[
        datetime | None, typer.Option("--as-of", help="As known at this time (UTC).")
    ] = None,
    json_output: JsonFlag = False,
    redis_url: RedisUrl = None,
) -> None:
    """Stored values with their versions, as known at --as-of, and the figures accounting
    identities derive from them (marked derived, with the rule and the periods used)."""
    if ctx.invoked_subcommand is not None:
        return
    if company is None:
        raise BadInputError("give --company C (or a subcommand: guidepost history retract --help)")
    from services.cli import ops
    from services.forecast.assemble import derived_facts

    versions = _with_redis(redis_url, lambda r, s: ops.history(r, s, company=company, period=None))
    if not versions:
        raise NotFoundError(f"no history is stored for {company}")
    cutoff = (
        as_of.replace(tzinfo=as_of.tzinfo or UTC).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        if as_of
        else None
    )
    known = [v for v in versions if cutoff is None or v.known_at <= cutoff]
    latest = {(v.metric, v.period): v for v in known}
    rows = [v for v in known if period in (None, v.period)]
    standing = [v for v in latest.values() if not v.retracted]
    derived = [d for d in derived_facts(standing) if period in (None, d.period)]
    if json_output:
        entries = [_version_json(v, latest) for v in rows] + [_derived_json(d) for d in derived]
        print(json.dumps(entries, indent=2))
        return
    table = Table(title=f"{company} history" + (f" as of {cutoff}" if cutoff else ""))
    for column in ("metric", "period", "value", "currency", "known at", "event", "current"):
        table.add_column(column)
    for v in rows:
        table.add_row(
            v.metric,
            v.period,
            f"retracted ({v.value:,})" if v.retracted else f"{v.value:,}",
            v.currency or "",
            v.known_at,
            v.event_id[:12],
            "✓" if _is_current(v, latest) else "",
        )
    for d in derived:
        table.add_row(d.metric, d.period, f"{d.value:,}", d.currency or "", d.known_at,
                      "derived", "✓", style="italic")  # fmt: skip
    console.print(table)
    for d in derived:
        console.print(f"derived {d.metric} {d.period}: {d.derived_from}", markup=False)


@history_app.command("retract")
def history_retract(
    company: Company,
    metric: Annotated[str, typer.Option(help="The metric, e.g. net_income.")],
    period: Annotated[str, typer.Option(help="The period, e.g. 2024Q1.")],
    json_output: JsonFlag = False,
    redis_url: RedisUrl = None,
) -> None:
    """Withdraw a fact's current value (kept in its history: --as-of an earlier time shows it)."""
    from services.cli import ops

    try:
        ops.check_fact_names(company, metric, period)  # before Redis is asked
        done = _with_redis(
            redis_url,
            lambda r, s: ops.retract(r, s, company=company, metric=metric, period=period),
        )
    except ops.NothingToRetractError as error:
        raise NotFoundError(str(error)) from None
    except ops.RetractionError as error:
        raise BadInputError(str(error)) from None
    retracted = done.retracted
    if json_output:
        print(
            json.dumps(
                {
                    "company": company,
                    "metric": metric,
                    "period": period,
                    "retracted_value": str(retracted.value),
                    "retracted_known_at": retracted.known_at,
                    "announcement_id": done.announcement_id,
                    "quarantined": done.quarantined,
                }
            )
        )
        return
    console.print(
        f"retracted {company} {metric} {period} = {retracted.value:,} "
        f"(known since {retracted.known_at}); forecasts and checks follow"
    )
    if done.quarantined:
        console.print(
            f"{company} is quarantined: once its history is right, replay its refit letter "
            "(guidepost dlq replay --reason refit_failed)"
        )


def _is_current(version: Any, latest: dict[Any, Any]) -> bool:
    return latest[(version.metric, version.period)] is version and not version.retracted


def _version_json(version: Any, latest: dict[Any, Any]) -> dict[str, Any]:
    return {
        "metric": version.metric,
        "period": version.period,
        "value": str(version.value),
        "precision": str(version.precision),
        "currency": version.currency,
        "known_at": version.known_at,
        "event_id": version.event_id,
        "current": _is_current(version, latest),
        "retracted": version.retracted,
        "derived": False,
        "derived_from": None,
    }


def _derived_json(fact: Any) -> dict[str, Any]:
    return {
        "metric": fact.metric,
        "period": fact.period,
        "value": str(fact.value),
        "precision": str(fact.precision),
        "currency": fact.currency,
        "known_at": fact.known_at,
        "event_id": None,
        "current": True,
        "retracted": False,
        "derived": True,
        "derived_from": fact.derived_from,
    }


def _with_redis(redis_url: str | None, action: Callable[[Any, Streams], Awaitable[T]]) -> T:
    from services.common.transport import create_redis

    settings = _settings(RedisSettings, redis_url)
    ensure_reachable(settings)

    async def go() -> T:
        redis = create_redis(settings)
        try:
            return await action(redis, settings.streams())
        finally:
            await redis.aclose()

    return _run(go())


@alerts_app.command("tail")
def alerts_tail(
    json_output: JsonFlag = False,
    count: Annotated[int | None, typer.Option(help="Stop after this many alerts.")] = None,
    timeout: Annotated[float | None, typer.Option(help="Stop after this many seconds.")] = None,
    from_beginning: Annotated[bool, typer.Option(help="Replay the stream from its start.")] = False,
    redis_url: RedisUrl = None,
) -> None:
    """Show alerts as they arrive (without taking them from any subscriber)."""
    from services.cli import ops

    async def go(redis: Any, streams: Streams) -> None:
        tail = ops.tail_alerts(
            redis, streams, count=count, timeout_s=timeout, from_beginning=from_beginning
        )
        async for alert in tail:
            if json_output:
                print(alert.model_dump_json(), flush=True)
            else:
                colour = {"critical": "red", "warning": "yellow"}.get(alert.severity.value, "cyan")
                status = f"[{colour}]{alert.status.value:8}[/{colour}]"
                console.print(f"{status} {alert.kind.value:20} {alert.summary}")

    _with_redis(redis_url, go)


@dlq_app.command("list")
def dlq_list(json_output: JsonFlag = False, redis_url: RedisUrl = None) -> None:
    """Every dead letter with its reason."""
    from services.cli import ops

    read = _with_redis(redis_url, ops.read_dead_letters)
    letters = read.letters
    if read.unreadable:
        errors.print(
            f"skipped {len(read.unreadable)} entr{'y' if len(read.unreadable) == 1 else 'ies'} "
            f"of the dead-letter stream that hold no dead letter: {', '.join(read.unreadable[:5])}"
        )
    if json_output:
        print(
            json.dumps(
                [{"id": s.entry_id, **s.letter.model_dump(mode="json")} for s in letters], indent=2
            )
        )
        return
    table = Table(title=f"{len(letters)} dead letter(s)")
    for column in ("id", "stream", "reason", "deliveries", "error"):
        table.add_column(column)
    for s in letters:
        table.add_row(
            s.entry_id,
            s.letter.source_stream,
            s.letter.reason.value,
            str(s.letter.delivery_count),
            s.letter.error,
        )
    console.print(table)


@dlq_app.command("replay")
def dlq_replay(
    entry_id: Annotated[str | None, typer.Option("--id", help="One dead letter's id.")] = None,
    all_letters: Annotated[bool, typer.Option("--all", help="Every dead letter.")] = False,
    reason: Annotated[
        str | None,
        typer.Option(help="Only letters of this reason, e.g. delivery_failed or refit_failed."),
    ] = None,
    json_output: JsonFlag = False,
    redis_url: RedisUrl = None,
) -> None:
    """Replay dead letters: stream entries go back to their streams (validated again), failed
    webhook notices are redelivered, refit letters rerun their company's refit. Exits 1 when
    nothing matched or nothing could be replayed."""
    from schemas.deadletter import FailureReason
    from services.cli import ops

    if sum((entry_id is not None, all_letters, reason is not None)) != 1:
        raise BadInputError("give exactly one of --id ID, --reason REASON or --all")
    if reason is not None and reason not in {r.value for r in FailureReason}:
        known = ", ".join(r.value for r in FailureReason)
        raise BadInputError(f"--reason {reason!r} is not a dead-letter reason; known: {known}")

    async def go(redis: Any, streams: Streams) -> dict[str, Any]:
        letters = await ops.dead_letters(redis, streams)
        chosen = [
            s
            for s in letters
            if all_letters or s.entry_id == entry_id or s.letter.reason.value == reason
        ]
        return await ops.replay(redis, streams, chosen)

    reports = _with_redis(redis_url, go)
    if not reports:
        what = f"with id {entry_id}" if entry_id else f"of reason {reason}" if reason else ""
        raise NotFoundError(f"no dead letter {what}".strip())
    if json_output:
        print(json.dumps({kind: report.as_json() for kind, report in reports.items()}))
    for kind, report in reports.items():
        if not json_output:
            console.print(f"{kind}: {report.replayed} of {report.matched} {report.action}")
            for skipped in report.skipped or []:
                console.print(f"  not replayed: {skipped}", markup=False, soft_wrap=True)
    if sum(report.replayed for report in reports.values()) == 0:
        matched = sum(report.matched for report in reports.values())
        raise NotFoundError(f"none of the {matched} matching dead letter(s) could be replayed")


@dlq_app.command("purge")
def dlq_purge(
    before: Annotated[datetime, typer.Option(help="Delete letters older than this time (UTC).")],
    json_output: JsonFlag = False,
    redis_url: RedisUrl = None,
) -> None:
    """Delete old dead letters."""
    from services.cli import ops

    moment = max(before if before.tzinfo else before.replace(tzinfo=UTC), EPOCH)
    purged = _with_redis(redis_url, lambda r, s: ops.purge(r, s, before=moment))
    _report({"purged": purged}, f"purged {purged} dead letter(s)", json_output=json_output)


@silence_app.command("add")
def silence_add(
    match: Annotated[list[str], typer.Option(help="label=value (glob allowed); repeat for more.")],
    duration: Annotated[str, typer.Option(help="e.g. 90m, 2h, 1d.")] = "2h",
    comment: Annotated[str, typer.Option(help="Why.")] = "",
    created_by: Annotated[str, typer.Option(help="Who.")] = "cli",
    json_output: JsonFlag = False,
    redis_url: RedisUrl = None,
) -> None:
    """Mute alerts matching every --match until the silence expires."""
    from uuid import uuid4

    from services.alerts.silences import SilenceError, build_silence
    from services.alerts.store import RedisSilences

    try:
        silence = build_silence(
            silence_id=uuid4().hex[:12],
            matches=match,
            duration=duration,
            comment=comment,
            created_by=created_by,
            now=datetime.now(UTC),
        )
    except (SilenceError, ValueError) as error:
        raise BadInputError(str(error)) from None
    _with_redis(redis_url, lambda r, s: RedisSilences(r, s).add(silence))
    _report(
        _silence_json(silence, now=datetime.now(UTC)),
        f"silence {silence.id} until {silence.ends_at.isoformat()}",
        json_output=json_output,
    )


def _silence_json(silence: Any, *, now: datetime) -> dict[str, Any]:
    return {
        "id": silence.id,
        "matchers": dict(silence.matchers),
        "starts_at": silence.starts_at.isoformat(),
        "ends_at": silence.ends_at.isoformat(),
        "active": silence.is_active(at=now),
        "comment": silence.comment,
    }


@silence_app.command("list")
def silence_list(json_output: JsonFlag = False, redis_url: RedisUrl = None) -> None:
    """Silences, active and expired."""
    from services.alerts.store import RedisSilences

    silences = _with_redis(redis_url, lambda r, s: RedisSilences(r, s).all())
    now = datetime.now(UTC)
    rows = [_silence_json(s, now=now) for s in silences]
    if json_output:
        print(json.dumps(rows, indent=2))
        return
    for row in rows:
        status = "active " if row["active"] else "expired"
        console.print(f"{row['id']}  {status}  until {row['ends_at']}  {row['matchers']}")


@silence_app.command("expire")
def silence_expire(
    silence_id: Annotated[str, typer.Argument(help="The silence's id.")],
    json_output: JsonFlag = False,
    redis_url: RedisUrl = None,
) -> None:
    """End a silence now."""
    from services.alerts.store import RedisSilences

    ended = _with_redis(
        redis_url, lambda r, s: RedisSilences(r, s).expire(silence_id, at=datetime.now(UTC))
    )
    if not ended:
        raise NotFoundError(f"no silence {silence_id}")
    _report({"id": silence_id, "expired": True}, f"silence {silence_id} expired",
            json_output=json_output)  # fmt: skip


@schemas_app.command("export")
def schemas_export(
    directory: Annotated[Path, typer.Argument(help="Where to write the files.")],
    json_output: JsonFlag = False,
) -> None:
    """Write every event's JSON Schema and the AsyncAPI document."""
    from services.cli.contracts import export

    if directory.exists() and not directory.is_dir():
        raise BadInputError(f"{directory} is not a directory")
    written = [str(path) for path in export(directory)]
    _report({"written": written}, "\n".join(f"wrote {p}" for p in written), json_output=json_output)


def _register_announcement() -> None:
    try:
        from services.cli.ingest_announcement import ingest_announcement
    except ImportError:
        return

    @functools.wraps(ingest_announcement)
    def command(*args: Any, **kwargs: Any) -> None:
        raise typer.Exit(ingest_announcement(*args, **kwargs))

    app.command("ingest-announcement")(command)


def _register_optional(module_name: str) -> None:
    """Command groups that live beside their code expose `register(app)`."""
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return
    module.register(app)


_register_announcement()
_register_optional("services.cli.serve")


def main() -> None:
    """The installed command; `GuidepostGroup` turns any failure into one line and an exit
    status (GUIDEPOST_DEBUG=1 shows the traceback)."""
    app()


if __name__ == "__main__":
    main()
