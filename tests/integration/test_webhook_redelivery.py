"""Webhook delivery past the sink's own retries, against a real HTTP receiver and a real Redis:
a receiver down longer than the retry budget gets every notice once when it is back, a notice
past the horizon is dead-lettered with the notice itself and `dlq replay` sends it once, and a
receiver that trickles its answer cannot hold an attempt past its deadline."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import httpx
import pytest
import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry
from typer.testing import CliRunner

from schemas.alerts import Alert
from schemas.deadletter import FailureReason
from schemas.streams import Streams
from services.alerts.redelivery import Backoff
from services.alerts.service import WebhookDelivery
from services.alerts.store import RedisAlertStores
from services.alerts.webhook import WebhookSink
from services.cli import app
from services.cli.ops import dead_letters
from services.common.metrics import Metrics
from tests.integration.test_webhook_sink import band_check_alert
from tests.support.receiver import receiving

pytestmark = pytest.mark.integration


@dataclass
class SwitchableReceiver:
    """Answers 503 while `down`, else 200; records each accepted notice's alert event id."""

    down: bool = True
    refused: int = 0
    accepted: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, body: bytes) -> int:
        with self.lock:
            if self.down:
                self.refused += 1
                return 503
            for alert in json.loads(body)["alerts"]:
                self.accepted.append(alert["annotations"]["notification"] + alert["fingerprint"])
            return 200


@contextmanager
def serving(receiver: SwitchableReceiver) -> Iterator[str]:
    with receiving(lambda posted: receiver.answer(posted.body), "/hook") as url:
        yield url


async def no_sleep(seconds: float) -> None:
    return None


def notices(count: int) -> list[Alert]:
    base = band_check_alert()
    return [
        base.model_copy(update={"event_id": f"{base.fingerprint}-n{n}", "notification": n})
        for n in range(1, count + 1)
    ]


def delivery(
    redis: aioredis.Redis, streams: Streams, url: str, *, horizon_s: float, metrics: Metrics
) -> WebhookDelivery:
    """Retries a minute apart: each round is driven by the test's clock (`retry_due(now=)`)."""
    sink = WebhookSink(url=url, max_attempts=3, sleep=no_sleep)
    stores = RedisAlertStores(redis, streams)
    return WebhookDelivery(
        ledger=stores.ledger("webhook"), schedule=stores.schedule("webhook"), sink=sink,
        horizon_s=horizon_s, backoff=Backoff(base_s=60, max_s=60), metrics=metrics,
    )  # fmt: skip


def failures(metrics: Metrics, outcome: str) -> float:
    value = metrics.registry.get_sample_value(
        "guidepost_webhook_failures_total", {"sink": "webhook", "outcome": outcome}
    )
    return value or 0.0


async def until_delivered(hook: WebhookDelivery, timeout_s: float = 10) -> None:
    deadline = time.monotonic() + timeout_s
    while await hook.schedule.waiting():
        assert time.monotonic() < deadline, "the scheduled notices were not delivered"
        await hook.retry_due(now=time.time() + 3600)
        await asyncio.sleep(0.02)


@pytest.mark.timeout(60)
async def test_a_receiver_down_past_the_retry_budget_gets_every_notice_once_when_back(
    redis_client: aioredis.Redis, streams: Streams
) -> None:
    receiver = SwitchableReceiver(down=True)
    metrics = Metrics(CollectorRegistry())
    sent = notices(5)
    with serving(receiver) as url:
        hook = delivery(redis_client, streams, url, horizon_s=3600, metrics=metrics)
        outcomes = await hook.deliver_all(sent)  # the first spends the sink's three attempts
        await hook.deliver_all(sent[:2])  # the stream redelivered two of them meanwhile
        scheduled = await hook.schedule.waiting()
        refused_at_first = receiver.refused
        await hook.retry_due(now=time.time() + 120)  # still down: one probe, the rest wait
        refused_while_down = receiver.refused
        receiver.down = False
        await until_delivered(hook)
        await hook.deliver_all(sent)  # and once more after: already delivered

    assert outcomes == [None] * 5, "acknowledged: the schedule owns them now"
    assert scheduled == 5
    assert refused_at_first == 3, "while the receiver is down, new notices join the schedule"
    assert refused_while_down == 3 + 1
    assert sorted(receiver.accepted) == sorted(str(a.notification) + a.fingerprint for a in sent)
    assert failures(metrics, "retrying") == 2  # the first notice's failure and the probe's
    assert failures(metrics, "dead_lettered") == 0
    assert await dead_letters(redis_client, streams) == []


@pytest.mark.timeout(60)
async def test_a_notice_past_the_horizon_is_dead_lettered_and_replay_sends_it_once(
    redis_url: str, redis_client: aioredis.Redis, streams: Streams
) -> None:
    receiver = SwitchableReceiver(down=True)
    metrics = Metrics(CollectorRegistry())
    (notice,) = notices(1)
    with serving(receiver) as url:
        hook = delivery(redis_client, streams, url, horizon_s=0.2, metrics=metrics)
        await hook.deliver_all([notice])
        await asyncio.sleep(0.25)  # past the horizon
        await hook.retry_due(now=time.time() + 120)
        letters = await dead_letters(redis_client, streams)
        receiver.down = False
        runner, env = CliRunner(), {"GUIDEPOST_NAMESPACE": streams.namespace}
        command = ["dlq", "replay", "--reason", "delivery_failed", "--json"]
        replayed = await asyncio.to_thread(
            runner.invoke, app, [*command, "--redis-url", redis_url], env=env
        )
        nothing = await asyncio.to_thread(
            runner.invoke, app, [*command, "--redis-url", redis_url], env=env
        )
        await until_delivered(hook)
        await hook.retry_due()

    (letter,) = [s.letter for s in letters]
    assert letter.reason is FailureReason.DELIVERY_FAILED
    assert Alert.model_validate_json(letter.payload["__data__"]) == notice
    assert failures(metrics, "dead_lettered") == 1
    assert replayed.exit_code == 0, replayed.output
    assert json.loads(replayed.output)["delivery_failed"]["scheduled"] == 1
    assert nothing.exit_code == 1, "nothing matched the second time"
    assert receiver.accepted == [str(notice.notification) + notice.fingerprint]


@contextmanager
def trickling_receiver(byte_every_s: float) -> Iterator[str]:
    """Accepts the request, then sends its answer one byte at a time."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            with connection:
                connection.recv(65_536)
                answer = b"HTTP/1.1 200 OK\r\nContent-Length: 40\r\n\r\n" + b"x" * 40
                for byte in answer:
                    if stop.wait(byte_every_s):
                        break
                    try:
                        connection.sendall(bytes([byte]))
                    except OSError:
                        break

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/hook"
    finally:
        stop.set()
        thread.join(timeout=5)
        listener.close()


@pytest.mark.timeout(30)
async def test_a_trickling_receiver_cannot_hold_an_attempt_past_its_deadline() -> None:
    """Every byte arrives well within the socket timeout; the whole answer never would."""
    with trickling_receiver(byte_every_s=0.3) as url:
        async with httpx.AsyncClient(timeout=5.0) as client:
            sink = WebhookSink(url=url, max_attempts=1, timeout_s=1.0, client=client)
            started = time.monotonic()
            with pytest.raises(Exception) as failure:
                await sink.send([band_check_alert()])
            elapsed = time.monotonic() - started

    assert "deadline" in str(failure.value)
    assert elapsed < 2.5
