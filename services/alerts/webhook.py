"""Deliver alerts to a webhook as an Alertmanager-style (version 4) JSON payload.

Signing. With a secret configured, every attempt carries

    X-Guidepost-Timestamp: <unix seconds when the attempt was signed>
    X-Guidepost-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>

where `body` is the exact request body in bytes. Binding the timestamp into the MAC lets a receiver
reject replays: verify the signature over the raw body, then refuse timestamps older than a few
minutes (`verify_signature(..., max_age_s=300)`). `X-Guidepost-Delivery` is the same on every
retry of one payload, so a receiver can drop the duplicate when an accepted request's response
was lost and we sent it again: delivery is at-least-once.

Retries. Connection errors, timeouts, 429 and 5xx are retried with exponential backoff and jitter,
waiting at least what a `Retry-After` header asks. Other statuses (400, 401, 404, ...) cannot get
better by waiting and fail at once. Either way the sink raises `DeliveryFailed` carrying the
payload, so the caller can schedule it again or dead-letter it: an alert is never dropped
silently.

Deadline. Each attempt has a total deadline (`timeout_s`, connecting, sending and reading the
answer all included): socket timeouts alone bound each read, so a receiver trickling a byte
every few seconds could otherwise hold one attempt for minutes.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Protocol
from urllib.parse import quote

import httpx
from pydantic import JsonValue, SecretStr

from schemas.alerts import Alert, AlertStatus

log = logging.getLogger(__name__)

PAYLOAD_VERSION = "4"
SIGNATURE_HEADER = "X-Guidepost-Signature"
TIMESTAMP_HEADER = "X-Guidepost-Timestamp"
DELIVERY_HEADER = "X-Guidepost-Delivery"
ZERO_TIME = "0001-01-01T00:00:00Z"  # Alertmanager's endsAt for an alert still firing

Sleep = Callable[[float], Awaitable[None]]
Clock = Callable[[], float]


class AlertSink(Protocol):
    """Where notifications go. The webhook below is one; tests use an in-memory fake."""

    async def send(self, alerts: Sequence[Alert], *, max_attempts: int | None = None) -> None: ...


class DeliveryFailed(Exception):  # noqa: N818 - the name the callers and the brief use
    """The webhook would not take the payload; dead-letter `payload`, do not drop it."""

    def __init__(
        self,
        *,
        payload: JsonValue,
        last_error: str,
        attempts: int,
        status_code: int | None,
        retryable: bool,
    ) -> None:
        self.payload = payload
        self.last_error = last_error
        self.attempts = attempts
        self.status_code = status_code
        self.retryable = retryable
        super().__init__(f"delivery failed after {attempts} attempt(s): {last_error}")


# --------------------------------------------------------------------------- payload


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _labels(alert: Alert) -> dict[str, str]:
    labels = {
        "alertname": alert.kind.value,
        "company": alert.company,
        "period": alert.period,
        "subject": alert.subject,
        "severity": alert.severity.value,
    }
    if alert.state:  # Alertmanager treats an empty label as absent
        labels["state"] = alert.state
    return labels


def _describe(details: Mapping[str, JsonValue]) -> str:
    parts = (f"{key}={json.dumps(value, ensure_ascii=False)}" for key, value in details.items())
    return "; ".join(sorted(parts))


def _annotations(alert: Alert) -> dict[str, str]:
    return {
        "summary": alert.summary,
        "description": _describe(alert.details),
        "notification": str(alert.notification),
    }


def status_page_url(external_url: str, company: str) -> str:
    """The company's page on Guidepost's status page ("" when no external URL is set)."""
    if not external_url:
        return ""
    return f"{external_url.rstrip('/')}/companies/{quote(company, safe='')}"


def _generator_url(external_url: str, alert: Alert) -> str:
    return status_page_url(external_url, alert.company)


def _alert_entry(alert: Alert, *, external_url: str) -> dict[str, JsonValue]:
    return {
        "status": alert.status.value,
        "labels": dict(_labels(alert)),
        "annotations": dict(_annotations(alert)),
        "startsAt": _rfc3339(alert.starts_at),
        "endsAt": _rfc3339(alert.ends_at) if alert.ends_at else ZERO_TIME,
        "fingerprint": alert.fingerprint,
        "generatorURL": _generator_url(external_url, alert),
    }


def _common(maps: Sequence[Mapping[str, str]]) -> dict[str, str]:
    """The pairs every map shares, as Alertmanager's commonLabels / commonAnnotations."""
    first, *rest = maps
    return {key: value for key, value in first.items() if all(m.get(key) == value for m in rest)}


def build_payload(
    alerts: Sequence[Alert], *, receiver: str, external_url: str = ""
) -> dict[str, JsonValue]:
    """One Alertmanager version-4 webhook body for alerts of one group."""
    if not alerts:
        raise ValueError("build_payload needs at least one alert; there is nothing to send")
    group_keys = sorted({alert.group_key for alert in alerts})
    if len(group_keys) > 1:
        raise ValueError(f"alerts of one payload must share a group_key; got {group_keys}")
    firing = any(alert.status is AlertStatus.FIRING for alert in alerts)
    return {
        "version": PAYLOAD_VERSION,
        "status": (AlertStatus.FIRING if firing else AlertStatus.RESOLVED).value,
        "receiver": receiver,
        "groupKey": group_keys[0],
        "truncatedAlerts": 0,
        "groupLabels": {"company": alerts[0].company, "period": alerts[0].period},
        "commonLabels": dict(_common([_labels(alert) for alert in alerts])),
        "commonAnnotations": dict(_common([_annotations(alert) for alert in alerts])),
        "externalURL": external_url,
        "alerts": [_alert_entry(alert, external_url=external_url) for alert in alerts],
    }


def notice_batches(alerts: Sequence[Alert], *, max_size: int) -> list[list[Alert]]:
    """Alerts to post together: one batch per group key (in order of first appearance), split
    where an alert would appear twice (each of its notices is sent in order) or past `max_size`.
    """
    if max_size < 1:
        raise ValueError(f"max_size must be at least 1, got {max_size}")
    batches: list[list[Alert]] = []
    open_batch: dict[str, list[Alert]] = {}
    for alert in alerts:
        batch = open_batch.get(alert.group_key)
        if (
            batch is None
            or len(batch) >= max_size
            or any(a.fingerprint == alert.fingerprint for a in batch)
        ):
            batch = open_batch[alert.group_key] = []
            batches.append(batch)
        batch.append(alert)
    return batches


def encode(payload: JsonValue) -> bytes:
    """The exact bytes sent and signed: compact JSON with sorted keys."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


# --------------------------------------------------------------------------- signing


def _secret_bytes(secret: SecretStr | str | bytes) -> bytes:
    if isinstance(secret, SecretStr):
        return secret.get_secret_value().encode()
    return secret.encode() if isinstance(secret, str) else secret


def sign(secret: SecretStr | str | bytes, timestamp: str, body: bytes) -> str:
    """`sha256=<hex>` of HMAC-SHA256 over `timestamp + "." + body`."""
    digest = hmac.new(_secret_bytes(secret), timestamp.encode() + b"." + body, hashlib.sha256)
    return f"sha256={digest.hexdigest()}"


def verify_signature(
    secret: SecretStr | str | bytes,
    timestamp: str,
    body: bytes,
    header: str,
    *,
    max_age_s: float | None = None,
    now: float | None = None,
) -> bool:
    """True if `header` signs `timestamp` and `body` (and, given `max_age_s`, is fresh)."""
    if not hmac.compare_digest(sign(secret, timestamp, body), header.strip()):
        return False
    if max_age_s is None:
        return True
    try:
        age = (time.time() if now is None else now) - int(timestamp)
    except ValueError:
        return False
    return -max_age_s <= age <= max_age_s


# --------------------------------------------------------------------------- delivery


def _retry_after_s(response: httpx.Response, *, now: float) -> float | None:
    """Seconds a `Retry-After` header asks for: delta-seconds or an HTTP date."""
    value = response.headers.get("retry-after")
    if value is None:
        return None
    if value.strip().isdigit():
        return float(value)
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - now)
    except (TypeError, ValueError):
        return None


def _is_retryable(status_code: int) -> bool:
    return status_code == 429 or status_code >= 500


class WebhookSink:
    """POSTs alert groups to one URL, signed, retried with backoff; raises `DeliveryFailed`."""

    def __init__(
        self,
        *,
        url: str,
        secret: SecretStr | None = None,
        receiver: str = "guidepost",
        external_url: str = "",
        max_attempts: int = 5,
        base_delay_s: float = 0.5,
        max_delay_s: float = 30.0,
        max_retry_after_s: float = 300.0,
        timeout_s: float = 10.0,
        client: httpx.AsyncClient | None = None,
        sleep: Sleep = asyncio.sleep,
        clock: Clock = time.time,
        jitter: Callable[[], float] = random.random,
        name: str = "webhook",
    ) -> None:
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {max_attempts}")
        self._url = url
        self._secret = secret
        self._receiver = receiver
        self._external_url = external_url
        self._max_attempts = max_attempts
        self._base_delay_s = base_delay_s
        self._max_delay_s = max_delay_s
        self._max_retry_after_s = max_retry_after_s
        self._deadline_s = timeout_s
        self._client = client or httpx.AsyncClient(timeout=timeout_s)
        self._owns_client = client is None
        self._sleep = sleep
        self._clock = clock
        self._jitter = jitter
        self._name = name

    def __repr__(self) -> str:  # never show the secret, nor credentials in the URL
        signed = self._secret is not None
        return f"WebhookSink(name={self._name!r}, url={self._safe_url!r}, signed={signed})"

    @property
    def _safe_url(self) -> str:
        # Only scheme and host: webhook URLs often carry a token in userinfo, path or query.
        url = httpx.URL(self._url)
        return f"{url.scheme}://{url.host}" + (f":{url.port}" if url.port else "")

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()

    async def send(self, alerts: Sequence[Alert], *, max_attempts: int | None = None) -> None:
        payload = build_payload(alerts, receiver=self._receiver, external_url=self._external_url)
        await self.deliver(payload, max_attempts=max_attempts)

    async def deliver(self, payload: JsonValue, *, max_attempts: int | None = None) -> int:
        """POST until accepted (at most `max_attempts`, the sink's own by default); return the
        number of attempts it took."""
        body = encode(payload)
        delivery_id = hashlib.sha256(body).hexdigest()[:32]
        limit = max_attempts or self._max_attempts
        for attempt in range(1, limit + 1):
            outcome = await self._attempt(body, delivery_id=delivery_id)
            if outcome.accepted:
                return attempt
            if not outcome.retryable or attempt == limit:
                raise DeliveryFailed(
                    payload=payload,
                    last_error=outcome.error,
                    attempts=attempt,
                    status_code=outcome.status_code,
                    retryable=outcome.retryable,
                )
            delay = self._delay_s(attempt, retry_after_s=outcome.retry_after_s)
            log.warning(
                "%s %s attempt %d/%d failed (%s); retrying in %.2fs",
                self._name,
                self._safe_url,
                attempt,
                limit,
                outcome.error,
                delay,
            )
            await self._sleep(delay)
        raise AssertionError("unreachable: the loop returns or raises")  # pragma: no cover

    async def _attempt(self, body: bytes, *, delivery_id: str) -> _Outcome:
        headers = self._headers(body, delivery_id=delivery_id)
        try:
            async with asyncio.timeout(self._deadline_s):  # the whole exchange, not each read
                response = await self._client.post(self._url, content=body, headers=headers)
        except TimeoutError:
            return _Outcome(
                accepted=False,
                error=f"no complete answer within the {self._deadline_s:g}s deadline",
                retryable=True,
            )
        except httpx.TransportError as error:  # connection refused, reset, timeouts
            return _Outcome(
                accepted=False, error=f"{type(error).__name__}: {error}", retryable=True
            )
        if response.is_success:
            return _Outcome(accepted=True)
        return _Outcome(
            accepted=False,
            error=f"HTTP {response.status_code} {response.reason_phrase}",
            retryable=_is_retryable(response.status_code),
            status_code=response.status_code,
            retry_after_s=_retry_after_s(response, now=self._clock()),
        )

    def _headers(self, body: bytes, *, delivery_id: str) -> dict[str, str]:
        headers = {"Content-Type": "application/json", DELIVERY_HEADER: delivery_id}
        if self._secret is not None:
            timestamp = str(int(self._clock()))
            headers[TIMESTAMP_HEADER] = timestamp
            headers[SIGNATURE_HEADER] = sign(self._secret, timestamp, body)
        return headers

    def _delay_s(self, attempt: int, *, retry_after_s: float | None) -> float:
        """Exponential backoff with equal jitter, never shorter than Retry-After (capped)."""
        ceiling = min(self._max_delay_s, self._base_delay_s * 2.0 ** (attempt - 1))
        backoff = ceiling / 2 + self._jitter() * ceiling / 2
        if retry_after_s is None:
            return backoff
        return max(backoff, min(retry_after_s, self._max_retry_after_s))


@dataclass(frozen=True, kw_only=True)
class _Outcome:
    accepted: bool
    error: str = ""
    retryable: bool = False
    status_code: int | None = None
    retry_after_s: float | None = None
