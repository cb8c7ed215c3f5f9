"""The Alertmanager sink against a real Redis and real HTTP endpoints on loopback that answer as
Alertmanager's `/api/v2/alerts` does (or fail): notices come from the alerts worker's own
lifecycle, so records and notices are the ones the worker writes."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry
from typer.testing import CliRunner

from schemas.alerts import Alert, AlertStatus
from schemas.deadletter import FailureReason
from schemas.streams import Streams
from services.alerts.alertmanager import AlertmanagerSink
from services.alerts.lifecycle import Observation
from services.alerts.redelivery import Backoff
from services.alerts.service import AlertService, WebhookDelivery
from services.alerts.store import AlertKeys, RedisAlertStores
from services.alerts.webhook import WebhookSink
from services.cli import app
from services.cli.ops import dead_letters
from services.common.metrics import Metrics
from services.common.wire import B_DATA_FIELD
from tests.support.receiver import receiving

pytestmark = pytest.mark.integration

REPOST_S = 0.5


@dataclass
class FakeAlertmanager:
    """Answers `status` (200 while up); records every accepted post's alerts, in order."""

    status: int = 200
    posts: list[list[dict[str, Any]]] = field(default_factory=list)
    refused: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    paths: list[str] = field(default_factory=list)

    def answer(self, path: str, body: bytes) -> int:
        with self.lock:
            self.paths.append(path)
            if self.status != 200:
                self.refused += 1
                return self.status
            self.posts.append(json.loads(body))
            return 200

    def posted(self) -> list[dict[str, Any]]:
        with self.lock:
            return [alert for post in self.posts for alert in post]


@contextmanager
def serving(fake: FakeAlertmanager) -> Iterator[str]:
    with receiving(lambda posted: fake.answer(posted.path, posted.body)) as url:
        yield url


async def no_sleep(seconds: float) -> None:
    return None


def observation(
    condition: str, *, state: str = "likely_below", at: datetime, subject: str = "net_income"
) -> Observation:
    return Observation(
        company="AMCO",
        period="2024Q2",
        kind="band_check",
        subject=subject,
        condition=condition,  # type: ignore[arg-type]
        severity="warning",
        state=state,
        summary=f"AMCO net income 2024Q2 is {state}.",
        details={"p_below": 0.62, "point": 2.42e11},
        observed_at=at,
    )


async def notices(redis: aioredis.Redis, streams: Streams) -> list[Alert]:
    entries: Any = await redis.xrange(streams.alerts)
    return [Alert.model_validate_json(fields[B_DATA_FIELD]) for _, fields in entries]


def alert_service(redis: aioredis.Redis, streams: Streams) -> AlertService:
    stores = RedisAlertStores(redis, streams, max_length=10_000)
    return AlertService(
        records=stores.records, silences=stores.silences, repeat_interval=timedelta(days=1)
    )


def delivery(
    redis: aioredis.Redis,
    streams: Streams,
    urls: list[str],
    *,
    metrics: Metrics | None = None,
    horizon_s: float = 3600,
) -> WebhookDelivery:
    stores = RedisAlertStores(redis, streams)
    sink = AlertmanagerSink(
        urls=urls,
        posted=stores.posted,
        records=stores.records,
        repost_interval_s=REPOST_S,
        constant_labels={"team": "risk"},
        external_url="https://guidepost.example.test",
        max_attempts=2,
        sleep=no_sleep,
    )
    return WebhookDelivery(
        ledger=stores.ledger("alertmanager"),
        schedule=stores.schedule("alertmanager"),
        sink=sink,
        horizon_s=horizon_s,
        backoff=Backoff(base_s=60, max_s=60),
        metrics=metrics or Metrics(CollectorRegistry()),
        name="alertmanager",
    )


def webhook_delivery(redis: aioredis.Redis, streams: Streams, sink: WebhookSink) -> WebhookDelivery:
    stores = RedisAlertStores(redis, streams)
    return WebhookDelivery(
        ledger=stores.ledger("webhook"), schedule=stores.schedule("webhook"), sink=sink
    )


def sink_of(hook: WebhookDelivery) -> AlertmanagerSink:
    sink = hook._sink
    assert isinstance(sink, AlertmanagerSink)
    return sink


T0 = datetime(2024, 7, 1, 9, tzinfo=UTC)


@pytest.mark.timeout(30)
async def test_a_state_change_updates_one_alert_and_a_late_firing_notice_cannot_reopen_it(
    redis_client: aioredis.Redis, streams: Streams
) -> None:
    service = alert_service(redis_client, streams)
    fake = FakeAlertmanager()
    with serving(fake) as url:
        hook = delivery(redis_client, streams, [url])
        await service.observe(observation("firing", state="likely_inside", at=T0))
        (first,) = await notices(redis_client, streams)
        await hook.deliver_all([first])  # on time
        later = T0 + timedelta(hours=1)
        await service.observe(observation("firing", state="likely_below", at=later))
        await service.observe(observation("clear", at=T0 + timedelta(hours=2)))
        _, changed, resolved = await notices(redis_client, streams)
        await hook.deliver_all([resolved])  # the state change is still on its way
        await hook.deliver_all([changed])  # late: older than what Alertmanager holds
        await sink_of(hook).repost()

    posted = fake.posted()
    assert fake.paths == ["/api/v2/alerts"] * len(fake.posts)
    assert [p["annotations"]["state"] for p in posted] == ["likely_inside", "likely_below"]
    assert len({json.dumps(p["labels"], sort_keys=True) for p in posted}) == 1, "one alert"
    assert posted[0]["labels"] == {
        "alertname": "band_check",
        "company": "AMCO",
        "period": "2024Q2",
        "subject": "net_income",
        "team": "risk",
    }
    assert posted[0]["annotations"]["point"] == "242000000000.0"
    assert posted[0]["generatorURL"] == "https://guidepost.example.test/companies/AMCO"
    assert posted[1]["endsAt"] == "2024-07-01T11:00:00Z", "resolved when Guidepost saw it end"
    assert await hook._delivered([n.event_id for n in (first, changed, resolved)]) == [True] * 3


@pytest.mark.timeout(30)
async def test_the_newest_notice_of_an_alert_wins_whatever_order_notices_are_recorded_in(
    redis_client: aioredis.Redis, streams: Streams
) -> None:
    """As on a Redis Cluster, where the worker writes notices before records: only the order
    kept by the sink stands between a late notice and Alertmanager."""
    service = alert_service(redis_client, streams)
    steps = [("firing", "likely_inside"), ("firing", "likely_below"), ("clear", "likely_below"),
             ("firing", "likely_inside")]  # fmt: skip
    for hour, (condition, state) in enumerate(steps):
        await service.observe(observation(condition, state=state, at=T0 + timedelta(hours=hour)))
    sent = await notices(redis_client, streams)
    sink = sink_of(delivery(redis_client, streams, ["http://127.0.0.1:9"]))
    shuffled = [sent[2], sent[0], sent[3], sent[1]]  # the newest (a new episode) third

    taken = [await sink.posted.advance(alert, now=time.time()) for alert in shuffled]
    after_shuffle = (await sink.posted.all())[sent[0].fingerprint]
    await redis_client.delete(AlertKeys(streams).posted)  # and again, each from its own task
    racing = await asyncio.gather(*(sink.posted.advance(a, now=time.time()) for a in sent * 5))
    kept = (await sink.posted.all())[sent[0].fingerprint]

    assert [n.status.value for n in sent] == ["firing", "firing", "resolved", "firing"]
    assert taken == [True, False, True, False]
    assert (after_shuffle.starts_at, after_shuffle.number) == (sent[3].starts_at, 1)
    assert all(racing[3::4]), "the newest is always taken"
    assert (kept.starts_at, kept.number) == (sent[3].starts_at, sent[3].notification)
    assert kept.reposted


@pytest.mark.timeout(30)
async def test_a_backlog_posts_each_alerts_final_state_not_every_step(
    redis_client: aioredis.Redis, streams: Streams
) -> None:
    service = alert_service(redis_client, streams)
    await service.observe(observation("firing", state="likely_inside", at=T0))
    await service.observe(observation("firing", state="likely_below", at=T0 + timedelta(hours=1)))
    fake = FakeAlertmanager()
    with serving(fake) as url:
        hook = delivery(redis_client, streams, [url])
        await hook.deliver_all(await notices(redis_client, streams))

    assert [p["annotations"]["state"] for p in fake.posted()] == ["likely_below"]


@pytest.mark.timeout(30)
async def test_reposts_keep_firing_alerts_alive_and_post_resolved_what_the_records_ended(
    redis_client: aioredis.Redis, streams: Streams
) -> None:
    service = alert_service(redis_client, streams)
    await service.observe(observation("firing", at=T0))
    await service.observe(observation("firing", at=T0, subject="non_gaap_net_income"))
    fake = FakeAlertmanager()
    with serving(fake) as url:
        hook = delivery(redis_client, streams, [url])
        await hook.deliver_all(await notices(redis_client, streams))
        kept = await sink_of(hook).repost()
        # the net income band settles, but its resolved notice has not reached this sink
        await service.observe(observation("clear", at=T0 + timedelta(hours=3)))
        still = await sink_of(hook).repost()
        last_round = fake.posts[-1]
        after = await sink_of(hook).repost()

    now = datetime.now(UTC)
    firing_round = fake.posts[1]
    ends = [datetime.fromisoformat(p["endsAt"]) for p in firing_round]
    assert kept == 2
    assert all(timedelta(0) < end - now < timedelta(seconds=4 * REPOST_S) for end in ends)
    assert still == 1
    by_subject = {p["labels"]["subject"]: p for p in last_round}
    assert by_subject["net_income"]["endsAt"] == "2024-07-01T12:00:00Z"
    assert datetime.fromisoformat(by_subject["non_gaap_net_income"]["endsAt"]) > now
    assert after == 1
    assert [p["labels"]["subject"] for p in fake.posts[-1]] == ["non_gaap_net_income"]


@pytest.mark.timeout(30)
async def test_one_alertmanager_of_two_down_still_delivers_and_the_next_round_reaches_it(
    redis_client: aioredis.Redis, streams: Streams
) -> None:
    service = alert_service(redis_client, streams)
    await service.observe(observation("firing", at=T0))
    up, down = FakeAlertmanager(), FakeAlertmanager(status=503)
    with serving(up) as up_url, serving(down) as down_url:
        hook = delivery(redis_client, streams, [up_url, down_url])
        outcomes = await hook.deliver_all(await notices(redis_client, streams))
        down.status = 200
        await sink_of(hook).repost()

    assert outcomes == [None]
    assert len(up.posts) == 2
    assert down.refused == 2, "its own two attempts"
    assert len(down.posts) == 1, "the repost round reached it"
    assert await hook.schedule.waiting() == 0


@pytest.mark.timeout(30)
async def test_a_refused_post_is_dead_lettered_for_alertmanager_and_replay_schedules_it_there(
    redis_url: str, redis_client: aioredis.Redis, streams: Streams
) -> None:
    service = alert_service(redis_client, streams)
    await service.observe(observation("firing", at=T0))
    (notice,) = await notices(redis_client, streams)
    metrics = Metrics(CollectorRegistry())
    fake = FakeAlertmanager(status=400)
    with serving(fake) as url:
        hook = delivery(redis_client, streams, [url], metrics=metrics)
        await hook.deliver_all([notice])
        letters = await dead_letters(redis_client, streams)
        env = {"GUIDEPOST_NAMESPACE": streams.namespace}
        command = ["dlq", "replay", "--reason", "delivery_failed", "--redis-url", redis_url]
        replayed = await asyncio.to_thread(CliRunner().invoke, app, command, env=env)
        fake.status = 200
        delivered = await hook.retry_due(now=time.time() + 1)

    (letter,) = [stored.letter for stored in letters]
    assert fake.refused == 1, "a 400 is not retried"
    assert letter.reason is FailureReason.DELIVERY_FAILED
    assert letter.group == "alertmanager"
    sample = metrics.registry.get_sample_value(
        "guidepost_webhook_failures_total", {"sink": "alertmanager", "outcome": "dead_lettered"}
    )
    assert sample == 1
    assert replayed.exit_code == 0, replayed.output
    webhook_schedule = RedisAlertStores(redis_client, streams).schedule("webhook")
    assert await webhook_schedule.waiting() == 0, "not the webhook's"
    assert delivered == 1
    assert [p["annotations"]["notification"] for p in fake.posted()] == ["1"]


@pytest.mark.timeout(30)
async def test_one_replica_reposts_a_round(redis_client: aioredis.Redis, streams: Streams) -> None:
    service = alert_service(redis_client, streams)
    await service.observe(observation("firing", at=T0))
    fake = FakeAlertmanager()
    with serving(fake) as url:
        replicas = [delivery(redis_client, streams, [url]) for _ in range(3)]
        await replicas[0].deliver_all(await notices(redis_client, streams))
        stop = asyncio.Event()
        loops = [asyncio.create_task(sink_of(r).run_reposts(stop)) for r in replicas]
        await asyncio.sleep(REPOST_S / 2)  # within one round
        stop.set()
        await asyncio.gather(*loops)

    assert len(fake.posts) == 1 + 1, "the notice, then one repost among three replicas"


@pytest.mark.timeout(30)
async def test_the_webhook_gets_one_post_per_alert_group_in_alertmanagers_webhook_format(
    redis_client: aioredis.Redis, streams: Streams
) -> None:
    service = alert_service(redis_client, streams)
    for subject in ("net_income", "non_gaap_net_income"):
        await service.observe(observation("firing", at=T0, subject=subject))
    await service.observe(
        Observation(
            company="OTHER", period="2024Q2", kind="band_check", subject="net_income",
            condition="firing", severity="info", state="likely_inside", summary="",
            observed_at=T0,
        )
    )  # fmt: skip
    fake = FakeAlertmanager()
    with serving(fake) as url:
        sink = WebhookSink(url=f"{url}/hook", receiver="risk-team", sleep=no_sleep)
        hook = webhook_delivery(redis_client, streams, sink)
        sent = await notices(redis_client, streams)
        await hook.deliver_all(sent)
        await hook.deliver_all(sent)  # redelivered: nothing posted twice

    bodies: list[Any] = fake.posts
    assert [body["groupLabels"]["company"] for body in bodies] == ["AMCO", "OTHER"]
    assert [len(body["alerts"]) for body in bodies] == [2, 1]
    assert {body["receiver"] for body in bodies} == {"risk-team"}
    assert all(body["version"] == "4" for body in bodies)
    assert bodies[0]["commonLabels"]["company"] == "AMCO"
    assert all(a["status"] == AlertStatus.FIRING.value for b in bodies for a in b["alerts"])


@pytest.mark.timeout(30)
async def test_a_notice_written_twice_in_one_batch_is_posted_once(
    redis_client: aioredis.Redis, streams: Streams
) -> None:
    """On a cluster the worker may write a notice again after a failed MULTI-less write."""
    service = alert_service(redis_client, streams)
    await service.observe(observation("firing", at=T0))
    (notice,) = await notices(redis_client, streams)
    fake = FakeAlertmanager()
    with serving(fake) as url:
        sink = WebhookSink(url=f"{url}/hook", sleep=no_sleep)
        hook = webhook_delivery(redis_client, streams, sink)
        outcomes = await hook.deliver_all([notice, notice])

    assert outcomes == [None, None]
    bodies: list[Any] = fake.posts
    assert [len(body["alerts"]) for body in bodies] == [1]
