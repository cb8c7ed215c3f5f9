"""One band-probability implementation: the same forecast and band give the same P(below /
inside / above) in the live alert, the demo's report, the JSON API, the status page and the
backtest."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from schemas.alerts import AlertKind
from schemas.forecasts import ForecastUpdated
from schemas.streams import Groups
from services.cli import demo_report as demo_cli
from services.cli.demo import DEFAULT_DATA_DIR, DemoInputs, DemoReport, backfill_until, collect
from services.common.distribution import band_probabilities
from services.common.settings import ApiSettings
from services.common.streams import ensure_group
from services.common.wire import B_DATA_FIELD
from services.forecast.core import load_guidance_csv, load_history_csv, run_backtest
from tests.api.running import api_client
from tests.support.pipeline import all_alerts, pipeline, publish_and_settle, worker_settings

pytestmark = pytest.mark.integration
DATA = DEFAULT_DATA_DIR
PERIOD = "2024Q2"
# the live forecast's quantiles are published as Decimals rounded to a thousandth of the
# scale; the backtest keeps full floats, so its P may differ by the P of that rounding
ROUNDING = 1e-4


def history_with_actuals(tmp_path: Path) -> Path:
    """The bundled history plus a 2024Q2 row, so the backtest scores that quarter."""
    rows = list(csv.DictReader((DATA / "qfin_quarterly.csv").open()))
    rows.append({**dict.fromkeys(rows[0], ""), "quarter": PERIOD, "period_end": "2024-06-30",
                 "net_income": "1250", "non_gaap_net_income": "1262"})  # fmt: skip
    path = tmp_path / "history.csv"
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def triple(source: Any) -> tuple[float, ...]:
    names = ("p_below", "p_inside", "p_above")
    if isinstance(source, Mapping):
        return tuple(source[name] for name in names)
    return tuple(getattr(source, name) for name in names)


def shown(probabilities: tuple[float, ...]) -> str:
    below, inside, above = probabilities
    return f"P(below) {below:.0%} · P(inside) {inside:.0%} · P(above) {above:.0%}"


@pytest.mark.timeout(240)
async def test_a_forecast_and_band_show_the_same_probabilities_everywhere(
    redis_url: str, namespace: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bundled = DemoInputs.load(DATA)
    company = bundled.company
    async with pipeline(worker_settings(redis_url, namespace)) as workers:
        await ensure_group(workers.redis, workers.streams.alerts, Groups.REPORT)  # as the demo
        await publish_and_settle(workers, backfill_until(bundled, "2024Q1"), timeout_s=120)
        alerts = await all_alerts(workers)
        published = await workers.redis.xrange(
            workers.streams.for_company(workers.streams.forecasts, company)
        )
        stored = await workers.redis.hgetall(workers.streams.company_key(company, "forecasts"))
        report = DemoReport()
        await collect(workers, company, report)
    async with api_client(ApiSettings(redis_url=redis_url, namespace=namespace)) as client:
        api_bands = (await client.get(f"/api/companies/{company}/bands")).json()
        page = (await client.get(f"/companies/{company}")).text
    demo_text = Console(record=True, width=240, file=io.StringIO())
    monkeypatch.setattr(demo_cli, "console", demo_text)
    demo_cli.print_report(report)
    printed = demo_text.export_text()
    history = load_history_csv(history_with_actuals(tmp_path))
    guidance = load_guidance_csv(DATA / "qfin_guidance.csv")
    backtest = run_backtest(history, guidance=guidance, start=PERIOD).forecasts

    said = {f.event_id: f for f in (forecast_of(fields) for _, fields in published)}
    forecasts = [ForecastUpdated.model_validate_json(blob) for blob in stored.values()]
    bands = {b["metric"]: b for b in report.bands}
    assert set(bands) == {"net_income", "non_gaap_net_income"}
    for metric, band in bands.items():
        (forecast,) = [f for f in forecasts if (f.metric, f.period) == (metric, PERIOD)]
        expected = probabilities_of(forecast, band)
        (api,) = [b for b in api_bands if b["metric"] == metric]
        (row,) = [r for r in backtest if (r.metric, r.period) == (metric, PERIOD)]

        assert triple(band) == expected, "the demo's report"
        assert triple(api) == expected, "the JSON API"
        assert shown(expected) in page, "the status page"
        assert demo_row(printed, metric) == [f"{p:.0%}" for p in expected]
        assert triple(row) == pytest.approx(expected, abs=ROUNDING), "the backtest"
    band_alerts = [a for a in alerts if a.kind is AlertKind.BAND_CHECK]
    assert {a.subject for a in band_alerts} == set(bands)
    for alert in band_alerts:  # each notice carries the P of the forecast it was made from
        forecast = said[str(alert.details["forecast_event_id"])]
        assert triple(alert.details) == probabilities_of(forecast, bands[alert.subject])


def forecast_of(fields: dict[bytes, bytes]) -> ForecastUpdated:
    return ForecastUpdated.model_validate_json(fields[B_DATA_FIELD])


def probabilities_of(forecast: ForecastUpdated, band: dict[str, Any]) -> tuple[float, ...]:
    quantiles = forecast.quantile_pairs()
    return band_probabilities(quantiles, low=band["low"], high=band["high"]).as_tuple()


def demo_row(text: str, metric: str) -> list[str]:
    """The percentages of the printed 'Against guidance' row of `metric`, in order."""
    rows = [ln for ln in text.splitlines() if ln.startswith("│") and f" {metric} " in ln]
    (line,) = [row for row in rows if "%" in row]  # the forecasts table shows no percentages
    return re.findall(r"\d+%", line)
