"""Delinquency trends raise alerts: a shift in the level is a change-point alert."""

from __future__ import annotations

from decimal import Decimal

import pytest

from schemas.alerts import AlertKind, Severity
from schemas.metrics import MetricReported
from schemas.periods import Quarter
from schemas.registry import Unit
from tests.support.pipeline import all_alerts, pipeline, publish_and_settle, worker_settings

pytestmark = pytest.mark.integration
RATES = [1.0, 1.1, 0.9, 1.0, 1.05, 0.95, 2.5, 2.6, 2.4, 2.55, 2.5, 2.45]


@pytest.mark.timeout(120)
async def test_a_step_up_in_90_day_delinquency_raises_one_change_point_alert(
    redis_url: str, namespace: str
) -> None:
    events = [
        MetricReported(
            company="ACME",
            metric="dpd90_rate_pct",
            period=str(Quarter.parse("2021Q1").shift(n)),
            value=Decimal(str(rate)),
            unit=Unit.PERCENT,
        )
        for n, rate in enumerate(RATES)
    ]
    async with pipeline(worker_settings(redis_url, namespace)) as workers:
        await publish_and_settle(workers, events)
        alerts = await all_alerts(workers)

    (shift,) = [a for a in alerts if a.kind is AlertKind.CHANGE_POINT]
    assert (shift.subject, shift.state, shift.severity) == (
        "dpd90_rate_pct",
        "up",
        Severity.WARNING,
    )
    assert shift.period == "2022Q3"


@pytest.mark.timeout(120)
async def test_a_deteriorating_trend_alert_moves_to_the_latest_quarter_and_resolves_the_earlier_one(
    redis_url: str, namespace: str
) -> None:
    rising = [1.0, 1.2, 1.4, 1.6, 1.8, 2.0, 2.2, 2.4]

    def rate(n: int) -> MetricReported:
        return MetricReported(company="ACME", metric="dpd90_rate_pct", period=str(Quarter.parse("2022Q1").shift(n)),
                              value=Decimal(str(rising[n] if n < len(rising) else 2.6)), unit=Unit.PERCENT)  # fmt: skip

    async with pipeline(worker_settings(redis_url, namespace)) as workers:
        await publish_and_settle(workers, [rate(n) for n in range(len(rising))])
        await publish_and_settle(workers, [rate(len(rising))])
        alerts = await all_alerts(workers)

    trend = [
        (a.period, a.status.value, a.state) for a in alerts if a.kind is AlertKind.DELINQUENCY_TREND
    ]
    assert trend == [
        ("2023Q4", "firing", "deteriorating"),
        ("2023Q4", "resolved", "deteriorating"),
        ("2024Q1", "firing", "deteriorating"),
    ]
