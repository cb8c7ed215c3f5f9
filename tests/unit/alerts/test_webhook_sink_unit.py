"""The webhook sink against an in-process fake transport: payload, signing, retries, secrecy."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from pydantic import JsonValue, SecretStr

from schemas.alerts import Alert, AlertKind, AlertStatus, Severity
from services.alerts.events import alert_from_notification
from services.alerts.lifecycle import Observation, decide, fingerprint, group_key
from services.alerts.webhook import (
    DELIVERY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    ZERO_TIME,
    DeliveryFailed,
    WebhookSink,
    build_payload,
    encode,
    sign,
    verify_signature,
)

pytestmark = pytest.mark.unit

T0 = datetime(2024, 8, 1, 9, 0, tzinfo=UTC)
NOW_S = 1_722_502_800.0  # T0 as unix seconds
SECRET = SecretStr("s3cr3t-do-not-log")
URL = "https://hooks.example.test/guidepost"


def alert(
    *,
    kind: AlertKind = AlertKind.BAND_CHECK,
    status: AlertStatus = AlertStatus.FIRING,
    subject: str = "net_income",
    state: str | None = "likely_below",
    notification: int = 1,
) -> Alert:
    return Alert(
        company="QFIN",
        fingerprint=fingerprint(company="QFIN", period="2024Q2", kind=kind, subject=subject),
        group_key=group_key(company="QFIN", period="2024Q2"),
        kind=kind,
        status=status,
        severity=Severity.WARNING,
        period="2024Q2",
        subject=subject,
        state=state,
        summary="QFIN 2024Q2 net income is likely below guidance.",
        details={"p_below": 0.62},
        starts_at=T0,
        ends_at=T0 + timedelta(hours=5) if status is AlertStatus.RESOLVED else None,
        notification=notification,
    )


@dataclass
class ScriptedEndpoint:
    """A fake receiver: answers each request with the next scripted response (or raises)."""

    script: list[int | Exception]
    retry_after: str | None = None
    requests: list[httpx.Request] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        step = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        if isinstance(step, Exception):
            raise step
        headers = {"Retry-After": self.retry_after} if self.retry_after else {}
        return httpx.Response(step, headers=headers)


@dataclass
class RecordedSleep:
    delays: list[float] = field(default_factory=list)

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def ticking_clock(start: float = NOW_S, step: float = 1.0) -> Callable[[], float]:
    ticks: Iterator[float] = (start + step * n for n in range(10_000))
    return lambda: next(ticks)


def sink(
    endpoint: ScriptedEndpoint,
    sleep: RecordedSleep,
    *,
    secret: SecretStr | None = SECRET,
    max_attempts: int = 4,
    jitter: float = 0.0,
    clock: Callable[[], float] | None = None,
) -> WebhookSink:
    return WebhookSink(
        url=URL,
        secret=secret,
        external_url="https://guidepost.example.test",
        max_attempts=max_attempts,
        base_delay_s=1.0,
        max_delay_s=8.0,
        client=httpx.AsyncClient(transport=httpx.MockTransport(endpoint)),
        sleep=sleep,
        clock=clock or (lambda: NOW_S),
        jitter=lambda: jitter,
    )


# --------------------------------------------------------------------------- payload


def as_sent(payload: Mapping[str, JsonValue]) -> dict[str, Any]:
    """The payload as a receiver decodes it from the exact bytes sent."""
    decoded: dict[str, Any] = json.loads(encode(payload))
    return decoded


def test_payload_follows_alertmanager_version_4() -> None:
    payload = as_sent(
        build_payload(
            [alert(), alert(kind=AlertKind.OUTCOME, subject="revenue", state=None)],
            receiver="ops",
            external_url="https://guidepost.example.test",
        )
    )

    assert payload["version"] == "4"
    assert payload["status"] == "firing"
    assert payload["receiver"] == "ops"
    assert payload["groupKey"] == group_key(company="QFIN", period="2024Q2")
    assert payload["commonLabels"] == {"company": "QFIN", "period": "2024Q2", "severity": "warning"}
    assert payload["externalURL"] == "https://guidepost.example.test"
    first = payload["alerts"][0]
    assert first == {
        "status": "firing",
        "labels": {
            "alertname": "band_check",
            "company": "QFIN",
            "period": "2024Q2",
            "subject": "net_income",
            "severity": "warning",
            "state": "likely_below",
        },
        "annotations": {
            "summary": "QFIN 2024Q2 net income is likely below guidance.",
            "description": "p_below=0.62",
            "notification": "1",
        },
        "startsAt": "2024-08-01T09:00:00Z",
        "endsAt": ZERO_TIME,
        "fingerprint": alert().fingerprint,
        "generatorURL": "https://guidepost.example.test/companies/QFIN",
    }
    assert "state" not in payload["alerts"][1]["labels"]


def test_payload_of_only_resolved_alerts_is_resolved_with_end_times() -> None:
    payload = as_sent(
        build_payload([alert(status=AlertStatus.RESOLVED, notification=2)], receiver="ops")
    )

    assert payload["status"] == "resolved"
    assert payload["alerts"][0]["endsAt"] == "2024-08-01T14:00:00Z"
    assert payload["alerts"][0]["generatorURL"] == ""


def test_payload_refuses_alerts_of_different_groups_or_none() -> None:
    other = alert().model_copy(update={"group_key": group_key(company="LX", period="2024Q2")})

    with pytest.raises(ValueError, match="must share a group_key"):
        build_payload([alert(), other], receiver="ops")
    with pytest.raises(ValueError, match="at least one alert"):
        build_payload([], receiver="ops")


def test_a_lifecycle_notice_becomes_an_alert_with_a_stable_event_id() -> None:
    observation = Observation(
        company="QFIN",
        period="2024Q2",
        kind="band_check",
        subject="net_income",
        condition="firing",
        severity="warning",
        state="likely_below",
        summary="At risk.",
        details={"p_below": 0.62, "band": [1.0, 1.2]},
        observed_at=T0,
    )
    decision = decide(
        observation,
        None,
        now=T0,
        repeat_interval=timedelta(days=1),
        silenced=False,
        inhibited=False,
    )
    assert decision.notification is not None

    first = alert_from_notification(decision.notification)
    again = alert_from_notification(decision.notification)

    assert first.event_id == again.event_id
    assert (first.kind, first.status, first.notification) == (
        AlertKind.BAND_CHECK,
        AlertStatus.FIRING,
        1,
    )
    assert first.details == {"p_below": 0.62, "band": [1.0, 1.2]}
    assert first.group_key == group_key(company="QFIN", period="2024Q2")


# --------------------------------------------------------------------------- signing


def test_signature_verifies_over_timestamp_and_exact_body() -> None:
    body = encode(build_payload([alert()], receiver="ops"))
    header = sign(SECRET, "1722502800", body)

    assert header.startswith("sha256=")
    assert verify_signature(SECRET, "1722502800", body, header)
    assert verify_signature("s3cr3t-do-not-log", "1722502800", body, header)
    assert not verify_signature(SECRET, "1722502801", body, header)
    assert not verify_signature(SECRET, "1722502800", body + b" ", header)
    assert not verify_signature(SecretStr("other"), "1722502800", body, header)


def test_a_stale_timestamp_is_refused_when_a_max_age_is_given() -> None:
    body = b"{}"
    header = sign(SECRET, "1722502800", body)

    assert verify_signature(SECRET, "1722502800", body, header, max_age_s=300, now=NOW_S + 299)
    assert not verify_signature(SECRET, "1722502800", body, header, max_age_s=300, now=NOW_S + 301)


async def test_every_attempt_is_signed_afresh_and_carries_one_delivery_id() -> None:
    endpoint = ScriptedEndpoint(script=[503, 503, 200])
    webhook = sink(endpoint, RecordedSleep(), clock=ticking_clock())

    await webhook.send([alert()])

    timestamps = [r.headers[TIMESTAMP_HEADER] for r in endpoint.requests]
    assert len(set(timestamps)) == 3
    assert len({r.headers[DELIVERY_HEADER] for r in endpoint.requests}) == 1
    assert all(
        verify_signature(
            SECRET, r.headers[TIMESTAMP_HEADER], r.content, r.headers[SIGNATURE_HEADER]
        )
        for r in endpoint.requests
    )


async def test_without_a_secret_nothing_is_signed() -> None:
    endpoint = ScriptedEndpoint(script=[200])
    webhook = sink(endpoint, RecordedSleep(), secret=None)

    await webhook.send([alert()])

    assert SIGNATURE_HEADER not in endpoint.requests[0].headers
    assert json.loads(endpoint.requests[0].content)["version"] == "4"


# --------------------------------------------------------------------------- retries


async def test_server_errors_are_retried_with_exponential_backoff() -> None:
    endpoint = ScriptedEndpoint(script=[500, 502, 503, 200])
    sleep = RecordedSleep()

    attempts = await sink(endpoint, sleep, jitter=1.0).deliver(
        build_payload([alert()], receiver="ops")
    )

    assert attempts == 4
    assert sleep.delays == [1.0, 2.0, 4.0]


async def test_jitter_keeps_each_delay_between_half_and_all_of_the_step() -> None:
    endpoint = ScriptedEndpoint(script=[503, 503, 503, 503, 503, 200])
    sleep = RecordedSleep()

    await sink(endpoint, sleep, jitter=0.0, max_attempts=6).send([alert()])

    assert sleep.delays == [0.5, 1.0, 2.0, 4.0, 4.0]


async def test_retry_after_seconds_are_honoured() -> None:
    endpoint = ScriptedEndpoint(script=[429, 200], retry_after="7")
    sleep = RecordedSleep()

    await sink(endpoint, sleep).send([alert()])

    assert sleep.delays == [7.0]


async def test_retry_after_as_an_http_date_is_honoured() -> None:
    endpoint = ScriptedEndpoint(script=[503, 200], retry_after="Thu, 01 Aug 2024 09:00:30 GMT")
    sleep = RecordedSleep()

    await sink(endpoint, sleep).send([alert()])

    assert sleep.delays == [30.0]


@pytest.mark.parametrize(
    "error",
    [
        httpx.ConnectError("connection refused"),
        httpx.ReadTimeout("read timed out"),
        httpx.RemoteProtocolError("server disconnected"),
    ],
)
async def test_transport_errors_are_retried_then_fail_with_the_payload(
    error: Exception,
) -> None:
    endpoint = ScriptedEndpoint(script=[error])
    sleep = RecordedSleep()
    payload = build_payload([alert()], receiver="ops")

    with pytest.raises(DeliveryFailed, match="after 4 attempt") as failure:
        await sink(endpoint, sleep, max_attempts=4).deliver(payload)

    assert failure.value.attempts == 4
    assert failure.value.payload == payload
    assert type(error).__name__ in failure.value.last_error
    assert failure.value.retryable
    assert len(endpoint.requests) == 4
    assert len(sleep.delays) == 3


@pytest.mark.parametrize("status", [400, 401, 404, 413])
async def test_client_errors_fail_at_once_without_retrying(status: int) -> None:
    endpoint = ScriptedEndpoint(script=[status])
    sleep = RecordedSleep()

    with pytest.raises(DeliveryFailed) as failure:
        await sink(endpoint, sleep).send([alert()])

    assert (failure.value.attempts, failure.value.status_code) == (1, status)
    assert not failure.value.retryable
    assert sleep.delays == []


async def test_the_secret_never_appears_in_logs_reprs_or_errors(
    caplog: pytest.LogCaptureFixture,
) -> None:
    endpoint = ScriptedEndpoint(script=[503])
    webhook = WebhookSink(
        url="https://user:pa55@hooks.example.test:8443/guidepost?token=abc",
        secret=SECRET,
        max_attempts=3,
        client=httpx.AsyncClient(transport=httpx.MockTransport(endpoint)),
        sleep=RecordedSleep(),
        jitter=lambda: 0.0,
    )
    caplog.set_level(logging.DEBUG)

    with pytest.raises(DeliveryFailed) as failure:
        await webhook.send([alert()])

    ours = [r.getMessage() for r in caplog.records if r.name.startswith("services.alerts")]
    said = " ".join([*ours, repr(webhook), str(failure.value), repr(failure.value.payload)])
    assert len(ours) == 2
    assert "s3cr3t-do-not-log" not in caplog.text
    for secret in ("s3cr3t-do-not-log", "pa55", "token=abc", "/guidepost"):
        assert secret not in said


def test_max_attempts_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_attempts must be at least 1, got 0"):
        WebhookSink(url=URL, max_attempts=0)
