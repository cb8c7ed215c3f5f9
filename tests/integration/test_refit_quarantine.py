"""Bounded refits: each attempt is counted before it runs (so one that kills its worker counts
too), a company past the cap is quarantined with an alert and a dead letter while the others
keep their forecasts, a history spanning too many quarters is quarantined at once, and
`guidepost history retract` plus `dlq replay` bring the company back."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from typer.testing import CliRunner

from schemas.alerts import AlertKind, AlertSignal
from schemas.deadletter import FailureReason
from services.app import Workers
from services.cli import app
from services.cli.ops import dead_letters
from services.common.fact import Fact
from services.common.histories.facts import RedisHistoryStore
from tests.support.pipeline import (
    pipeline,
    publish_and_settle,
    synthetic_company,
    until,
    worker_settings,
)

pytestmark = pytest.mark.integration
NET_INCOME = [410, 425, 433, 452, 470, 468, 490, 505, 512, 530, 541, 560]


async def forecast_periods(workers: Workers, company: str) -> set[str]:
    assert workers.forecast is not None
    return {period for _, period in await workers.forecast.store.forecasts(company)}


async def quarantine_signals(workers: Workers) -> list[AlertSignal]:
    entries: Any = await workers.redis.xrange(workers.streams.signals)
    signals = [AlertSignal.model_validate_json(f[b"__data__"]) for _, f in entries]
    return [s for s in signals if s.kind is AlertKind.DATA_QUALITY and s.subject == "refit"]


@pytest.mark.timeout(120)
async def test_a_refit_failing_its_attempts_quarantines_its_company_and_others_go_on(
    redis_url: str, namespace: str
) -> None:
    settings = worker_settings(redis_url, namespace, services="ingest,forecast",
                               refit_max_attempts=2)  # fmt: skip
    async with pipeline(settings) as workers:
        assert workers.forecast is not None
        refit = workers.forecast.refit
        calls: list[str] = []

        async def broken_for_bad(company: str) -> None:
            calls.append(company)
            if company == "BAD":
                raise RuntimeError("injected refit failure")
            await refit(company)

        workers.forecast.refit = broken_for_bad  # type: ignore[method-assign]
        events = synthetic_company("BAD", first="2021Q1", values=NET_INCOME, guided=(570, 590))
        events += synthetic_company("GOOD", first="2021Q1", values=NET_INCOME, guided=(570, 590))
        await publish_and_settle(workers, events)
        letters = await until(lambda: dead_letters(workers.redis, workers.streams))
        quarantined = await workers.forecast.store.quarantines()
        signals = await quarantine_signals(workers)
        good = await forecast_periods(workers, "GOOD")

        workers.forecast.refit = refit  # type: ignore[method-assign]
        replayed = await asyncio.to_thread(
            CliRunner().invoke,
            app,
            ["dlq", "replay", "--all", "--json", "--redis-url", redis_url],
            env={"GUIDEPOST_NAMESPACE": namespace},
        )
        bad_after = await until(lambda: forecast_periods(workers, "BAD"))

    assert calls.count("BAD") == 2
    assert [(q.company, q.attempts) for q in quarantined] == [("BAD", 2)]
    assert "injected refit failure" in quarantined[0].error
    (letter,) = [s.letter for s in letters]
    assert (letter.reason, letter.company) == (FailureReason.REFIT_FAILED, "BAD")
    assert [(s.company, s.state) for s in signals] == [("BAD", "quarantined")]
    assert "2024Q1" in good, "the other company kept flowing"
    assert replayed.exit_code == 0, replayed.output
    assert json.loads(replayed.output)["refit_failed"]["rerun"] == 1
    assert "2024Q1" in bad_after


@pytest.mark.timeout(60)
async def test_attempts_that_never_came_back_count_and_quarantine_without_running_again(
    redis_url: str, namespace: str
) -> None:
    settings = worker_settings(redis_url, namespace, services="forecast", refit_max_attempts=2)
    async with pipeline(settings) as workers:
        assert workers.forecast is not None
        ledger = workers.forecast.store
        for _ in range(2):  # two workers were killed while refitting CRASH
            await ledger.count_attempt("CRASH")
        ran: list[str] = []

        async def refit(company: str) -> None:
            ran.append(company)

        workers.forecast.refit = refit  # type: ignore[method-assign]
        await ledger.mark_all(["CRASH"], at=0.0)
        quarantined = await until(ledger.quarantines)

    assert ran == []
    assert [(q.company, q.attempts) for q in quarantined] == [("CRASH", 2)]
    assert "stopped during the refit" in quarantined[0].error


@pytest.mark.timeout(120)
async def test_a_stray_far_off_fact_quarantines_at_once_and_retracting_it_restores_forecasts(
    redis_url: str, namespace: str
) -> None:
    """A fact recorded before the contract refused such periods: the refit would build an index
    to the year 9999; instead the span is refused, and the operator retracts the fact."""
    settings = worker_settings(redis_url, namespace, services="ingest,forecast")
    async with pipeline(settings) as workers:
        events = synthetic_company("STRAY", first="2021Q1", values=NET_INCOME, guided=(570, 590))
        await publish_and_settle(workers, events)
        assert "2024Q1" in await forecast_periods(workers, "STRAY")
        store = RedisHistoryStore(workers.redis, workers.streams)
        recorded_at = datetime(2025, 1, 1, tzinfo=UTC)  # before the contract refused 9999Q4
        stray = Fact("net_income", "9999Q4", Decimal(500_000_000), Decimal(1), recorded_at, "old")
        await store.record("STRAY", "old", [stray])
        assert workers.forecast is not None
        await workers.forecast.mark_all(events[:1])
        quarantined = await until(workers.forecast.store.quarantines)

        runner = CliRunner()
        env = {"GUIDEPOST_NAMESPACE": namespace}
        base = ["--redis-url", redis_url]
        retract = ["history", "retract", "--company", "STRAY", "--metric", "net_income"]
        retracted = await asyncio.to_thread(
            runner.invoke, app, [*retract, "--period", "9999Q4", "--json", *base], env=env
        )
        again = await asyncio.to_thread(
            runner.invoke, app, [*retract, "--period", "9999Q4", *base], env=env
        )
        replayed = await asyncio.to_thread(
            runner.invoke, app, ["dlq", "replay", "--reason", "refit_failed", *base], env=env
        )
        await until(lambda: _no_quarantine(workers))
        await asyncio.sleep(0.3)
        periods = await forecast_periods(workers, "STRAY")
        history = ["history", "--company", "STRAY", "--period", "9999Q4", "--json", *base]
        now = json.loads((await asyncio.to_thread(runner.invoke, app, history, env=env)).output)
        as_of = [*history, "--as-of", "2025-06-01"]
        before = json.loads((await asyncio.to_thread(runner.invoke, app, as_of, env=env)).output)

    (quarantine,) = quarantined
    assert "spans" in quarantine.error
    assert quarantine.attempts == 1, "refused at once: retrying cannot help"
    assert retracted.exit_code == 0, retracted.output
    assert json.loads(retracted.output)["quarantined"] is True
    assert again.exit_code == 1
    assert "no current value" in again.output
    assert replayed.exit_code == 0, replayed.output
    assert "2024Q1" in periods
    assert [(v["current"], v["retracted"]) for v in now] == [(False, False), (False, True)]
    assert [(v["value"], v["current"]) for v in before] == [(now[0]["value"], True)]


async def _no_quarantine(workers: Workers) -> bool:
    assert workers.forecast is not None
    return not await workers.forecast.store.quarantines()
