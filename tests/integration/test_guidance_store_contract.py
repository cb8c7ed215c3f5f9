"""The guidance worker's store keeps one contract in memory and in Redis: the same scene,
arranged through what the other workers write, reads back the same in both."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Protocol

import pytest
import redis.asyncio as aioredis

from schemas.alerts import AlertKind, AlertSignal
from schemas.forecasts import ForecastUpdated, QuantilePoint
from schemas.money import Scale
from schemas.registry import Basis
from schemas.streams import Streams
from services.common.fact import Fact
from services.common.histories.facts import RedisHistoryStore
from services.common.histories.guidance import GuidanceVersion, RedisGuidanceStore
from services.common.records import decode_entries
from services.guidance.core import BandCheck
from services.guidance.store import (
    BandReader,
    FakeGuidanceWorkerStore,
    GuidanceWorkerStore,
    RedisGuidanceWorkerStore,
)

pytestmark = pytest.mark.integration
ACME, OTHER = "ACME", "OTHER"
MILLION = Decimal(1_000_000)


KNOWN_AT = datetime(2024, 8, 20, tzinfo=UTC)  # when every actual of a scene became known


class Others(Protocol):
    """What the other workers write that the guidance worker reads, and what it published."""

    async def record_guidance(self, company: str, version: GuidanceVersion) -> None: ...
    async def record_actual(
        self, company: str, metric: str, period: str, value: Decimal
    ) -> None: ...
    async def publish_forecast(self, forecast: ForecastUpdated) -> None: ...
    async def signals(self) -> list[AlertSignal]: ...


@dataclass
class InMemory:
    store: FakeGuidanceWorkerStore

    async def record_guidance(self, company: str, version: GuidanceVersion) -> None:
        self.store.record_guidance(company, version)

    async def record_actual(self, company: str, metric: str, period: str, value: Decimal) -> None:
        self.store.record_actual(company, metric, period, value, KNOWN_AT)

    async def publish_forecast(self, forecast: ForecastUpdated) -> None:
        self.store.publish_forecast(forecast)

    async def signals(self) -> list[AlertSignal]:
        return list(self.store.signals)


@dataclass
class InRedis:
    redis: aioredis.Redis
    streams: Streams

    async def record_guidance(self, company: str, version: GuidanceVersion) -> None:
        assert await RedisGuidanceStore(self.redis, self.streams).append(
            company, version, version.revision
        )

    async def record_actual(self, company: str, metric: str, period: str, value: Decimal) -> None:
        fact = Fact(metric, period, value, MILLION, KNOWN_AT, "r-" + period)
        await RedisHistoryStore(self.redis, self.streams).record(company, "r-" + period, [fact])

    async def publish_forecast(self, forecast: ForecastUpdated) -> None:
        # where the forecast worker keeps what it published
        key = self.streams.company_key(forecast.company, "forecasts")
        field = f"{forecast.metric}|{forecast.period}"
        await self.redis.hset(key, field, forecast.model_dump_json())  # type: ignore[misc]

    async def signals(self) -> list[AlertSignal]:
        found: list[AlertSignal] = []
        for stream in self.streams.all_of(self.streams.signals):
            entries: Any = await self.redis.xrange(stream)
            found += decode_entries(entries, AlertSignal, stream=stream).values
        return found


Scene = tuple[GuidanceWorkerStore, Others]


@pytest.fixture(params=["fake", "redis"])
async def scene(
    request: pytest.FixtureRequest, redis_client: aioredis.Redis, streams: Streams
) -> AsyncIterator[Scene]:
    if request.param == "fake":
        fake = FakeGuidanceWorkerStore()
        yield fake, InMemory(fake)
        return
    store = RedisGuidanceWorkerStore(redis_client, streams, max_length=1000)
    yield store, InRedis(redis_client, streams)


def statement(event_id: str, period: str = "2024Q2", low: int = 970) -> GuidanceVersion:
    return GuidanceVersion(
        event_id=event_id, metric="net_income", period=period, basis="gaap", status="issued",
        low=str(low * MILLION), high=str(1030 * MILLION), currency="CNY", yoy_low_pct=None,
        yoy_high_pct=None, issued_in_period="2024Q1", known_at="2024-05-20T00:00:00.000000Z",
        source=None,
    )  # fmt: skip


def forecast(period: str, mean: float) -> ForecastUpdated:
    quantiles = tuple(
        QuantilePoint(probability=p, value=Decimal(str(mean + offset)))
        for p, offset in ((0.1, -30), (0.5, 0), (0.9, 30))
    )
    return ForecastUpdated(
        event_id=f"f-{period}-{mean}", company=ACME, metric="net_income", period=period,
        basis=Basis.GAAP, currency="CNY", scale=Scale.MILLIONS, point=Decimal(str(mean)),
        lo80=Decimal(str(mean - 30)), hi80=Decimal(str(mean + 30)), lo95=Decimal(str(mean - 50)),
        hi95=Decimal(str(mean + 50)), quantiles=quantiles, n_obs=12, method="test",
        as_of=datetime(2024, 5, 1, tzinfo=UTC), inputs_digest="t",
    )  # fmt: skip


def check(forecast_event_id: str, point: float, *, period: str = "2024Q2") -> BandCheck:
    return BandCheck(
        metric="net_income", period=period, low=970.0, high=1030.0, point=point, lo80=point - 30,
        hi80=point + 30, lo95=point - 50, hi95=point + 50, p_below=0.25, p_inside=0.5,
        p_above=0.25, distance_to_band=0.0, state="likely_inside", scale="millions",
        currency="CNY", forecast_event_id=forecast_event_id, guidance_event_id="g1",
        checked_at="2024-05-21T00:00:00+00:00", confidence=0.5, confidence_word="moderate",
    )  # fmt: skip


def band_signal(event_id: str) -> AlertSignal:
    return AlertSignal(
        event_id=event_id, company=ACME, producer="guidepost-guidance", kind=AlertKind.BAND_CHECK,
        period="2024Q2", subject="net_income", state="likely_inside", summary="inside",
    )  # fmt: skip


async def test_guidance_reads_back_in_order_per_figure_and_per_company(scene: Scene) -> None:
    store, others = scene
    first, raised, year = statement("g1"), statement("g2", low=1000), statement("g3", "FY2024")
    for version in (first, raised, year):
        await others.record_guidance(ACME, version)

    assert await store.guidance_history(ACME, "net_income", "2024Q2") == [first, raised]
    assert await store.guidance_history(ACME, "net_income", "2024Q3") == []
    everything = await store.all_guidance(ACME)
    assert sorted(v.event_id for v in everything) == ["g1", "g2", "g3"]
    assert await store.all_guidance(OTHER) == []
    assert await store.guided({ACME, OTHER}) == {
        ACME: {("net_income", "2024Q2"), ("net_income", "FY2024")},
        OTHER: set(),
    }


async def test_actuals_and_published_forecasts_read_back_as_recorded(scene: Scene) -> None:
    store, others = scene
    await others.record_actual(ACME, "net_income", "2024Q1", Decimal(1012) * MILLION)
    published = forecast("2024Q2", 1000.0)
    await others.publish_forecast(published)

    assert await store.actual(ACME, "net_income", "2024Q1") == Decimal(1012) * MILLION
    assert await store.actual(ACME, "net_income", "2024Q2") is None
    assert await store.actual_known_at(ACME, "net_income", "2024Q1") == KNOWN_AT
    assert await store.actual_known_at(ACME, "net_income", "2024Q2") is None
    assert await store.published_forecast(ACME, "net_income", "2024Q2") == published
    assert await store.published_forecast(ACME, "net_income", "2024Q3") is None
    assert await store.published_forecast(OTHER, "net_income", "2024Q2") is None


async def test_a_saved_check_is_the_latest_and_its_call_is_scored_once(scene: Scene) -> None:
    store, _ = scene
    assert await store.latest_check(ACME, "net_income", "2024Q2") is None
    assert await store.calls(ACME, "net_income", "2024Q2") == []
    first, second = check("f1", 1000.0), check("f2", 990.0)
    again = replace(first, checked_at="2024-05-22T00:00:00+00:00", state="likely_below")

    for made in (first, second, again):
        await store.save_check(ACME, made)

    assert await store.latest_check(ACME, "net_income", "2024Q2") == again
    assert await store.calls(ACME, "net_income", "2024Q2") == [first, second]
    assert await store.latest_check(ACME, "net_income", "2024Q3") is None
    assert await store.latest_check(OTHER, "net_income", "2024Q2") is None


async def test_published_signals_are_kept_in_order(scene: Scene) -> None:
    store, others = scene
    signals = [band_signal("s1"), band_signal("s2")]

    await store.publish_signals(signals)
    await store.publish_signals([])

    assert [s.model_dump() for s in await others.signals()] == [s.model_dump() for s in signals]


async def test_the_read_side_shows_the_latest_checks_the_worker_saved(
    redis_client: aioredis.Redis, streams: Streams
) -> None:
    store = RedisGuidanceWorkerStore(redis_client, streams, max_length=1000)
    latest = [check("f1", 1000.0), check("f2", 990.0, period="FY2024")]
    for made in latest:
        await store.save_check(ACME, made)

    shown = await BandReader(redis_client, streams).checks(ACME)

    assert sorted(shown, key=lambda c: c.period) == latest
    assert await BandReader(redis_client, streams).checks(OTHER) == []
