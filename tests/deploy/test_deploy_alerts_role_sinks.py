"""The alerts worker as the `alerts` Redis user of the shipped ACL, delivering to a webhook and to
Alertmanager: first with both receivers up (notices, one POST per group, reposts), then with
Alertmanager down (its notices wait in the redelivery schedule, are retried, and delivered when it
is back). The ACL log must stay empty: every command and key the sinks use is granted."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
import redis.asyncio as aioredis

from schemas.alerts import AlertKind, AlertSignal, Severity
from schemas.streams import Streams
from services.app import build_workers, running
from services.common.settings import WorkerSettings
from services.common.wire import entry_fields
from tests.deploy.acl_servers import ADMIN, FLAVOURS, NAMESPACE, AclServer, acl_server
from tests.support.receiver import receiving

pytestmark = [pytest.mark.deploy, pytest.mark.integration]


@dataclass
class Receiver:
    """Takes POSTs while `up`; records the alerts of each accepted body by path."""

    up: bool = True
    refused: int = 0
    bodies: dict[str, list[Any]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, path: str, body: bytes) -> int:
        with self.lock:
            if not self.up:
                self.refused += 1
                return 503
            self.bodies.setdefault(path, []).append(json.loads(body))
            return 200

    def posts(self, path: str) -> list[Any]:
        with self.lock:
            return list(self.bodies.get(path, []))


@contextmanager
def serving(receiver: Receiver) -> Iterator[str]:
    with receiving(lambda posted: receiver.answer(posted.path, posted.body)) as url:
        yield url


def signal(subject: str, state: str, company: str = "ACLCO") -> AlertSignal:
    return AlertSignal(
        company=company,
        producer="guidepost-guidance",
        kind=AlertKind.BAND_CHECK,
        period="2024Q2",
        subject=subject,
        severity=Severity.WARNING,
        state=state,
        summary=f"{company} {subject} 2024Q2 is {state}.",
        details={"p_below": 0.6},
        occurred_at=datetime.now(UTC),
    )


async def until(what: str, done: Callable[[], bool], timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while not done():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def deliver_as_the_alerts_role(server: AclServer) -> tuple[Receiver, list[dict[str, Any]]]:
    receiver = Receiver()
    streams = Streams(NAMESPACE)
    admin = aioredis.Redis(port=server.port, username=ADMIN, password=server.admin_password)
    with serving(receiver) as url:
        settings = WorkerSettings.model_validate(
            {
                "redis_url": server.url,
                "redis_username": "alerts",
                "redis_password": server.passwords["alerts"],
                "namespace": NAMESPACE,
                "services": ["alerts"],
                "block_ms": 50,
                "webhook_url": f"{url}/hook",
                "alertmanager_url": f"{url}/am",
                "alertmanager_repost_interval_s": 0.3,
                "webhook_retry_base_s": 0.2,
                "webhook_retry_max_delay_s": 0.4,
                "webhook_max_attempts": 1,
            }
        )
        workers = build_workers(settings)
        try:
            async with running(workers):
                async with admin.pipeline(transaction=True) as pipe:  # one batch, one group
                    for subject, state in (
                        ("net_income", "likely_below"),
                        ("revenue", "likely_inside"),
                    ):
                        pipe.xadd(streams.signals, entry_fields(signal(subject, state)))  # type: ignore[arg-type]
                    await pipe.execute()
                await until("both notices at both receivers", lambda: _alerts(receiver, "/am") >= 2
                            and _alerts(receiver, "/hook") >= 2)  # fmt: skip
                await until("a repost round", lambda: len(receiver.posts("/am/api/v2/alerts")) >= 3)
                receiver.up = False
                changed = signal("net_income", "likely_inside")
                await admin.xadd(streams.signals, entry_fields(changed))  # type: ignore[arg-type]
                await until("retries refused", lambda: receiver.refused >= 3)
                receiver.up = True
                await until(
                    "the change delivered once back", lambda: _alerts(receiver, "/hook") >= 3
                )
                await until(
                    "the change at Alertmanager", lambda: _states(receiver) >= {"likely_inside"}
                )
        finally:
            await workers.redis.aclose()
            await admin.aclose()
    return receiver, server.denials()


def _alerts(receiver: Receiver, prefix: str) -> int:
    if prefix == "/hook":
        return sum(len(body["alerts"]) for body in receiver.posts("/hook"))
    return sum(len(body) for body in receiver.posts("/am/api/v2/alerts"))


def _states(receiver: Receiver) -> set[str]:
    posts = receiver.posts("/am/api/v2/alerts")
    return {
        alert["annotations"]["state"]
        for body in posts[-3:]
        for alert in body
        if alert["labels"]["subject"] == "net_income"
    }


@pytest.mark.timeout(120)
@pytest.mark.parametrize("flavour", FLAVOURS)
async def test_the_alerts_role_delivers_to_a_webhook_and_alertmanager_with_nothing_refused(
    flavour: str,
) -> None:
    with acl_server(flavour) as server:
        receiver, denials = await deliver_as_the_alerts_role(server)

    assert denials == []
    hook = receiver.posts("/hook")
    assert [len(body["alerts"]) for body in hook[:1]] == [2], "one POST for the group"
    assert receiver.refused >= 3, "the receivers were down and the schedule retried"
