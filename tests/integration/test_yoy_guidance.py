"""Guidance stated as year-on-year growth alone, end to end on a real Redis: from the guidance
CSV through backfill and the history to a band check and an alert that say the band was
derived and from what; a prior year that arrives late or is restated (re-)derives the band."""

from __future__ import annotations

import asyncio
import csv
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from schemas.alerts import AlertKind
from schemas.guidance import GuidanceIssued
from schemas.metrics import MetricReported
from schemas.money import Scale
from schemas.registry import Basis, Unit
from services.app import Workers
from services.cli import app
from services.cli.demo import DEFAULT_DATA_DIR
from services.common.settings import ApiSettings
from services.ingest.backfill import known_at
from tests.api.running import api_client
from tests.support.pipeline import (
    all_alerts,
    pipeline,
    publish_and_settle,
    synthetic_company,
    worker_settings,
)

pytestmark = pytest.mark.integration
DATA = DEFAULT_DATA_DIR
ACME = [410, 425, 433, 452, 470, 468, 490, 505, 512, 530, 541, 560]  # 2021Q1 to 2023Q4


def growth_only_guidance(tmp_path: Path) -> Path:
    """The bundled guidance, its 2024Q2 net income band stated as growth alone."""
    rows = list(csv.DictReader((DATA / "qfin_guidance.csv").open()))
    for row in rows:
        if (row["metric"], row["for_quarter"]) == ("net_income", "2024Q2"):
            row["low"] = row["high"] = ""
    path = tmp_path / "guidance.csv"
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


@pytest.mark.timeout(180)
async def test_a_growth_only_csv_row_gives_a_derived_band_check_and_alert(
    redis_url: str, namespace: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GUIDEPOST_NAMESPACE", namespace)
    backfill = ["backfill", "--history", str(DATA / "qfin_quarterly.csv"), "--company", "QFIN",
                "--guidance", str(growth_only_guidance(tmp_path)), "--until", "2024Q1",
                "--redis-url", redis_url]  # fmt: skip
    async with pipeline(worker_settings(redis_url, namespace)) as workers:
        result = await asyncio.to_thread(CliRunner().invoke, app, backfill)
        await publish_and_settle(workers, [], timeout_s=120)
        alerts = await all_alerts(workers)
    async with api_client(ApiSettings(redis_url=redis_url, namespace=namespace)) as client:
        bands = (await client.get("/api/companies/QFIN/bands")).json()

    assert result.exit_code == 0, result.output
    checks = [a for a in alerts if a.kind is AlertKind.BAND_CHECK and a.subject == "net_income"]
    (band,) = [b for b in bands if b["metric"] == "net_income"]
    # a call may change while the history is still arriving (each change one notice): the last
    # notice is the stored check's
    assert checks != []
    alert = checks[-1]
    assert alert.state == band["state"]
    derivation = "the 2023Q2 actual of 1,093.4 grown +7.0% to +12.5%"
    assert (band["low"], band["high"]) == pytest.approx((1093.4 * 1.07, 1093.4 * 1.125))
    assert (band["band_source"], band["derived_from"]) == ("derived", derivation)
    assert (band["prior_period"], band["prior_actual"]) == ("2023Q2", 1093.4)
    assert alert.details["band_source"] == "derived"
    assert f"vs guidance 1,169.9–1,230.1 CNY millions (derived from {derivation})" in alert.summary
    assert sum(band[k] for k in ("p_below", "p_inside", "p_above")) == pytest.approx(1.0)
    revision = next(a for a in alerts if a.kind is AlertKind.GUIDANCE_REVISION
                    and a.subject == "net_income")  # fmt: skip
    assert "growth of +7.0% to +12.5% on 2023Q2" in revision.summary
    (stated,) = [b for b in bands if b["metric"] == "non_gaap_net_income"]
    assert (stated["band_source"], stated["derived_from"]) == ("stated", None)


def net_income(period: str, value: str, *, days_after: int = 45) -> MetricReported:
    return MetricReported(company="ACME", metric="net_income", period=period, value=Decimal(value),
                          unit=Unit.MONEY, currency="CNY", scale=Scale.MILLIONS,
                          occurred_at=known_at(period, days_after))  # fmt: skip


@pytest.mark.timeout(180)
async def test_growth_guidance_waits_for_its_prior_year_and_follows_its_restatement(
    redis_url: str, namespace: str
) -> None:
    history = [
        e
        for e in synthetic_company("ACME", first="2021Q1", values=ACME, guided=(1, 2))
        if isinstance(e, MetricReported) and e.period != "2023Q1"
    ]
    growth = GuidanceIssued(company="ACME", metric="net_income", period="2024Q1", basis=Basis.GAAP,
                            yoy_low_pct=Decimal(5), issued_in_period="2023Q4",
                            occurred_at=known_at("2023Q4", 46))  # fmt: skip

    async with pipeline(worker_settings(redis_url, namespace)) as workers:
        await publish_and_settle(workers, [*history, growth])
        before_prior = await band_checks(workers)
        await publish_and_settle(workers, [net_income("2023Q1", "512")])
        with_prior = await band_checks(workers)
        await publish_and_settle(workers, [net_income("2023Q1", "520", days_after=200)])
        restated = await band_checks(workers)

    assert before_prior == [], "no band until the prior year is known"
    assert [(b["low"], b["high"], b["prior_actual"]) for b in with_prior] == [
        (pytest.approx(512 * 1.05), None, 512.0)
    ]
    assert [(b["low"], b["prior_actual"], b["derived_from"]) for b in restated] == [
        (pytest.approx(520 * 1.05), 520.0, "the 2023Q1 actual of 520.0 grown at least +5.0%")
    ]
    assert restated[0]["p_above"] == 0.0  # a one-sided band has nothing above it


async def band_checks(workers: Workers) -> list[dict[str, Any]]:
    """The stored band check of ACME's net income 2024Q1, as the API returns it."""
    key = workers.streams.company_key("ACME", "bands")
    raw = await workers.redis.hget(key, "net_income|2024Q1")  # type: ignore[misc]
    return [json.loads(raw)] if raw else []


@pytest.mark.timeout(180)
async def test_an_outcome_against_growth_guidance_is_judged_again_when_the_prior_is_restated(
    redis_url: str, namespace: str
) -> None:
    history = [
        e
        for e in synthetic_company("ACME", first="2021Q1", values=ACME, guided=(1, 2))
        if isinstance(e, MetricReported)
    ]
    growth = GuidanceIssued(company="ACME", metric="net_income", period="2023Q4", basis=Basis.GAAP,
                            yoy_low_pct=Decimal(10), yoy_high_pct=Decimal(20),
                            issued_in_period="2023Q3", occurred_at=known_at("2023Q3", 46))  # fmt: skip

    async with pipeline(worker_settings(redis_url, namespace)) as workers:
        await publish_and_settle(workers, [*history, growth])
        await publish_and_settle(workers, [net_income("2022Q4", "520", days_after=400)])
        alerts = await all_alerts(workers)

    outcomes = [a for a in alerts if a.kind is AlertKind.OUTCOME and a.period == "2023Q4"]
    assert [(a.state, a.details["low"], a.details["derived_from"]) for a in outcomes] == [
        ("in_line", pytest.approx(505 * 1.1), "the 2022Q4 actual of 505.0 grown +10.0% to +20.0%"),
        ("miss", pytest.approx(520 * 1.1), "the 2022Q4 actual of 520.0 grown +10.0% to +20.0%"),
    ]
    assert "derived from the 2022Q4 actual of 520.0" in outcomes[1].summary
