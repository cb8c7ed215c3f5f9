"""Guidepost's band alerts in a real Alertmanager (Debian's prometheus-alertmanager), from events
through the workers: they arrive grouped by company and period, stay firing for several
`resolve_timeout`s while Guidepost holds them firing, resolve when Guidepost resolves them, and
an Alertmanager silence mutes them. Skipped only where the package is not installed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypeVar

import pytest

from schemas.base import Event
from schemas.guidance import GuidanceIssued
from schemas.metrics import MetricReported
from schemas.money import Scale
from schemas.periods import Quarter
from schemas.registry import Basis, Unit
from services.ingest.backfill import known_at
from tests.support.alertmanager import (
    NotificationReceiver,
    RunningAlertmanager,
    alertmanager_binary,
    running_alertmanager,
)
from tests.support.pipeline import pipeline, publish_and_settle, worker_settings

pytestmark = pytest.mark.integration

RESOLVE_TIMEOUT_S = 2.0
REPOST_S = 0.4  # a post is valid for four intervals: 1.6 s, shorter than resolve_timeout
HOLD_S = 3 * RESOLVE_TIMEOUT_S
LOUD, MUTED = "AMLOUD", "AMMUTED"
FIRST, GUIDED = "2021Q1", "2024Q1"
SUBJECTS = ("net_income", "non_gaap_net_income")
NET_INCOME = [410, 425, 433, 452, 470, 468, 490, 505, 512, 530, 541, 560]
STATUS_PAGE = "http://guidepost.example.test"
T = TypeVar("T")


def guided_company(company: str) -> list[Event]:
    """Twelve quarters of both net incomes, and guidance for both in the quarter after."""
    quarters = [Quarter.parse(FIRST).shift(i) for i in range(len(NET_INCOME))]
    assert str(quarters[-1].next()) == GUIDED
    events: list[Event] = []
    for metric, basis, offset in (
        ("net_income", Basis.GAAP, 0),
        ("non_gaap_net_income", Basis.NON_GAAP, 25),
    ):
        events += [
            MetricReported(
                company=company, metric=metric, period=str(q), value=Decimal(v + offset),
                unit=Unit.MONEY, currency="CNY", scale=Scale.MILLIONS,
                occurred_at=known_at(str(q), 45),
            )
            for q, v in zip(quarters, NET_INCOME, strict=True)
        ]  # fmt: skip
        events.append(
            GuidanceIssued(
                company=company, metric=metric, period=GUIDED, basis=basis,
                low=Decimal(570 + offset), high=Decimal(590 + offset), currency="CNY",
                scale=Scale.MILLIONS, issued_in_period=str(quarters[-1]),
                occurred_at=known_at(str(quarters[-1]), 46),
            )
        )  # fmt: skip
    return events


def actuals(company: str) -> list[Event]:
    return [
        MetricReported(
            company=company, metric=metric, period=GUIDED, value=Decimal(value), unit=Unit.MONEY,
            currency="CNY", scale=Scale.MILLIONS, occurred_at=datetime.now(UTC),
        )
        for metric, value in (("net_income", 580), ("non_gaap_net_income", 606))
    ]  # fmt: skip


def band_alerts(am: RunningAlertmanager, company: str) -> dict[str, dict[str, Any]]:
    """The company's band-check alerts Alertmanager holds active or suppressed, by subject."""
    return {
        alert["labels"]["subject"]: alert
        for alert in am.alerts()
        if alert["labels"].get("alertname") == "band_check"
        and alert["labels"].get("company") == company
    }


async def until(what: str, probe: Callable[[], T | None], timeout_s: float = 60) -> T:
    deadline = time.monotonic() + timeout_s
    while True:
        found = await asyncio.to_thread(probe)
        if found:
            return found
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)


def group_notice(
    receiver: NotificationReceiver, company: str, status: str
) -> dict[str, Any] | None:
    """A notification for the company's guided period whose band alerts are all `status`."""
    for notice in receiver.notifications():
        bands = [a for a in notice["alerts"] if a["labels"]["alertname"] == "band_check"]
        if (
            notice["groupLabels"] == {"company": company, "period": GUIDED}
            and sorted(a["labels"]["subject"] for a in bands) == sorted(SUBJECTS)
            and all(a["status"] == status for a in bands)
        ):
            return notice
    return None


@pytest.mark.timeout(180)
async def test_band_alerts_group_outlive_resolve_timeout_resolve_with_guidepost_and_obey_silences(
    redis_url: str, namespace: str
) -> None:
    alertmanager_binary()  # skips where the package is missing
    with (
        NotificationReceiver().serving() as receiver,
        running_alertmanager(
            receiver_url=receiver.url,
            resolve_timeout_s=RESOLVE_TIMEOUT_S,
            route_on={"team": "risk"},
        ) as am,
    ):
        silence_id = am.silence({"company": MUTED})
        settings = worker_settings(
            redis_url,
            namespace,
            alertmanager_url=am.url,
            alertmanager_repost_interval_s=REPOST_S,
            alertmanager_labels="team=risk",
            external_url=STATUS_PAGE,
        )
        async with pipeline(settings) as workers:
            await publish_and_settle(workers, guided_company(LOUD) + guided_company(MUTED))
            firing = await until(
                "both companies' band alerts in Alertmanager",
                lambda: (loud := band_alerts(am, LOUD)) and len(loud) == 2
                and len(band_alerts(am, MUTED)) == 2 and loud,
            )  # fmt: skip
            grouped = await until(
                "one notification of the loud company's group with both band alerts",
                lambda: group_notice(receiver, LOUD, "firing"),
            )

            held_from, polls, ends_at_seen = time.monotonic(), 0, set()
            while time.monotonic() - held_from < HOLD_S:  # several resolve_timeouts
                loud = await asyncio.to_thread(band_alerts, am, LOUD)
                assert sorted(loud) == sorted(SUBJECTS), f"{polls} polls in, {sorted(loud)}"
                assert all(a["status"]["state"] == "active" for a in loud.values())
                ends_at_seen |= {a["endsAt"] for a in loud.values()}
                polls += 1
                await asyncio.sleep(0.25)
            muted = await asyncio.to_thread(band_alerts, am, MUTED)

            await publish_and_settle(workers, actuals(LOUD))
            await until(
                "the loud company's band alerts resolved in Alertmanager",
                lambda: not band_alerts(am, LOUD),
            )
            resolved = await until(
                "a resolved notification of the loud company's group",
                lambda: group_notice(receiver, LOUD, "resolved"),
            )
            await asyncio.sleep(3 * REPOST_S)  # a few repost rounds after: none reopens them
            after = await asyncio.to_thread(band_alerts, am, LOUD)

    first = firing["net_income"]
    assert set(first["labels"]) == {"alertname", "company", "period", "subject", "team"}
    assert first["labels"]["period"] == GUIDED
    assert first["generatorURL"] == f"{STATUS_PAGE}/companies/{LOUD}"
    annotations = first["annotations"]
    assert annotations["state"].startswith("likely_")
    assert annotations["severity"] in {"info", "warning", "critical"}
    assert {"summary", "p_below", "p_inside", "p_above"} <= set(annotations)
    assert grouped["receiver"] == "guidepost-test"
    assert HOLD_S > 2 * RESOLVE_TIMEOUT_S
    assert polls > 10
    assert len(ends_at_seen) > 2, "each repost moved endsAt forward"
    settled = [a for a in resolved["alerts"] if a["labels"]["alertname"] == "band_check"]
    assert all(a["endsAt"] >= a["startsAt"] for a in settled)
    news = {a["labels"]["alertname"] for a in resolved["alerts"]} - {"band_check"}
    assert news == {"outcome"}, "the outcomes of the actuals joined the group"
    assert after == {}
    assert sorted(muted) == sorted(SUBJECTS)
    assert all(a["status"]["state"] == "suppressed" for a in muted.values())
    assert all(a["status"]["silencedBy"] == [silence_id] for a in muted.values())
    assert all(n["groupLabels"]["company"] != MUTED for n in receiver.notifications())
