"""`guidepost demo`'s report on the bundled history and announcement."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from services.cli.demo import DEFAULT_DATA_DIR, DemoInputs, DemoReport, run_demo
from services.common.settings import RedisClient
from tests.support.pipeline import worker_settings

pytestmark = pytest.mark.integration


@pytest.mark.timeout(300)
async def test_demo_reports_forecasts_with_intervals_and_band_probabilities_for_both_bands(
    redis_url: str, namespace: str
) -> None:
    inputs = DemoInputs.load(DEFAULT_DATA_DIR)
    report = await run_demo(worker_settings(redis_url, namespace), inputs, timeout_s=240)

    forecasts = {(f["metric"], f["period"]): f for f in report.forecasts}
    assert set(forecasts) == {("net_income", "2024Q2"), ("non_gaap_net_income", "2024Q2")}
    for item in forecasts.values():
        assert item["lo95"] <= item["lo80"] <= item["forecast"] <= item["hi80"] <= item["hi95"]
    bands = {(b["metric"], b["low"], b["high"]) for b in report.bands}
    assert bands == {("net_income", 1170.0, 1230.0), ("non_gaap_net_income", 1220.0, 1280.0)}
    for band in report.bands:
        assert band["p_below"] + band["p_inside"] + band["p_above"] == pytest.approx(1.0)
    assert {a["kind"] for a in report.alerts} >= {"band_check"}
    assert report.dead_letters == 0


@pytest.mark.timeout(300)
async def test_the_demo_reports_the_same_on_the_stock_and_the_multiplexed_redis_client(
    redis_url: str, namespace: str, redis_client: aioredis.Redis
) -> None:
    inputs = DemoInputs.load(DEFAULT_DATA_DIR)
    reports = {}
    try:
        for client in RedisClient:
            settings = worker_settings(redis_url, f"{namespace}-{client}", redis_client=client)
            reports[client] = await run_demo(settings, inputs, timeout_s=240)
    finally:
        for client in RedisClient:
            async for key in redis_client.scan_iter(match=f"{namespace}-{client}:*"):
                await redis_client.delete(key)

    stock, multiplexed = (
        comparable(reports[c]) for c in (RedisClient.STOCK, RedisClient.MULTIPLEXED)
    )
    assert stock == multiplexed
    assert len(stock["forecasts"]) == 2
    assert len(stock["bands"]) == 2


WHEN = frozenset({"occurred_at", "checked_at", "event_id"})
# the call on a band keeps its previous side until another leads by a margin (hysteresis):
# which interim forecast the guidance worker checked first depends on timing, on any client
CALL = frozenset({"state", "confidence", "confidence_word"})
# an alert's identity; its details name the guidance statement in effect when the actual
# was checked, and the demo publishes a year's revisions and its actual at once (timing too)
ALERT_IDENTITY = ("kind", "subject", "period", "status", "fingerprint", "group_key")


def comparable(report: DemoReport) -> dict[str, Any]:
    """The report without when things happened, the timing-dependent call on a band, and
    the details of alerts; bands, trends and alerts in a fixed order."""
    alerts = [tuple(str(alert[key]) for key in ALERT_IDENTITY) for alert in report.alerts]
    return {
        "forecasts": report.forecasts,
        "bands": sorted((_without(b, WHEN | CALL) for b in report.bands), key=repr),
        "trends": sorted((_without(t, WHEN) for t in report.trends), key=repr),
        "alerts": sorted(alerts),
        "dead_letters": report.dead_letters,
    }


def _without(item: Any, keys: frozenset[str]) -> Any:
    if isinstance(item, dict):
        return {k: _without(v, keys) for k, v in item.items() if k not in keys}
    if isinstance(item, list):
        return [_without(v, keys) for v in item]
    return item


@pytest.mark.unit
def test_nothing_in_services_names_the_bundled_company() -> None:
    services = Path(__file__).resolve().parents[2] / "services"
    named = [
        str(path.relative_to(services))
        for path in services.rglob("*.py")
        if any(word in path.read_text(encoding="utf-8") for word in ("QFIN", "Qifu", "3660"))
    ]
    assert named == []
