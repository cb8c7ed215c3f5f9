"""Printing the demo's report: a readable summary, or one JSON object."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from services.cli.demo import DEFAULT_DATA_DIR, DemoInputs, DemoReport, run_demo
from services.cli.failures import CommandError, ensure_reachable
from services.common.embedded import EmbeddedRedis, NoRedisServerError
from services.common.logging import configure_logging
from services.common.settings import TransportSettings, WorkerSettings

console = Console()


def run_demo_command(
    redis_url: str | None,
    out: Path | None,
    json_output: bool,
    data_dir: Path | None,
    timeout: float,
) -> int:
    configure_logging("WARNING", as_json=True)
    inputs = DemoInputs.load(data_dir or DEFAULT_DATA_DIR)
    try:
        report = _run_with_redis(redis_url, inputs, timeout)
    except NoRedisServerError as error:
        raise CommandError(str(error)) from None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "report.json").write_text(report.to_json(), encoding="utf-8")
    if json_output:
        print(report.to_json())
    else:
        print_report(report)
    return 0


def _run_with_redis(redis_url: str | None, inputs: DemoInputs, timeout: float) -> DemoReport:
    client = TransportSettings().redis_client  # GUIDEPOST_REDIS_CLIENT; the rest as bundled
    if redis_url is not None:
        settings = WorkerSettings.model_validate({"redis_url": redis_url, "redis_client": client})
        ensure_reachable(settings)
        return asyncio.run(run_demo(settings, inputs, timeout_s=timeout))
    with EmbeddedRedis() as server:
        settings = WorkerSettings.model_validate({"redis_url": server.url, "redis_client": client})
        return asyncio.run(run_demo(settings, inputs, timeout_s=timeout))


def print_report(report: DemoReport) -> None:
    forecasts = Table(title="Forecasts")
    for column in (
        "company",
        "period",
        "metric",
        "forecast",
        "80% interval",
        "95% interval",
        "unit",
    ):
        forecasts.add_column(column)
    for f in report.forecasts:
        forecasts.add_row(
            f["company"], f["period"], f["metric"], f"{f['forecast']:,.1f}",
            f"{f['lo80']:,.1f} – {f['hi80']:,.1f}", f"{f['lo95']:,.1f} – {f['hi95']:,.1f}",
            f"{f['currency']} {f['scale']}",
        )  # fmt: skip
    console.print(forecasts)
    bands = Table(title="Against guidance")
    columns = ("period", "metric", "band", "P(below)", "P(inside)", "P(above)", "call")
    for column in columns:
        bands.add_column(column)
    for b in report.bands:
        bands.add_row(
            b["period"], b["metric"], band_cell(b),
            f"{b['p_below']:.0%}", f"{b['p_inside']:.0%}", f"{b['p_above']:.0%}", call_cell(b),
        )  # fmt: skip
    console.print(bands)
    for b in report.bands:
        if b.get("derived_from"):
            console.print(f"{b['metric']} {b['period']} band derived from {b['derived_from']}")
    for trend in report.trends:
        console.print(
            f"trend {trend['metric']}: {trend['verdict']} "
            f"(slope {trend['slope_pct_points']:+.2f} pp/period, "
            f"confidence {trend['confidence']:.0%})"
        )
    console.print(f"\n{len(report.alerts)} alert(s) received by a subscriber:")
    for alert in report.alerts:
        console.print(f"  {alert['severity']:8} {alert['kind']}: {alert['summary']}", markup=False)
    console.print(f"\ndead letters: {report.dead_letters}; timings: {report.timings_s}")


def band_cell(band: dict[str, Any]) -> str:
    """'1,170 – 1,230', 'at least 1,170' or 'at most 1,230', starred when derived."""
    low, high = band["low"], band["high"]
    if low is not None and high is not None:
        text = f"{low:,.0f} – {high:,.0f}"
    else:
        text = f"at least {low:,.0f}" if low is not None else f"at most {high:,.0f}"
    return text + (" (derived)" if band.get("band_source") == "derived" else "")


def call_cell(band: dict[str, Any]) -> str:
    """'likely below (moderate confidence)'."""
    words = band["state"].replace("_", " ")
    confidence = band.get("confidence_word")
    return f"{words} ({confidence} confidence)" if confidence else words
