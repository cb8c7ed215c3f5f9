"""The forecast worker on its in-memory store: when it refits, what it keeps and publishes,
and how failing refits end in a quarantine the operator lifts."""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal

import pytest

from schemas.alerts import AlertKind, Condition, Severity
from schemas.base import Event
from schemas.deadletter import FailureReason
from schemas.forecasts import ForecastUpdated
from schemas.guidance import GuidanceIssued
from schemas.money import Scale
from schemas.periods import Quarter
from schemas.registry import Basis
from schemas.streams import Streams
from services.common.fact import known_at_text
from services.common.histories.facts import FactVersion
from services.common.histories.guidance import version_from_event
from services.forecast.fakes import InMemoryForecastStore, InMemoryHistories
from services.forecast.service import ForecastService
from services.ingest.backfill import known_at

pytestmark = pytest.mark.unit
NET_INCOME = [410, 425, 433, 452, 470, 468, 490, 505, 512, 530, 541, 560]  # 2021Q1..2023Q4
QUIET_S = 1.0


@dataclass
class Clock:
    now: float = 1_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def fact(metric: str, period: str, value: Decimal, *, lag_days: int = 45) -> FactVersion:
    known = known_at_text(known_at(period, lag_days))
    return FactVersion(metric, period, value, Decimal(1), known, f"{metric}-{period}", "CNY")


def net_income(values: list[int], first: str = "2021Q1") -> list[FactVersion]:
    quarters = [str(Quarter.parse(first).shift(i)) for i in range(len(values))]
    return [
        fact("net_income", q, Decimal(v) * 1_000_000) for q, v in zip(quarters, values, strict=True)
    ]


def guidance(
    period: str, low: int, high: int, *, issued_in: str, event_id: str = "g1"
) -> GuidanceIssued:
    return GuidanceIssued(
        event_id=event_id, company="ACME", metric="net_income", period=period, basis=Basis.GAAP,
        low=Decimal(low), high=Decimal(high), currency="CNY", scale=Scale.MILLIONS,
        issued_in_period=issued_in, occurred_at=known_at(issued_in, 46),
    )  # fmt: skip


def histories(facts: list[FactVersion], *guided: GuidanceIssued) -> InMemoryHistories:
    statements = [version_from_event(g) for g in guided]
    return InMemoryHistories(facts={"ACME": facts}, statements={"ACME": statements})


@dataclass
class Worker:
    service: ForecastService
    store: InMemoryForecastStore
    histories: InMemoryHistories
    clock: Clock

    async def mark(self, company: str = "ACME") -> None:
        await self.service.mark_all([Event(company=company)])

    async def refit_after_quiet_window(self) -> int:
        self.clock.advance(QUIET_S + 0.1)
        return await self.service.scheduler.refit_due()

    def published(self, output: str) -> list[Event]:
        return self.store.published.get(output, [])

    def forecasts(self) -> list[ForecastUpdated]:
        return [f for f in self.published("forecasts") if isinstance(f, ForecastUpdated)]


def worker(found: InMemoryHistories, **options: int) -> Worker:
    store, clock = InMemoryForecastStore(), Clock()
    service = ForecastService(
        store=store, streams=Streams("unit"), history=found, guidance=found,
        coalesce_ms=int(QUIET_S * 1000), clock=clock, **options,
    )  # fmt: skip
    return Worker(service, store, found, clock)


def acme(**options: int) -> Worker:
    return worker(histories(net_income(NET_INCOME), guidance("2024Q1", 570, 590, issued_in="2023Q4")), **options)  # fmt: skip


async def test_a_marked_company_is_refit_once_its_quiet_window_passed_and_its_mark_cleared() -> None:  # fmt: skip
    subject = acme()
    await subject.mark()
    subject.clock.advance(QUIET_S / 2)
    early = await subject.service.scheduler.refit_due()
    published_early = list(subject.published("forecasts"))
    due = await subject.refit_after_quiet_window()

    assert (early, published_early) == (0, [])
    assert due == 1
    assert ("net_income", "2024Q1") in subject.store.forecast_records["ACME"]
    assert await subject.service.pending() == 0


async def test_a_change_during_a_refit_keeps_the_company_marked_for_another() -> None:
    subject = acme()
    refit = subject.service.refit

    async def refit_while_a_change_arrives(company: str) -> None:
        await refit(company)
        await subject.mark(company)

    subject.service.refit = refit_while_a_change_arrives  # type: ignore[method-assign]
    await subject.mark()
    await subject.refit_after_quiet_window()

    assert await subject.service.pending() == 1


async def test_a_failing_refit_is_retried_later_then_quarantined_past_the_cap() -> None:
    subject = acme(max_failures=3)
    calls: list[float] = []

    async def broken(company: str) -> None:
        calls.append(subject.clock())
        raise RuntimeError("injected refit failure")

    subject.service.refit = broken  # type: ignore[method-assign]
    await subject.mark()
    await subject.refit_after_quiet_window()
    retried_at_once = await subject.service.scheduler.refit_due()
    for backoff_s in (1.0, 2.0):  # 0.5 s doubled per attempt
        subject.clock.advance(backoff_s)
        await subject.refit_after_quiet_window()
    await subject.mark()  # a new fact waits for the operator's release
    await subject.refit_after_quiet_window()

    assert (retried_at_once, len(calls)) == (0, 3)
    assert [(q.company, q.attempts) for q in await subject.store.quarantines()] == [("ACME", 3)]
    (letter,) = subject.store.letters
    assert (letter.reason, letter.company, letter.delivery_count) == (
        FailureReason.REFIT_FAILED, "ACME", 3
    )  # fmt: skip
    assert "injected refit failure" in letter.error
    (signal,) = subject.store.signals()
    assert (signal.kind, signal.state, signal.severity) == (
        AlertKind.DATA_QUALITY, "quarantined", Severity.CRITICAL
    )  # fmt: skip
    assert signal.details["dead_letter_id"] == letter.dead_letter_id
    assert await subject.service.pending() == 0


async def test_attempts_that_never_came_back_quarantine_without_running_again() -> None:
    subject = acme(max_failures=2)
    ran: list[str] = []

    async def refit(company: str) -> None:
        ran.append(company)

    subject.service.refit = refit  # type: ignore[method-assign]
    for _ in range(2):  # two workers were killed while refitting
        await subject.store.count_attempt("ACME")
    await subject.mark()
    await subject.refit_after_quiet_window()

    (quarantine,) = await subject.store.quarantines()
    assert ran == []
    assert (quarantine.attempts, quarantine.error) == (2, "the worker stopped during the refit")


async def test_a_stray_far_off_fact_quarantines_at_once_and_retracting_it_restores_forecasts() -> None:  # fmt: skip
    subject = acme()
    stray = FactVersion(
        "net_income", "9999Q4", Decimal(500_000_000), Decimal(1), "2025-01-01T00:00:00.000000Z",
        "stray", "CNY",
    )  # recorded before the contract refused such periods  # fmt: skip
    subject.histories.facts["ACME"].append(stray)
    await subject.mark()
    await subject.refit_after_quiet_window()
    quarantined = await subject.store.quarantines()

    retraction = replace(stray, known_at="2025-06-01T00:00:00.000000Z", retracted=True)
    subject.histories.facts["ACME"].append(retraction)
    released = await subject.store.release("ACME", at=subject.clock())  # what `dlq replay` does
    await subject.refit_after_quiet_window()

    (quarantine,) = quarantined
    assert (quarantine.attempts, "spans" in quarantine.error) == (1, True)
    assert released is True
    assert await subject.store.quarantines() == []
    assert [f.period for f in subject.published("forecasts")] == ["2024Q1"]


async def test_a_refit_publishes_and_keeps_its_forecasts_and_a_repeat_says_the_same() -> None:
    subject = acme()
    await subject.service.refit("ACME")
    await subject.service.refit("ACME")

    first, again = subject.forecasts()
    kept = subject.store.forecast_records["ACME"][("net_income", "2024Q1")]
    assert first == again == kept
    assert (first.company, first.currency, first.producer) == ("ACME", "CNY", "guidepost-forecast")
    assert first.lo95 <= first.point <= first.hi95


async def test_a_new_statement_moves_the_forecast_and_it_says_from_where() -> None:
    subject = acme()
    await subject.service.refit("ACME")
    revised = guidance("2024Q1", 600, 620, issued_in="2023Q4", event_id="g2")
    subject.histories.statements["ACME"] = [version_from_event(revised)]
    await subject.service.refit("ACME")

    before, after = subject.forecasts()
    assert after.event_id != before.event_id
    assert after.previous_point == before.point


async def test_once_a_quarter_s_actual_is_in_its_forecast_is_settled() -> None:
    subject = acme()
    await subject.service.refit("ACME")
    subject.histories.facts["ACME"] += net_income([575], first="2024Q1")
    await subject.service.refit("ACME")

    assert list(subject.store.forecast_records["ACME"]) == [("net_income", "2024Q2")]


async def test_a_deteriorating_rate_fires_and_a_later_period_s_trend_supersedes_it() -> None:
    rates = [2.0 + 0.15 * i + (0.02 if i % 2 else -0.02) for i in range(12)]
    quarters = [str(Quarter.parse("2021Q1").shift(i)) for i in range(12)]
    facts = net_income(NET_INCOME) + [
        fact("dpd90_rate_pct", q, Decimal(str(round(r, 2))))
        for q, r in zip(quarters, rates, strict=True)
    ]
    subject = worker(histories(facts))
    await subject.service.refit("ACME")
    first = subject.store.signals()
    subject.histories.facts["ACME"].append(fact("dpd90_rate_pct", "2024Q1", Decimal("3.85")))
    await subject.service.refit("ACME")
    second = subject.store.signals()[len(first) :]

    trend = [s for s in first if s.kind is AlertKind.DELINQUENCY_TREND]
    assert [(s.period, s.condition, s.state) for s in trend] == [
        ("2023Q4", Condition.FIRING, "deteriorating")
    ]
    later = [(s.period, s.condition) for s in second if s.kind is AlertKind.DELINQUENCY_TREND]
    assert later == [("2023Q4", Condition.CLEAR), ("2024Q1", Condition.FIRING)]
    assert {s.producer for s in first + second} == {"guidepost-forecast"}
    assert subject.store.trend_records["ACME"]["dpd90_rate_pct"].last_period == "2024Q1"
