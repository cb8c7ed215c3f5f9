"""Ingest handlers on the in-memory broker: validation, dedupe, restatements, integrity."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from schemas import AlertSignal, DeadLetter, HistoryUpdated, MetricReported, ResultsPublished
from schemas.alerts import AlertKind, Condition
from schemas.money import Scale
from schemas.registry import Unit
from services.common.histories.facts import RedisHistoryStore
from services.common.publishing import read_jsonl
from tests.support.component import entries, in_memory_workers, send

pytestmark = pytest.mark.component
FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "qfin_2024q1_events.jsonl"


def volume(value: str, *, event_id: str | None = None, period: str = "2024Q1") -> MetricReported:
    extra = {"event_id": event_id} if event_id else {}
    return MetricReported(
        company="ACME", metric="loan_volume", period=period, value=Decimal(value),
        unit=Unit.MONEY, currency="CNY", scale=Scale.MILLIONS, **extra,
    )  # fmt: skip


async def test_a_metric_is_recorded_once_and_told_once_however_often_it_arrives() -> None:
    event = volume("99237")
    async with in_memory_workers("ingest") as (workers, broker):
        await send(workers, broker, event, event, event)
        same_fact_new_id = volume("99237")
        await send(workers, broker, same_fact_new_id)
        versions = await RedisHistoryStore(workers.redis, workers.streams).versions("ACME")
        updates = [
            HistoryUpdated.model_validate_json(b)
            for b in await entries(workers, workers.streams.history)
        ]
    assert [(v.metric, v.period, v.value) for v in versions] == [
        ("loan_volume", "2024Q1", Decimal("99237000000"))
    ]
    assert len({u.event_id for u in updates}) == 1, (
        "redeliveries republish the same history update id"
    )


async def test_a_changed_prior_value_is_a_restatement_with_both_versions_kept() -> None:
    async with in_memory_workers("ingest") as (workers, broker):
        await send(workers, broker, volume("119000", period="2023Q4"))
        await send(workers, broker, volume("118500", period="2023Q4"))
        versions = await RedisHistoryStore(workers.redis, workers.streams).versions("ACME")
        signals = [
            AlertSignal.model_validate_json(b)
            for b in await entries(workers, workers.streams.signals)
        ]
    assert [v.value for v in versions] == [Decimal("119000000000"), Decimal("118500000000")]
    (restated,) = signals
    assert restated.kind is AlertKind.RESTATEMENT
    assert (restated.details["old"], restated.details["new"]) == ("119000000000", "118500000000")


async def test_a_rounded_prose_figure_and_the_exact_table_figure_are_one_fact() -> None:
    rounded = volume("99237")  # prose, known first
    exact = volume("99237.4")  # the table, known a moment later
    async with in_memory_workers("ingest") as (workers, broker):
        await send(workers, broker, rounded, exact)
        signals = await entries(workers, workers.streams.signals)
        versions = await RedisHistoryStore(workers.redis, workers.streams).versions("ACME")
    assert signals == [], "more precision is not a restatement"
    assert [v.value for v in versions][-1] == Decimal("99237400000.0")


async def test_an_invalid_event_is_dead_lettered_naming_the_field_and_the_next_one_is_served() -> (
    None
):
    bad = {
        "company": "ACME",
        "metric": "dpd90_rate_pct",
        "period": "2024Q1",
        "value": "3.35",
        "unit": "money",
    }
    async with in_memory_workers("ingest") as (workers, broker):
        await broker.publish(bad, stream=workers.streams.metrics)
        await send(workers, broker, volume("1"))
        letters = [
            DeadLetter.model_validate_json(b)
            for b in await entries(workers, workers.streams.dead_letters)
        ]
        versions = await RedisHistoryStore(workers.redis, workers.streams).versions("ACME")
    assert [letter.error for letter in letters] == [
        "unit: dpd90_rate_pct is measured in percent, not money"
    ]
    assert len(versions) == 1


def seed_results() -> ResultsPublished:
    events, problems = read_jsonl(FIXTURE)
    assert problems == []
    return next(e for e in events if isinstance(e, ResultsPublished))


async def test_the_seed_statement_passes_every_integrity_check() -> None:
    async with in_memory_workers("ingest") as (workers, broker):
        await send(workers, broker, seed_results())
        signals = [
            AlertSignal.model_validate_json(b)
            for b in await entries(workers, workers.streams.signals)
        ]
    assert {s.kind for s in signals} == {AlertKind.DATA_QUALITY}
    assert {s.condition for s in signals} == {Condition.CLEAR}


async def test_net_income_altered_by_one_million_raises_one_data_quality_signal_naming_the_identity() -> (
    None
):
    seed = seed_results()
    altered = seed.model_copy(
        update={
            "event_id": "altered",
            "statement": seed.statement.model_copy(
                update={"net_income": seed.statement.net_income + 1000}
            ),
        }
    )
    async with in_memory_workers("ingest") as (workers, broker):
        await send(workers, broker, altered)
        signals = [
            AlertSignal.model_validate_json(b)
            for b in await entries(workers, workers.streams.signals)
        ]
    firing = [s for s in signals if s.condition is Condition.FIRING]
    assert len(firing) == 1
    assert firing[0].period == "2024Q1"
    assert "income before tax - income tax = net income does not hold" in firing[0].summary
    rules = [b["rule"] for b in firing[0].details["broken"]]  # type: ignore[union-attr,index]
    assert "income before tax - income tax = net income" in rules


async def test_a_figure_a_thousand_fold_off_its_recent_quarters_is_flagged_as_a_unit_slip() -> None:
    async with in_memory_workers("ingest") as (workers, broker):
        await send(workers, broker, volume("99237", period="2024Q1"))
        await send(workers, broker, volume("101.5", period="2024Q2"))  # billions sent as millions
        await send(workers, broker, volume("104000", period="2024Q3"))  # an honest move
        signals = [
            AlertSignal.model_validate_json(b)
            for b in await entries(workers, workers.streams.signals)
        ]
    (slip,) = signals
    assert (slip.kind, slip.period, slip.subject) == (
        AlertKind.DATA_QUALITY,
        "2024Q2",
        "loan_volume",
    )
    assert slip.details["factor"] == "1000"
    assert (
        "about 1,000 times smaller than the recent quarters' CNY 99,237.0 million" in slip.summary
    )
