"""`guidepost demo`: the whole path on the bundled history and announcement, then a report."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from schemas.alerts import Alert
from schemas.base import Event
from schemas.forecasts import ForecastUpdated
from schemas.periods import Quarter
from schemas.streams import Groups, Streams
from services.app import Workers, build_workers, running
from services.common.publishing import logical_stream_for
from services.common.records import decode_entries
from services.common.settings import WorkerSettings
from services.common.streams import ensure_group, publish
from services.forecast.store import ForecastReader
from services.guidance.store import BandReader
from services.ingest.backfill import CsvUnits, guidance_events, history_events


def bundled_data_dir() -> Path:
    """The bundled history, guidance and announcement: package data of `services`, so an
    installed wheel (the container image) carries them. Installed as files, not zipped."""
    return Path(str(resources.files("services") / "data"))


DEFAULT_DATA_DIR = bundled_data_dir()


@dataclass(frozen=True)
class DemoInputs:
    company: str
    history: Path
    guidance: Path
    announcement: Path
    units: CsvUnits

    @classmethod
    def load(cls, data_dir: Path) -> DemoInputs:
        manifest = json.loads((data_dir / "demo.json").read_text())
        return cls(
            company=manifest["company"],
            history=data_dir / manifest["history"],
            guidance=data_dir / manifest["guidance"],
            announcement=data_dir / manifest["announcement"],
            units=CsvUnits(manifest["currency"], manifest["scale"], manifest["reporting_lag_days"]),
        )


@dataclass
class DemoReport:
    forecasts: list[dict[str, Any]] = field(default_factory=list)
    bands: list[dict[str, Any]] = field(default_factory=list)
    trends: list[dict[str, Any]] = field(default_factory=list)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    dead_letters: int = 0
    timings_s: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, default=str)


def announcement_events(inputs: DemoInputs) -> list[Event]:
    from services.extract import parse_announcement, to_events

    extraction = parse_announcement(
        inputs.announcement.read_text(encoding="utf-8"), company=inputs.company
    )
    return list(to_events(extraction))


def backfill_until(inputs: DemoInputs, until: str) -> list[Event]:
    history = history_events(
        inputs.history, company=inputs.company, units=inputs.units, until=until
    )
    guidance = guidance_events(
        inputs.guidance, company=inputs.company, units=inputs.units, until=until
    )
    return [*history, *guidance]


async def publish_inputs(workers: Workers, events: list[Event]) -> None:
    by_stream: dict[str, list[Event]] = {}
    for event in events:
        by_stream.setdefault(logical_stream_for(workers.streams, event), []).append(event)
    for stream, batch in by_stream.items():
        max_length = workers.settings.stream_max_length
        await publish(workers.redis, stream, batch, max_length=max_length, streams=workers.streams)


async def wait_until_idle(workers: Workers, *, timeout_s: float, settle_s: float = 0.3) -> None:
    """Idle = nothing pending or due, observed twice `settle_s` apart."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if await workers.is_idle():
            await asyncio.sleep(settle_s)
            if await workers.is_idle():
                return
        await asyncio.sleep(0.05)
    raise TimeoutError(f"the pipeline did not go idle within {timeout_s:.0f}s")


async def run_demo(
    settings: WorkerSettings, inputs: DemoInputs, *, timeout_s: float = 300
) -> DemoReport:
    workers = build_workers(settings)
    report = DemoReport()
    await ensure_group(workers.redis, workers.streams.alerts, Groups.REPORT)
    started = time.monotonic()
    seed = announcement_events(inputs)
    seed_period = _seed_period(seed)
    async with running(workers):
        await publish_inputs(
            workers, backfill_until(inputs, str(Quarter.parse(seed_period).previous()))
        )
        await wait_until_idle(workers, timeout_s=timeout_s)
        report.timings_s["backfill"] = round(time.monotonic() - started, 2)
        await publish_inputs(workers, seed)
        await wait_until_idle(workers, timeout_s=timeout_s)
        report.timings_s["total"] = round(time.monotonic() - started, 2)
    await collect(workers, inputs.company, report)
    await workers.redis.aclose()
    return report


def _seed_period(events: list[Event]) -> str:
    from schemas.results import ResultsPublished

    for event in events:
        if isinstance(event, ResultsPublished):
            return event.statement.period
    raise ValueError("the announcement yielded no results statement")


async def collect(workers: Workers, company: str, report: DemoReport) -> None:
    redis, streams = workers.redis, workers.streams
    published = ForecastReader(redis, streams)
    forecasts = sorted(await published.forecasts(company), key=_order)
    report.forecasts = [_forecast_item(f) for f in forecasts]
    for check in await BandReader(redis, streams).checks(company):
        report.bands.append({"company": company, **asdict(check)})
    for trend in await published.trends(company):
        report.trends.append(trend.model_dump(mode="json"))
    report.alerts = [a.model_dump(mode="json") for a in await read_alerts(workers)]
    report.dead_letters = int(await redis.xlen(streams.dead_letters))


def _order(forecast: ForecastUpdated) -> tuple[str, str]:
    """The worker keeps only open quarters' forecasts (settled ones are pruned)."""
    return forecast.metric, forecast.period


async def read_alerts(workers: Workers) -> list[Alert]:
    """What a subscriber with its own consumer group received."""
    entries: Any = await workers.redis.xreadgroup(
        Groups.REPORT, "demo", {workers.streams.alerts: ">"}, count=10_000
    )
    alerts = []
    for _stream, items in entries:
        alerts += decode_entries(items, Alert, stream=workers.streams.alerts).values
        if items:
            await workers.redis.xack(workers.streams.alerts, Groups.REPORT, *[i for i, _ in items])
    return alerts


def _forecast_item(forecast: ForecastUpdated) -> dict[str, Any]:
    return {
        "company": forecast.company,
        "period": forecast.period,
        "metric": forecast.metric,
        "forecast": float(forecast.point),
        "lo80": float(forecast.lo80),
        "hi80": float(forecast.hi80),
        "lo95": float(forecast.lo95),
        "hi95": float(forecast.hi95),
        "currency": forecast.currency,
        "scale": forecast.scale.value,
        "method": forecast.method,
        "models": [m.model_dump() for m in forecast.models],
        "drivers": [d.model_dump() for d in forecast.drivers],
        "n_obs": forecast.n_obs,
    }


__all__ = ["DEFAULT_DATA_DIR", "DemoInputs", "DemoReport", "Streams", "run_demo"]
