"""The JSON read API and the status page against state the real pipeline wrote."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from schemas.forecasts import ForecastUpdated
from tests.api.running import BundledRun, api_client

pytestmark = pytest.mark.integration

GUIDED = {"net_income": (1170.0, 1230.0), "non_gaap_net_income": (1220.0, 1280.0)}
BAND_STATES = {"likely_inside", "likely_below", "likely_above"}


async def _json(client: httpx.AsyncClient, path: str) -> Any:
    response = await client.get(path)
    assert response.status_code == 200, response.text
    return response.json()


async def test_probes_answer_health_and_readiness(client: httpx.AsyncClient) -> None:
    assert await _json(client, "/health") == {"status": "ok"}
    assert await _json(client, "/ready") == {"status": "ready"}


async def test_ready_is_503_when_redis_does_not_answer(bundled_run: BundledRun) -> None:
    settings = bundled_run.api_settings(redis_url="redis://127.0.0.1:1/0")
    async with api_client(settings) as client:
        health = await client.get("/health")
        ready = await client.get("/ready")

    assert health.status_code == 200
    assert (ready.status_code, ready.json()["status"]) == (503, "unavailable")


async def test_companies_lists_the_bundled_company_with_its_counts(
    client: httpx.AsyncClient, bundled_run: BundledRun
) -> None:
    companies = await _json(client, "/api/companies")
    forecasts = await _json(client, f"/api/companies/{bundled_run.company}/forecasts")

    assert companies == [
        {"company": bundled_run.company, "forecasts": len(forecasts), "bands": 2, "trends": 1}
    ]


async def test_forecasts_are_the_stored_2024Q2_distributions(
    client: httpx.AsyncClient, bundled_run: BundledRun
) -> None:
    items = await _json(client, f"/api/companies/{bundled_run.company}/forecasts")

    # earlier quarters' forecasts made during the backfill may be stored too
    forecasts = [ForecastUpdated.model_validate(i) for i in items if i["period"] == "2024Q2"]
    assert [f.metric for f in forecasts] == ["net_income", "non_gaap_net_income"]
    for forecast in forecasts:
        assert forecast.company == bundled_run.company
        assert (forecast.currency, forecast.scale.value) == ("CNY", "millions")
        assert forecast.lo95 < forecast.lo80 < forecast.point < forecast.hi80 < forecast.hi95


async def test_bands_carry_the_guidance_and_the_forecast_they_were_checked_against(
    client: httpx.AsyncClient, bundled_run: BundledRun
) -> None:
    company = bundled_run.company
    bands = await _json(client, f"/api/companies/{company}/bands")
    forecasts = await _json(client, f"/api/companies/{company}/forecasts")

    assert {b["metric"]: (b["low"], b["high"]) for b in bands} == GUIDED
    points = {f["metric"]: float(f["point"]) for f in forecasts if f["period"] == "2024Q2"}
    for band in bands:
        assert band["period"] == "2024Q2"
        assert band["state"] in BAND_STATES
        assert band["p_below"] + band["p_inside"] + band["p_above"] == pytest.approx(1.0)
        assert band["point"] == pytest.approx(points[band["metric"]])


async def test_trends_include_the_90_day_delinquency_rate(
    client: httpx.AsyncClient, bundled_run: BundledRun
) -> None:
    trends = await _json(client, f"/api/companies/{bundled_run.company}/trends")

    assert [t["metric"] for t in trends] == ["dpd90_rate_pct"]
    assert trends[0]["next_lo_pct"] <= trends[0]["next_forecast_pct"] <= trends[0]["next_hi_pct"]


async def test_alerts_come_newest_first_and_respect_the_limit(
    client: httpx.AsyncClient, bundled_run: BundledRun
) -> None:
    company = bundled_run.company
    every = await _json(client, f"/api/companies/{company}/alerts?limit=1000")
    two = await _json(client, f"/api/companies/{company}/alerts?limit=2")

    times = [a["occurred_at"] for a in every]
    assert times == sorted(times, reverse=True)
    assert {(a["kind"], a["subject"]) for a in every} >= {
        ("band_check", "net_income"),
        ("band_check", "non_gaap_net_income"),
    }
    assert two == every[:2]


async def test_history_lists_fact_versions_and_marks_the_current_one(
    client: httpx.AsyncClient, bundled_run: BundledRun
) -> None:
    path = f"/api/companies/{bundled_run.company}/history?metric=net_income&period=2024Q1"
    versions = await _json(client, path)

    assert [(v["metric"], v["period"], v["current"]) for v in versions][-1] == (
        "net_income",
        "2024Q1",
        True,
    )
    assert all(v["currency"] == "CNY" for v in versions)


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/api/companies/NOSUCH/forecasts", 404),
        ("/api/companies/not-a-ticker/bands", 422),
        ("/companies/NOSUCH", 404),
        ("/api/companies/QFIN/alerts?limit=0", 422),
        ("/companies/QFIN?refresh=4", 422),
        ("/?refresh=3601", 422),
        ("/?refresh=soon", 422),
    ],
)
async def test_unknown_or_malformed_requests_are_refused(
    client: httpx.AsyncClient, path: str, status: int
) -> None:
    response = await client.get(path)

    assert response.status_code == status


async def test_status_page_is_self_contained_with_a_fan_chart_per_guided_figure(
    client: httpx.AsyncClient, bundled_run: BundledRun
) -> None:
    response = await client.get(f"/companies/{bundled_run.company}")

    assert response.status_code == 200
    assert "default-src 'none'" in response.headers["content-security-policy"]
    charts = re.findall(r'<svg [^>]*class="fan-chart"[^>]*data-metric="([^"]+)"', response.text)
    assert sorted(charts) == sorted(GUIDED)
    links = re.findall(r'(?:src|href)="([^"]*)"', response.text)
    assert [link for link in links if not link.startswith("/")] == []


async def test_the_status_page_reloads_itself_only_when_asked(
    client: httpx.AsyncClient, bundled_run: BundledRun
) -> None:
    page = f"/companies/{bundled_run.company}"
    plain, refreshing = await client.get(page), await client.get(f"{page}?refresh=30")

    assert plain.status_code == refreshing.status_code == 200
    assert "http-equiv" not in plain.text
    assert '<meta http-equiv="refresh" content="30">' in refreshing.text
    assert "default-src 'none'" in refreshing.headers["content-security-policy"]
