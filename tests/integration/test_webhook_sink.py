"""The webhook sink against a real HTTP server on loopback that fails before it accepts."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx
import pytest
from pydantic import SecretStr

from schemas.alerts import Alert, AlertKind, AlertStatus, Severity
from services.alerts.lifecycle import fingerprint, group_key
from services.alerts.webhook import (
    DELIVERY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    DeliveryFailed,
    WebhookSink,
    verify_signature,
)
from tests.support.receiver import receiving

pytestmark = pytest.mark.integration

SECRET = SecretStr("integration-secret")


@dataclass(frozen=True)
class Received:
    status: int
    headers: dict[str, str]
    body: bytes


@dataclass
class FlakyReceiver:
    """Answers `failures` requests with 503, then 200 (or 503 forever when `failures` is None)."""

    failures: int | None
    seen: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, headers: dict[str, str], body: bytes) -> int:
        with self.lock:
            failing = self.failures is None or len(self.seen) < self.failures
            status = 503 if failing else 200
            self.seen.append(Received(status=status, headers=headers, body=body))
            return status

    @property
    def accepted(self) -> list[Received]:
        return [r for r in self.seen if r.status == 200]


@contextmanager
def serving(receiver: FlakyReceiver) -> Iterator[str]:
    with receiving(
        lambda posted: receiver.answer(posted.headers, posted.body), "/hooks/guidepost"
    ) as url:
        yield url


@pytest.fixture
def fails_twice() -> Iterator[tuple[FlakyReceiver, str]]:
    receiver = FlakyReceiver(failures=2)
    with serving(receiver) as url:
        yield receiver, url


@pytest.fixture
def always_fails() -> Iterator[tuple[FlakyReceiver, str]]:
    receiver = FlakyReceiver(failures=None)
    with serving(receiver) as url:
        yield receiver, url


async def no_sleep(seconds: float) -> None:
    return None


def band_check_alert() -> Alert:
    return Alert(
        company="QFIN",
        fingerprint=fingerprint(
            company="QFIN", period="2024Q2", kind="band_check", subject="net_income"
        ),
        group_key=group_key(company="QFIN", period="2024Q2"),
        kind=AlertKind.BAND_CHECK,
        status=AlertStatus.FIRING,
        severity=Severity.WARNING,
        period="2024Q2",
        subject="net_income",
        state="likely_below",
        summary="QFIN 2024Q2 net income is likely below guidance (P(below)=0.62).",
        details={"p_below": 0.62},
        starts_at=datetime(2024, 8, 1, 9, 0, tzinfo=UTC),
        notification=1,
    )


async def test_alert_arrives_once_signed_after_two_503s(
    fails_twice: tuple[FlakyReceiver, str],
) -> None:
    receiver, url = fails_twice
    async with httpx.AsyncClient(timeout=5.0) as client:
        sink = WebhookSink(url=url, secret=SECRET, max_attempts=5, client=client, sleep=no_sleep)

        await sink.send([band_check_alert()])

    assert [r.status for r in receiver.seen] == [503, 503, 200]
    (accepted,) = receiver.accepted
    headers = {name.lower(): value for name, value in accepted.headers.items()}
    assert verify_signature(
        SECRET,
        headers[TIMESTAMP_HEADER.lower()],
        accepted.body,
        headers[SIGNATURE_HEADER.lower()],
        max_age_s=300,
    )
    assert len({r.headers[DELIVERY_HEADER] for r in receiver.seen}) == 1
    payload = json.loads(accepted.body)
    assert [a["fingerprint"] for a in payload["alerts"]] == [band_check_alert().fingerprint]


async def test_a_receiver_that_never_recovers_raises_delivery_failed_with_the_count(
    always_fails: tuple[FlakyReceiver, str],
) -> None:
    receiver, url = always_fails
    async with httpx.AsyncClient(timeout=5.0) as client:
        sink = WebhookSink(url=url, secret=SECRET, max_attempts=3, client=client, sleep=no_sleep)

        with pytest.raises(DeliveryFailed, match="after 3 attempt") as failure:
            await sink.send([band_check_alert()])

    assert failure.value.attempts == 3
    assert failure.value.status_code == 503
    assert len(receiver.seen) == 3
    assert failure.value.payload["groupKey"] == band_check_alert().group_key


async def test_a_closed_port_fails_after_the_attempts_as_a_connection_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with httpx.AsyncClient(timeout=5.0) as client:
        sink = WebhookSink(
            url=f"http://127.0.0.1:{port}/hooks", max_attempts=2, client=client, sleep=no_sleep
        )

        with pytest.raises(DeliveryFailed) as failure:
            await sink.send([band_check_alert()])

    assert failure.value.attempts == 2
    assert failure.value.status_code is None
    assert "ConnectError" in failure.value.last_error
