"""The same 1,000 events published twice, and once more under new ids, leave exactly the state
of publishing them once; an event id reused for other content is refused as a conflict."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from schemas.alerts import AlertKind, AlertSignal
from schemas.deadletter import DeadLetter, FailureReason
from schemas.guidance import GuidanceIssued
from schemas.metrics import MetricReported
from schemas.money import Scale
from schemas.registry import Basis, Unit
from services.app import Workers
from services.common.histories.facts import RedisHistoryStore
from services.common.histories.guidance import RedisGuidanceStore
from services.ingest.backfill import known_at
from tests.support.pipeline import pipeline, publish_and_settle, worker_settings

pytestmark = pytest.mark.integration
COMPANIES = [f"CO{n:02d}" for n in range(10)]


def thousand_events() -> list[MetricReported]:
    months = [f"{year}-{month:02d}" for year in range(2019, 2024) for month in range(1, 13)]
    events = []
    for n in range(1000):
        company, month = COMPANIES[n % 10], months[n // 10 if n < 480 else n // 10 - 48]
        metric, unit = (
            ("loan_volume", Unit.MONEY) if n < 480 else ("day1_delinquency_pct", Unit.PERCENT)
        )
        money = {"currency": "CNY", "scale": Scale.MILLIONS} if unit is Unit.MONEY else {}
        value = Decimal(1000 + n) if unit is Unit.MONEY else Decimal(n % 90) / 10 + 1
        events.append(
            MetricReported(
                company=company, metric=metric, period=month, value=value, unit=unit, **money
            )
        )
    return events


async def state(workers: Workers) -> dict[str, Any]:
    """Every company's fact versions and every history update, minus timestamps of processing."""
    snapshot: dict[str, Any] = {}
    for company in COMPANIES:
        key = workers.streams.key("{" + company + "}", "versions")
        snapshot[company] = await workers.redis.hgetall(key)
    snapshot["history"] = sorted(
        fields[b"__data__"] for _, fields in await workers.redis.xrange(workers.streams.history)
    )
    return snapshot


@pytest.mark.timeout(240)
async def test_duplicates_and_re_ids_change_nothing(redis_url: str, namespace: str) -> None:
    events = thousand_events()
    assert len({(e.company, e.metric, e.period) for e in events}) == 1000
    renamed = [e.model_copy(update={"event_id": e.event_id + "-again"}) for e in events]
    settings = worker_settings(redis_url, namespace, services="ingest")

    async with pipeline(settings) as workers:
        await publish_and_settle(workers, events)
        once = await state(workers)
        await publish_and_settle(workers, events)
        await publish_and_settle(workers, renamed)
        after = await state(workers)

    assert sum(len(once[c]) for c in COMPANIES) == 1000
    assert len(once["history"]) == 1000
    assert after == once


def loan_volume(event_id: str, value: str, period: str = "2024-03") -> MetricReported:
    return MetricReported(
        event_id=event_id,
        company="CONFLICT",
        metric="loan_volume",
        period=period,
        value=Decimal(value),
        unit=Unit.MONEY,
        currency="CNY",
        scale=Scale.MILLIONS,
        occurred_at=known_at("2024Q2", 5),
    )


async def letters_and_signals(workers: Workers) -> tuple[list[DeadLetter], list[AlertSignal]]:
    letters: Any = await workers.redis.xrange(workers.streams.dead_letters)
    signals: Any = await workers.redis.xrange(workers.streams.signals)
    return (
        [DeadLetter.model_validate_json(f[b"__data__"]) for _, f in letters],
        [AlertSignal.model_validate_json(f[b"__data__"]) for _, f in signals],
    )


@pytest.mark.timeout(60)
async def test_a_reused_event_id_with_other_content_is_dead_lettered_as_a_conflict(
    redis_url: str, namespace: str
) -> None:
    first, same = loan_volume("lv-1", "1200"), loan_volume("lv-1", "1200")
    other_value, other_period = loan_volume("lv-1", "9999"), loan_volume("lv-1", "1200", "2024-04")
    settings = worker_settings(redis_url, namespace, services="ingest")

    async with pipeline(settings) as workers:
        await publish_and_settle(workers, [first, same])
        await publish_and_settle(workers, [other_value, other_period])
        letters, signals = await letters_and_signals(workers)
        store = RedisHistoryStore(workers.redis, workers.streams)
        versions = await store.versions("CONFLICT")

    assert [(v.period, v.value) for v in versions] == [("2024-03", Decimal(1_200_000_000))]
    assert [letter.reason for letter in letters] == [FailureReason.CONFLICT] * 2
    assert {letter.field for letter in letters} == {"event_id"}
    recorded = {letter.details["recorded_digest"] for letter in letters}
    received = {letter.details["received_digest"] for letter in letters}
    assert len(recorded) == 1, "both refused against the first content"
    assert len(received) == 2
    assert not recorded & received
    conflict_signals = [s for s in signals if s.kind is AlertKind.DATA_QUALITY]
    assert len(conflict_signals) == 2
    assert {s.details["received_digest"] for s in conflict_signals} == received


@pytest.mark.timeout(60)
async def test_a_reused_guidance_event_id_with_another_band_is_a_conflict(
    redis_url: str, namespace: str
) -> None:
    statement = GuidanceIssued(
        event_id="g-1", company="CONFLICT", metric="net_income", period="2024Q2",
        basis=Basis.GAAP, low=Decimal(1170), high=Decimal(1230), currency="CNY",
        scale=Scale.MILLIONS, occurred_at=known_at("2024Q1", 46),
    )  # fmt: skip
    moved = statement.model_copy(update={"low": Decimal(1000)})
    settings = worker_settings(redis_url, namespace, services="ingest")

    async with pipeline(settings) as workers:
        await publish_and_settle(workers, [statement, statement])
        await publish_and_settle(workers, [moved])
        letters, signals = await letters_and_signals(workers)
        versions = await RedisGuidanceStore(workers.redis, workers.streams).all("CONFLICT")

    assert [Decimal(v.low or "nan") for v in versions] == [Decimal(1_170_000_000)]
    assert [letter.reason for letter in letters] == [FailureReason.CONFLICT]
    assert [s.subject for s in signals if s.kind is AlertKind.DATA_QUALITY] == ["event_id:g-1"]
