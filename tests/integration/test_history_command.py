"""A restated 2023Q4 value: a restatement alert names both values, and `guidepost history`
shows both versions, each as it was known at its time."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from typer.testing import CliRunner

from schemas.alerts import AlertKind
from schemas.metrics import MetricReported
from schemas.money import Scale
from schemas.registry import Unit
from services.cli import app
from tests.support.pipeline import all_alerts, pipeline, publish_and_settle, worker_settings

pytestmark = pytest.mark.integration


def net_income(value: str, known: datetime) -> MetricReported:
    return MetricReported(company="ACME", metric="net_income", period="2023Q4", value=Decimal(value),
                          unit=Unit.MONEY, currency="CNY", scale=Scale.MILLIONS, occurred_at=known)  # fmt: skip


@pytest.mark.timeout(120)
async def test_a_restated_quarter_keeps_both_versions_and_raises_one_restatement_alert(
    redis_url: str, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = datetime(2024, 3, 1, tzinfo=UTC)
    second = datetime(2024, 5, 20, tzinfo=UTC)
    monkeypatch.setenv("GUIDEPOST_NAMESPACE", namespace)
    async with pipeline(worker_settings(redis_url, namespace)) as workers:
        await publish_and_settle(
            workers, [net_income("1107.7", first), net_income("1099.2", second)]
        )
        alerts = await all_alerts(workers)

    runner = CliRunner()
    history = [
        "history",
        "--company",
        "ACME",
        "--period",
        "2023Q4",
        "--json",
        "--redis-url",
        redis_url,
    ]
    everything = json.loads((await asyncio.to_thread(runner.invoke, app, history)).output)
    earlier = json.loads(
        (await asyncio.to_thread(runner.invoke, app, [*history, "--as-of", "2024-04-01"])).output
    )

    assert [(v["value"], v["current"]) for v in everything] == [
        ("1107700000.0", False),
        ("1099200000.0", True),
    ]
    assert [(v["value"], v["current"]) for v in earlier] == [("1107700000.0", True)]
    (restated,) = [a for a in alerts if a.kind is AlertKind.RESTATEMENT]
    assert (
        "restated from CNY 1,107.7 million to CNY 1,099.2 million (CNY -8.5 million)"
        in restated.summary
    )


@pytest.mark.timeout(120)
async def test_a_restatement_learned_before_the_original_still_raises_one_restatement_alert(
    redis_url: str, namespace: str
) -> None:
    async with pipeline(worker_settings(redis_url, namespace)) as workers:
        await publish_and_settle(workers, [net_income("1099.2", datetime(2024, 5, 20, tzinfo=UTC))])
        await publish_and_settle(workers, [net_income("1107.7", datetime(2024, 3, 1, tzinfo=UTC))])
        alerts = await all_alerts(workers)

    (restated,) = [a for a in alerts if a.kind is AlertKind.RESTATEMENT]
    assert (
        "restated from CNY 1,107.7 million to CNY 1,099.2 million (CNY -8.5 million)"
        in restated.summary
    )
