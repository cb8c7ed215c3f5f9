"""Accounting identities on a real Redis: a quarter whose net income was not reported but whose
non-GAAP net income and share-based compensation were is filled, forecast from, and shown as
derived by the forecast, `guidepost history` and the API."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal

import pytest
from typer.testing import CliRunner

from schemas.forecasts import ForecastUpdated
from schemas.metrics import MetricReported
from schemas.money import Scale
from schemas.registry import Unit
from services.cli import app
from services.common.settings import ApiSettings
from services.ingest.backfill import known_at
from tests.api.running import api_client
from tests.support.pipeline import pipeline, publish_and_settle, worker_settings

pytestmark = pytest.mark.integration
QUARTERS = [f"{year}Q{q}" for year in (2021, 2022, 2023) for q in (1, 2, 3, 4)]
NET_INCOME = [410, 425, 433, 452, 470, 468, 490, 505, 512, 530, 541, 560]
SBC = 20


def reported(metric: str, period: str, value: float) -> MetricReported:
    return MetricReported(company="ACME", metric=metric, period=period, value=Decimal(str(value)),
                          unit=Unit.MONEY, currency="CNY", scale=Scale.MILLIONS,
                          occurred_at=known_at(period, 45))  # fmt: skip


def history() -> list[MetricReported]:
    """Every quarter's non-GAAP net income and SBC; net income for all but the last."""
    events = []
    for period, value in zip(QUARTERS, NET_INCOME, strict=True):
        events += [reported("non_gaap_net_income", period, value + SBC)]
        events += [reported("share_based_comp", period, SBC)]
        if period != QUARTERS[-1]:
            events.append(reported("net_income", period, value))
    return events


@pytest.mark.timeout(180)
async def test_a_derived_quarter_is_forecast_from_and_shown_as_derived(
    redis_url: str, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GUIDEPOST_NAMESPACE", namespace)
    async with pipeline(worker_settings(redis_url, namespace)) as workers:
        await publish_and_settle(workers, history())
        stored = await workers.redis.hgetall(workers.streams.company_key("ACME", "forecasts"))
    command = ["history", "--company", "ACME", "--period", "2023Q4", "--json",
               "--redis-url", redis_url]  # fmt: skip
    shown = json.loads((await asyncio.to_thread(CliRunner().invoke, app, command)).output)
    async with api_client(ApiSettings(redis_url=redis_url, namespace=namespace)) as client:
        entries = (await client.get("/api/companies/ACME/history?period=2023Q4")).json()

    forecasts = {
        f.metric: f for f in (ForecastUpdated.model_validate_json(b) for b in stored.values())
    }
    rule = "net_income = non_gaap_net_income - share_based_comp (2023Q4)"
    net_income = forecasts["net_income"]
    assert net_income.period == "2024Q1", "the derived 2023Q4 is the last known quarter"
    assert [(d.metric, d.period, d.value, d.derived_from) for d in net_income.derived_inputs] == [
        ("net_income", "2023Q4", Decimal("560.0"), rule)
    ]
    for listing in (shown, entries):
        (derived,) = [e for e in listing if e["derived"]]
        assert (derived["metric"], derived["value"], derived["derived_from"]) == (
            "net_income",
            "560000000",
            rule,
        )
        assert derived["known_at"] == max(e["known_at"] for e in listing if not e["derived"])
        assert {e["metric"] for e in listing if not e["derived"]} == {
            "non_gaap_net_income",
            "share_based_comp",
        }
