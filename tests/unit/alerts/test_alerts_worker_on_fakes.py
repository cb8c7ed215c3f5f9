"""The alerts worker on its in-memory stores: what it announces, what it keeps, when it tries a
receiver again, and when a firing alert posted to Alertmanager is due to end."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from schemas.alerts import Alert, AlertKind, AlertSignal, AlertStatus, Condition, Severity
from services.alerts import events
from services.alerts.alertmanager import AlertmanagerSink
from services.alerts.lifecycle import Silence
from services.alerts.redelivery import Backoff, Pending
from services.alerts.service import AlertService, WebhookDelivery
from services.alerts.store import FakeAlertStores
from services.alerts.webhook import DeliveryFailed
from services.common.streams import Acknowledgement

pytestmark = pytest.mark.unit

T0 = datetime(2024, 8, 1, 9, tzinfo=UTC)
REPEAT = timedelta(hours=4)


@dataclass
class Clock:
    now: datetime = T0

    def __call__(self) -> datetime:
        return self.now

    def seconds(self) -> float:
        return self.now.timestamp()


def signal(
    *,
    at: datetime,
    condition: Condition = Condition.FIRING,
    state: str = "likely_below",
    kind: AlertKind = AlertKind.BAND_CHECK,
    subject: str = "net_income",
    details: dict[str, Any] | None = None,
    severity: Severity = Severity.WARNING,
) -> AlertSignal:
    return AlertSignal(
        event_id=f"{kind}-{subject}-{condition}-{state}-{at.isoformat()}",
        company="QFIN",
        producer="guidepost-guidance",
        occurred_at=at,
        kind=kind,
        period="2024Q2",
        subject=subject,
        condition=condition,
        severity=severity,
        state=state,
        summary=f"QFIN 2024Q2 {subject} is {state}.",
        details=details or {},
    )


def service(stores: FakeAlertStores, clock: Clock) -> AlertService:
    return AlertService(
        records=stores.records, silences=stores.silences, repeat_interval=REPEAT, clock=clock
    )


async def observe(alerts: AlertService, *signals: AlertSignal) -> None:
    outcomes = await alerts.apply_all(list(signals))
    assert outcomes == [None] * len(signals)


def sent(stores: FakeAlertStores) -> list[tuple[str, int, str | None]]:
    return [(n.status.value, n.notification, n.state) for n in stores.records.notices]


# --------------------------------------------------------------------------- lifecycle


async def test_a_firing_condition_is_announced_once_then_again_only_after_the_repeat_interval() -> (
    None
):
    stores, clock = FakeAlertStores(), Clock()
    alerts = service(stores, clock)
    await observe(alerts, signal(at=T0))
    clock.now = T0 + timedelta(hours=1)
    await observe(alerts, signal(at=clock.now))  # unchanged, within the interval
    clock.now = T0 + REPEAT
    await observe(alerts, signal(at=clock.now))  # unchanged, the interval passed

    assert sent(stores) == [("firing", 1, "likely_below"), ("firing", 2, "likely_below")]
    (kept,) = (await alerts.records("QFIN")).values()
    assert (kept.status, kept.notifications, kept.last_notified_at) == ("firing", 2, T0 + REPEAT)


async def test_a_state_change_is_announced_at_once_and_a_clear_resolves_with_its_end_time() -> None:
    stores, clock = FakeAlertStores(), Clock()
    alerts = service(stores, clock)
    await observe(alerts, signal(at=T0))
    clock.now = T0 + timedelta(minutes=5)
    await observe(alerts, signal(at=clock.now, state="likely_inside"))
    clock.now = T0 + timedelta(minutes=10)
    await observe(alerts, signal(at=clock.now, condition=Condition.CLEAR))
    await observe(alerts, signal(at=clock.now, condition=Condition.CLEAR))  # replayed

    assert sent(stores) == [
        ("firing", 1, "likely_below"),
        ("firing", 2, "likely_inside"),
        ("resolved", 3, "likely_inside"),
    ]
    assert stores.records.notices[-1].ends_at == T0 + timedelta(minutes=10)


async def test_a_news_kind_is_announced_for_each_new_content_in_the_same_state() -> None:
    """A guidance revision is an event: a second raise is news, the same statement is not."""
    stores, clock = FakeAlertStores(), Clock()
    alerts = service(stores, clock)

    def raised(at: datetime, high: int) -> AlertSignal:
        return signal(at=at, kind=AlertKind.GUIDANCE_REVISION, state="raised",
                      details={"high": high}, severity=Severity.INFO)  # fmt: skip

    await observe(alerts, raised(T0, 1230))
    clock.now = T0 + timedelta(hours=1)
    await observe(alerts, raised(clock.now, 1250))
    await observe(alerts, raised(clock.now, 1250))

    assert [(n.kind, n.severity, n.details) for n in stores.records.notices] == [
        (AlertKind.GUIDANCE_REVISION, Severity.INFO, {"high": 1230}),
        (AlertKind.GUIDANCE_REVISION, Severity.INFO, {"high": 1250}),
    ]


async def test_withdrawn_guidance_mutes_the_band_check_of_its_subject() -> None:
    stores, clock = FakeAlertStores(), Clock()
    alerts = service(stores, clock)
    withdrawn = signal(at=T0, kind=AlertKind.GUIDANCE_REVISION, state="withdrawn")
    await observe(alerts, withdrawn, signal(at=T0), signal(at=T0, subject="loan_volume"))

    assert [(n.kind, n.subject) for n in stores.records.notices] == [
        (AlertKind.GUIDANCE_REVISION, "net_income"),
        (AlertKind.BAND_CHECK, "loan_volume"),
    ]


async def test_a_batch_is_acknowledged_with_its_writes() -> None:
    stores, clock = FakeAlertStores(), Clock()
    alerts = service(stores, clock)
    batch = Acknowledgement("signals", "alerts", (b"1-0", b"1-1"))
    await alerts.apply_all_acknowledging([signal(at=T0)], batch)
    assert stores.records.acknowledged == [batch]
    assert len(stores.records.notices) == 1


async def test_a_signal_the_lifecycle_refuses_leaves_the_whole_batch_failed() -> None:
    stores, clock = FakeAlertStores(), Clock()
    alerts = service(stores, clock)
    unhashable = signal(at=T0, subject="b").model_copy(update={"details": {"x": float("nan")}})
    outcomes = await alerts.apply_all([signal(at=T0), unhashable])
    assert [type(o) for o in outcomes] == [ValueError, ValueError]
    assert stores.records.notices == [], "nothing written: the batch stays pending"


# --------------------------------------------------------------------------- silences


async def test_a_silence_mutes_new_firings_until_it_ends_then_the_owed_notice_goes_out() -> None:
    stores, clock = FakeAlertStores(), Clock()
    alerts = service(stores, clock)
    await stores.silences.add(
        Silence(id="s1", matchers={"company": "Q*", "kind": "band_check"}, starts_at=T0,
                ends_at=T0 + timedelta(days=1), created_by="ops", comment="earnings call")
    )  # fmt: skip
    await observe(alerts, signal(at=T0))
    muted = sent(stores)
    clock.now = T0 + timedelta(hours=1)
    assert await stores.silences.expire("s1", at=clock.now)
    await observe(alerts, signal(at=clock.now))

    assert muted == []
    assert sent(stores) == [("firing", 1, "likely_below")]


async def test_a_resolved_notice_still_closes_an_alert_announced_before_the_silence() -> None:
    stores, clock = FakeAlertStores(), Clock()
    alerts = service(stores, clock)
    await observe(alerts, signal(at=T0))
    await stores.silences.add(
        Silence(id="s1", matchers={"company": "QFIN"}, starts_at=T0,
                ends_at=T0 + timedelta(days=1), created_by="ops", comment="noisy")
    )  # fmt: skip
    clock.now = T0 + timedelta(minutes=1)
    await observe(alerts, signal(at=clock.now, condition=Condition.CLEAR))
    assert [s for s, _, _ in sent(stores)] == ["firing", "resolved"]


# --------------------------------------------------------------------------- redelivery


@dataclass
class Receiver:
    """An `AlertSink` that refuses (retryably, or not) while `down`."""

    down: bool = True
    retryable: bool = True
    got: list[list[str]] = field(default_factory=list)
    refused: int = 0

    async def send(self, alerts: Sequence[Alert], *, max_attempts: int | None = None) -> None:
        if self.down:
            self.refused += 1
            raise DeliveryFailed(payload=None, last_error="HTTP 503", attempts=max_attempts or 3,
                                 status_code=503, retryable=self.retryable)  # fmt: skip
        self.got.append([a.event_id for a in alerts])


async def fired(stores: FakeAlertStores, subjects: Sequence[str]) -> list[Alert]:
    alerts = service(stores, Clock())
    await observe(alerts, *(signal(at=T0, subject=s) for s in subjects))
    return list(stores.records.notices)


def delivery(stores: FakeAlertStores, receiver: Receiver, *, horizon_s: float) -> WebhookDelivery:
    return WebhookDelivery(
        ledger=stores.ledger("webhook"), schedule=stores.schedule("webhook"), sink=receiver,
        horizon_s=horizon_s, backoff=Backoff(base_s=60, max_s=60),
    )  # fmt: skip


async def test_a_notice_the_receiver_refused_is_scheduled_with_backoff_and_sent_once_later() -> (
    None
):
    stores, receiver = FakeAlertStores(), Receiver()
    notices = await fired(stores, ["net_income", "loan_volume"])
    hook = delivery(stores, receiver, horizon_s=3600)
    before = datetime.now(UTC).timestamp()
    outcomes = await hook.deliver_all(notices)
    schedule = stores.schedule("webhook")
    due = await schedule.next_due()
    waiting = {(p.event_id, p.attempts) for p in await schedule.due(now=before + 3600)}
    receiver.down = False
    delivered = await hook.retry_due(now=before + 3600)
    again = await hook.deliver_all(notices)  # the stream redelivers them: already delivered

    assert outcomes == [None, None], "acknowledged: the schedule owns them now"
    assert due is not None
    assert before + 30 <= due <= before + 60 + 5, "half to all of the 60s step"
    assert waiting == {(n.event_id, 3) for n in notices}, "the sink's own three attempts"
    assert delivered == 2
    assert [sorted(batch) for batch in receiver.got] == [sorted(n.event_id for n in notices)]
    assert again == [None, None]
    assert await schedule.waiting() == 0


async def test_while_the_receiver_is_down_new_notices_wait_without_an_attempt_of_their_own() -> (
    None
):
    stores, receiver = FakeAlertStores(), Receiver()
    first, second = await fired(stores, ["net_income", "loan_volume"])
    hook = delivery(stores, receiver, horizon_s=3600)
    await hook.deliver_all([first])
    await hook.deliver_all([second])

    assert receiver.refused == 1
    assert await stores.schedule("webhook").ids() == {first.event_id, second.event_id}


async def test_past_the_horizon_or_on_a_refusal_a_notice_is_dead_lettered_and_unscheduled() -> None:
    stores = FakeAlertStores()
    (notice,) = await fired(stores, ["net_income"])
    refused = Receiver(retryable=False)
    await delivery(stores, refused, horizon_s=3600).deliver_all([notice])
    expired = delivery(stores, Receiver(), horizon_s=0)
    waiting = Pending(notice.event_id, notice.model_dump_json(), 0.0, 2, "HTTP 503")
    await stores.schedule("webhook").schedule(waiting, at=0.0)
    await expired.retry_due(now=1.0)

    letters = stores.ledger("webhook").letters
    assert [(letter.event_id, letter.error) for letter in letters] == [
        (notice.event_id, "HTTP 503"),
        (notice.event_id, "HTTP 503"),
    ]
    assert await stores.schedule("webhook").waiting() == 0


# --------------------------------------------------------------------------- Alertmanager


@dataclass
class AlertmanagerEndpoint:
    posts: list[list[dict[str, Any]]] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.posts.append(json.loads(request.content))
        return httpx.Response(200)


def alertmanager(
    stores: FakeAlertStores, endpoint: AlertmanagerEndpoint, clock: Clock
) -> AlertmanagerSink:
    return AlertmanagerSink(
        urls=["http://am.example.test:9093"], posted=stores.posted, records=stores.records,
        repost_interval_s=60.0, clock=clock.seconds,
        client=httpx.AsyncClient(transport=httpx.MockTransport(endpoint)),
    )  # fmt: skip


def ends(post: list[dict[str, Any]]) -> dict[str, str | None]:
    return {p["labels"]["subject"]: p.get("endsAt") for p in post}


async def test_a_firing_alert_is_valid_four_intervals_and_each_repost_extends_it() -> None:
    stores, endpoint, clock = FakeAlertStores(), AlertmanagerEndpoint(), Clock()
    (notice,) = await fired(stores, ["net_income"])
    sink = alertmanager(stores, endpoint, clock)
    await sink.send([notice])
    clock.now = T0 + timedelta(seconds=60)
    reposted = await sink.repost()

    assert reposted == 1
    assert [ends(post) for post in endpoint.posts] == [
        {"net_income": "2024-08-01T09:04:00Z"},
        {"net_income": "2024-08-01T09:05:00Z"},
    ]


async def test_a_repost_round_posts_resolved_what_the_records_ended_at_their_end_time() -> None:
    stores, endpoint, clock = FakeAlertStores(), AlertmanagerEndpoint(), Clock()
    (notice,) = await fired(stores, ["net_income"])
    sink = alertmanager(stores, endpoint, clock)
    await sink.send([notice])
    ended_at = T0 + timedelta(minutes=2)
    await observe(service(stores, Clock(ended_at)), signal(at=ended_at, condition=Condition.CLEAR))
    clock.now = T0 + timedelta(minutes=3)
    reposted = await sink.repost()
    after = await sink.repost()

    assert reposted == 0
    assert ends(endpoint.posts[-1]) == {"net_income": "2024-08-01T09:02:00Z"}
    assert after == 0
    assert len(endpoint.posts) == 2, "ended: nothing left to repost"


async def test_news_is_posted_once_without_an_end_and_never_reposted() -> None:
    stores, endpoint, clock = FakeAlertStores(), AlertmanagerEndpoint(), Clock()
    alerts = service(stores, clock)
    await observe(alerts, signal(at=T0, kind=AlertKind.OUTCOME, state="beat"))
    sink = alertmanager(stores, endpoint, clock)
    await sink.send(list(stores.records.notices))
    reposted = await sink.repost()

    assert ends(endpoint.posts[0]) == {"net_income": None}
    assert reposted == 0


async def test_a_late_firing_notice_cannot_reopen_what_alertmanager_was_told_ended() -> None:
    stores, endpoint, clock = FakeAlertStores(), AlertmanagerEndpoint(), Clock()
    (firing,) = await fired(stores, ["net_income"])
    await observe(service(stores, clock), signal(at=T0 + timedelta(minutes=1),
                                                        condition=Condition.CLEAR))  # fmt: skip
    resolved = stores.records.notices[-1]
    sink = alertmanager(stores, endpoint, clock)
    await sink.send([resolved])
    await sink.send([firing])

    assert [p[0]["endsAt"] for p in endpoint.posts] == ["2024-08-01T09:01:00Z"]
    assert resolved.status is AlertStatus.RESOLVED


# --------------------------------------------------------------------------- signals about a record


async def test_a_signal_built_from_a_record_clears_that_very_alert() -> None:
    """How a command ends an alert another worker raised (a lifted quarantine)."""
    stores, clock = FakeAlertStores(), Clock()
    alerts = service(stores, clock)
    quarantined = signal(at=T0, kind=AlertKind.DATA_QUALITY, subject="refit",
                         state="quarantined", severity=Severity.CRITICAL)  # fmt: skip
    await observe(alerts, quarantined, signal(at=T0))
    held = await alerts.records("QFIN")
    (record,) = [r for r in held.values() if r.subject == "refit"]
    clock.now = T0 + timedelta(hours=1)
    lifted = events.signal(record, condition=Condition.CLEAR, summary="lifted",
                           producer="guidepost-cli", at=clock.now)  # fmt: skip
    await observe(alerts, lifted, lifted)

    assert lifted.company == "QFIN"
    assert [(n.subject, n.status.value) for n in stores.records.notices] == [
        ("refit", "firing"),
        ("net_income", "firing"),
        ("refit", "resolved"),
    ]
    assert stores.records.notices[-1].fingerprint == record.fingerprint
