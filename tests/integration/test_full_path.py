"""The whole path on a real Redis: history and guidance in, band-check alerts out."""

from __future__ import annotations

import json

import pytest

from schemas.alerts import AlertKind
from services.cli.demo import DEFAULT_DATA_DIR, DemoInputs, backfill_until
from services.common.wire import as_text
from tests.support.pipeline import (
    all_alerts,
    pipeline,
    publish_and_settle,
    synthetic_company,
    worker_settings,
)

pytestmark = pytest.mark.integration
DATA = DEFAULT_DATA_DIR
ACME_NET_INCOME = [410, 425, 433, 452, 470, 468, 490, 505, 512, 530, 541, 560]


@pytest.mark.timeout(180)
async def test_results_and_guidance_of_two_companies_yield_one_band_alert_per_band(
    redis_url: str, namespace: str
) -> None:
    bundled = DemoInputs.load(DATA)
    events = backfill_until(bundled, "2024Q1")
    events += synthetic_company("ACME", first="2021Q1", values=ACME_NET_INCOME, guided=(570, 590))

    async with pipeline(worker_settings(redis_url, namespace)) as workers:
        await publish_and_settle(workers, events)
        first = await all_alerts(workers)
        await publish_and_settle(workers, events)
        second = await all_alerts(workers)
        key = workers.streams.company_key(bundled.company, "bands")
        stored = await workers.redis.hgetall(key)

    bands = [a for a in first if a.kind is AlertKind.BAND_CHECK]
    # a call may change while a company's history is still arriving (each change one notice)
    assert {(a.company, a.subject, a.period) for a in bands} == {
        ("ACME", "net_income", "2024Q1"),
        (bundled.company, "net_income", "2024Q2"),
        (bundled.company, "non_gaap_net_income", "2024Q2"),
    }
    states = {(a.company, a.subject): a.state for a in bands}  # the last notice of each
    assert len(stored) == 2
    for field, check in stored.items():
        metric = as_text(field).split("|")[0]
        assert json.loads(check)["state"] == states[(bundled.company, metric)]
    for alert in bands:
        probabilities = [alert.details[k] for k in ("p_below", "p_inside", "p_above")]
        assert sum(probabilities) == pytest.approx(1.0)  # type: ignore[arg-type]
    new = [(a.kind.value, a.subject, a.state, a.summary) for a in second[len(first) :]]
    assert new == [], "publishing the same events again must send nothing new"
