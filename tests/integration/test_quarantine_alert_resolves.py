"""A company's quarantine alert ends when the operator lifts the quarantine: `dlq replay` of
the refit letter clears the alert the forecast worker raised, so subscribers get a resolved
notice instead of an alert that fires forever."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from typer.testing import CliRunner

from schemas.alerts import Alert, AlertKind, AlertStatus
from services.app import Workers
from services.cli import app
from services.common.wire import B_DATA_FIELD
from tests.support.pipeline import (
    pipeline,
    publish_and_settle,
    synthetic_company,
    until,
    worker_settings,
)

pytestmark = pytest.mark.integration
NET_INCOME = [410, 425, 433, 452, 470, 468, 490, 505, 512, 530, 541, 560]


async def quarantine_notices(workers: Workers) -> list[Alert]:
    entries: Any = await workers.redis.xrange(workers.streams.alerts)
    notices = [Alert.model_validate_json(fields[B_DATA_FIELD]) for _, fields in entries]
    return [n for n in notices if n.kind is AlertKind.DATA_QUALITY and n.subject == "refit"]


@pytest.mark.timeout(120)
async def test_replaying_the_refit_letter_resolves_the_companys_quarantine_alert(
    redis_url: str, namespace: str
) -> None:
    settings = worker_settings(redis_url, namespace, services="ingest,forecast,alerts",
                               refit_max_attempts=1)  # fmt: skip
    async with pipeline(settings) as workers:
        assert workers.forecast is not None
        refit = workers.forecast.refit

        async def broken_for_bad(company: str) -> None:
            if company == "BAD":
                raise RuntimeError("injected refit failure")
            await refit(company)

        workers.forecast.refit = broken_for_bad  # type: ignore[method-assign]
        events = synthetic_company("BAD", first="2021Q1", values=NET_INCOME, guided=(570, 590))
        await publish_and_settle(workers, events)
        raised = await until(lambda: quarantine_notices(workers))

        workers.forecast.refit = refit  # type: ignore[method-assign]
        replayed = await asyncio.to_thread(
            CliRunner().invoke,
            app,
            ["dlq", "replay", "--reason", "refit_failed", "--json", "--redis-url", redis_url],
            env={"GUIDEPOST_NAMESPACE": namespace},
        )

        async def resolved() -> list[Alert]:
            notices = await quarantine_notices(workers)
            return notices if notices[-1].status is AlertStatus.RESOLVED else []

        after = await until(resolved)
        records = await workers.alerts.records("BAD") if workers.alerts else {}

    assert replayed.exit_code == 0, replayed.output
    assert json.loads(replayed.output)["refit_failed"]["rerun"] == 1
    assert [(n.status, n.state) for n in raised] == [(AlertStatus.FIRING, "quarantined")]
    assert [n.status for n in after] == [AlertStatus.FIRING, AlertStatus.RESOLVED]
    assert after[1].fingerprint == raised[0].fingerprint, "the same alert, ended"
    assert records[raised[0].fingerprint].status == "resolved"
