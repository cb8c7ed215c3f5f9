"""Guidance intelligence end to end: outcomes and scorecards, silences, a flaky webhook."""

from __future__ import annotations

import asyncio
import csv
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from pydantic import SecretStr
from typer.testing import CliRunner

from schemas.alerts import AlertKind, AlertStatus
from schemas.guidance import GuidanceIssued
from schemas.metrics import MetricReported
from schemas.money import Scale
from schemas.registry import Basis, Unit
from services.alerts.lifecycle import Silence
from services.alerts.store import RedisSilences
from services.alerts.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify_signature
from services.cli import app
from services.cli.demo import DEFAULT_DATA_DIR, DemoInputs, backfill_until
from tests.integration.test_webhook_sink import FlakyReceiver, serving
from tests.support.pipeline import (
    all_alerts,
    pipeline,
    publish_and_settle,
    synthetic_company,
    worker_settings,
)

pytestmark = pytest.mark.integration
DATA = DEFAULT_DATA_DIR
ACME = [410, 425, 433, 452, 470, 468, 490, 505, 512, 530, 541, 560]


def history_with_q2(tmp_path: Path, *, net_income: str, non_gaap: str) -> Path:
    """The bundled history plus a 2024Q2 row with the given actuals (CSV millions)."""
    rows = list(csv.DictReader((DATA / "qfin_quarterly.csv").open()))
    rows.append({**dict.fromkeys(rows[0], ""), "quarter": "2024Q2", "period_end": "2024-06-30",
                 "net_income": net_income, "non_gaap_net_income": non_gaap})  # fmt: skip
    path = tmp_path / "history.csv"
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


@pytest.mark.timeout(240)
async def test_actuals_for_a_guided_quarter_yield_an_outcome_per_metric_and_resolve_the_band_checks(
    redis_url: str, namespace: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bundled = DemoInputs.load(DATA)
    history = history_with_q2(tmp_path, net_income="1250", non_gaap="1262")
    monkeypatch.setenv("GUIDEPOST_NAMESPACE", namespace)
    backfill = ["backfill", "--history", str(history), "--company", bundled.company,
                "--until", "2024Q2", "--redis-url", redis_url]  # fmt: skip

    async with pipeline(worker_settings(redis_url, namespace)) as workers:
        await publish_and_settle(workers, backfill_until(bundled, "2024Q1"))
        result = await asyncio.to_thread(CliRunner().invoke, app, backfill)
        await publish_and_settle(workers, [])
        alerts = await all_alerts(workers)

    assert result.exit_code == 0, result.output
    outcomes = {
        a.subject: a for a in alerts if a.kind is AlertKind.OUTCOME and a.period == "2024Q2"
    }
    fiscal = {
        (a.subject, a.period, a.state)
        for a in alerts
        if a.kind is AlertKind.OUTCOME and a.period != "2024Q2"
    }
    assert fiscal == {("loan_volume", "FY2020", "beat")}, (
        "the four 2020 quarters sum above the guided range"
    )
    assert {s: a.state for s, a in outcomes.items()} == {
        "net_income": "beat",
        "non_gaap_net_income": "in_line",
    }
    assert all(len(a.details["scorecard"]) >= 1 for a in outcomes.values())  # type: ignore[arg-type]
    resolved = {
        a.subject
        for a in alerts
        if a.kind is AlertKind.BAND_CHECK and a.status is AlertStatus.RESOLVED
    }
    assert resolved == {"net_income", "non_gaap_net_income"}


def loan_volume(company: str, period: str, value: str) -> MetricReported:
    return MetricReported(company=company, metric="loan_volume", period=period, value=Decimal(value),
                          unit=Unit.MONEY, currency="CNY", scale=Scale.MILLIONS)  # fmt: skip


@pytest.mark.timeout(120)
async def test_guidance_recorded_after_its_actuals_still_yields_its_outcome(
    redis_url: str, namespace: str
) -> None:
    quarters = [loan_volume("ACME", f"2020Q{q}", "25000") for q in (1, 2, 3, 4)]
    guided = GuidanceIssued(company="ACME", metric="loan_volume", period="FY2020", basis=Basis.OPERATIONAL,
                            low=Decimal("90000"), high=Decimal("95000"), currency="CNY", scale=Scale.MILLIONS,
                            issued_in_period="2020Q1")  # fmt: skip
    async with pipeline(worker_settings(redis_url, namespace)) as workers:
        await publish_and_settle(workers, quarters)
        await publish_and_settle(workers, [guided])  # e.g. a backfill that loads guidance last
        alerts = await all_alerts(workers)

    outcomes = [(a.subject, a.period, a.state) for a in alerts if a.kind is AlertKind.OUTCOME]
    assert outcomes == [("loan_volume", "FY2020", "beat")], "100,000 is above 90,000-95,000"


@pytest.mark.timeout(120)
async def test_a_silence_suppresses_matching_alerts_until_it_expires(
    redis_url: str, namespace: str
) -> None:
    now = datetime.now(UTC)
    silence = Silence(id="s1", matchers={"company": "ACME", "kind": "band_check"}, starts_at=now,
                      ends_at=now + timedelta(hours=1), created_by="test", comment="earnings week")  # fmt: skip
    async with pipeline(worker_settings(redis_url, namespace)) as workers:
        silences = RedisSilences(workers.redis, workers.streams)
        await silences.add(silence)
        await publish_and_settle(
            workers, synthetic_company("ACME", first="2021Q1", values=ACME, guided=(570, 590))
        )
        while_silenced = [a for a in await all_alerts(workers) if a.kind is AlertKind.BAND_CHECK]
        await silences.expire("s1", at=datetime.now(UTC))
        await publish_and_settle(workers, [loan_volume("ACME", "2023Q4", "812")])
        after = [a for a in await all_alerts(workers) if a.kind is AlertKind.BAND_CHECK]
    assert while_silenced == []
    assert [(a.company, a.subject, a.status) for a in after] == [
        ("ACME", "net_income", AlertStatus.FIRING)
    ]


@pytest.mark.timeout(120)
async def test_a_webhook_that_fails_twice_still_gets_each_alert_once_signed(
    redis_url: str, namespace: str
) -> None:
    receiver = FlakyReceiver(failures=2)
    secret = "hook-secret"
    with serving(receiver) as url:
        settings = worker_settings(redis_url, namespace, webhook_url=url, webhook_secret=secret)
        async with pipeline(settings) as workers:
            await publish_and_settle(
                workers, synthetic_company("ACME", first="2021Q1", values=ACME, guided=(570, 590))
            )
            alerts = await all_alerts(workers)

    delivered = [json.loads(r.body) for r in receiver.accepted]
    fingerprints = sorted(a["fingerprint"] for body in delivered for a in body["alerts"])
    assert fingerprints == sorted(a.fingerprint for a in alerts)
    for request in receiver.accepted:
        headers = {k.lower(): v for k, v in request.headers.items()}
        assert verify_signature(SecretStr(secret), headers[TIMESTAMP_HEADER.lower()], request.body,
                                headers[SIGNATURE_HEADER.lower()])  # fmt: skip
    assert len(receiver.seen) == len(receiver.accepted) + 2


@pytest.mark.timeout(120)
async def test_fiscal_year_guidance_is_checked_on_reported_quarters_plus_forecasts_of_the_rest(
    redis_url: str, namespace: str
) -> None:
    quarters = [f"{year}Q{q}" for year in (2021, 2022, 2023) for q in (1, 2, 3, 4)] + ["2024Q1"]
    volumes = [
        loan_volume("ACME", period, str(50000 + 1500 * n)) for n, period in enumerate(quarters)
    ]
    history = synthetic_company("ACME", first="2021Q1", values=[*ACME, 575], guided=(570, 590))
    fiscal = GuidanceIssued(company="ACME", metric="loan_volume", period="FY2024", basis=Basis.OPERATIONAL,
                            low=Decimal("280000"), high=Decimal("300000"), currency="CNY", scale=Scale.MILLIONS,
                            issued_in_period="2024Q1")  # fmt: skip
    async with pipeline(worker_settings(redis_url, namespace)) as workers:
        await publish_and_settle(workers, [*history, *volumes, fiscal])
        alerts = await all_alerts(workers)

    (check,) = [a for a in alerts if a.kind is AlertKind.BAND_CHECK and a.period == "FY2024"]
    assert check.subject == "loan_volume"
    total = [check.details[k] for k in ("p_below", "p_inside", "p_above")]
    assert sum(total) == pytest.approx(1.0)  # type: ignore[arg-type]
    assert 260000 < check.details["point"] < 320000  # type: ignore[operator]
