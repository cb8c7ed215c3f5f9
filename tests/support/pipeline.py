"""Running the real workers against a real Redis inside a test."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from decimal import Decimal
from typing import Any, TypeVar

from schemas.alerts import Alert
from schemas.base import Event
from schemas.guidance import GuidanceIssued
from schemas.metrics import MetricReported
from schemas.money import Scale
from schemas.periods import Quarter
from schemas.registry import Basis, Unit
from services.app import Workers, build_workers, running
from services.cli.demo import publish_inputs, wait_until_idle
from services.common.settings import WorkerSettings
from services.common.wire import B_DATA_FIELD
from services.ingest.backfill import known_at


def client_under_test() -> dict[str, str]:
    """The transport the suite runs on, as settings: GUIDEPOST_REDIS_CLIENT when set (`make
    test` runs the integration and reliability suites once more with `stock`). Worker
    processes the tests start inherit the variable."""
    client = os.environ.get("GUIDEPOST_REDIS_CLIENT")
    return {"redis_client": client} if client else {}


def worker_settings(redis_url: str, namespace: str, **overrides: Any) -> WorkerSettings:
    values = {
        **client_under_test(),
        "redis_url": redis_url,
        "namespace": namespace,
        "claim_idle_ms": 500,
        "coalesce_ms": 20,
        "block_ms": 50,
        **overrides,
    }
    return WorkerSettings.model_validate(values)


@contextlib.asynccontextmanager
async def pipeline(settings: WorkerSettings) -> AsyncIterator[Workers]:
    workers = build_workers(settings)
    async with running(workers):
        yield workers
    await workers.redis.aclose()


async def publish_and_settle(
    workers: Workers, events: Sequence[Event], timeout_s: float = 60
) -> None:
    await publish_inputs(workers, list(events))
    await wait_until_idle(workers, timeout_s=timeout_s, settle_s=0.2)


async def all_alerts(workers: Workers) -> list[Alert]:
    entries: Any = await workers.redis.xrange(workers.streams.alerts)
    return [Alert.model_validate_json(fields[B_DATA_FIELD]) for _, fields in entries]


def synthetic_company(
    company: str, *, first: str, values: Sequence[float], guided: tuple[float, float]
) -> list[Event]:
    """Net income (CNY millions) per quarter from `first`, and guidance for the next quarter."""
    quarters = [Quarter.parse(first).shift(i) for i in range(len(values))]
    events: list[Event] = [
        MetricReported(
            company=company,
            metric="net_income",
            period=str(q),
            value=Decimal(str(v)),
            unit=Unit.MONEY,
            currency="CNY",
            scale=Scale.MILLIONS,
            occurred_at=known_at(str(q), 45),
        )
        for q, v in zip(quarters, values, strict=True)
    ]
    target = quarters[-1].next()
    events.append(
        GuidanceIssued(
            company=company,
            metric="net_income",
            period=str(target),
            basis=Basis.GAAP,
            low=Decimal(str(guided[0])),
            high=Decimal(str(guided[1])),
            currency="CNY",
            scale=Scale.MILLIONS,
            issued_in_period=str(quarters[-1]),
            occurred_at=known_at(str(quarters[-1]), 46),
        )
    )
    return events


T = TypeVar("T")


async def until(probe: Callable[[], Awaitable[T]], timeout_s: float = 30) -> T:
    """The probe's first truthy answer, polled every 50 ms: a condition waited on, not a sleep."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while asyncio.get_running_loop().time() < deadline:
        if found := await probe():
            return found
        await asyncio.sleep(0.05)
    raise AssertionError(f"not reached within {timeout_s} s")
