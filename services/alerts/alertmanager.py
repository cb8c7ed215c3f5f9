"""Post alerts to Alertmanager (`POST /api/v2/alerts`), the way Prometheus does.

Identity. Alertmanager tells alerts apart by their labels, so the labels are the alert's identity
and nothing else: `alertname` (the kind), `company`, `period`, `subject`, plus the constant labels
an operator routes on (`GUIDEPOST_ALERTMANAGER_LABELS`). A band check whose call moves from
likely_inside to likely_below stays one alert: its state, severity, summary and numbers are
annotations, updated in place. (Severity changes within one alert, so it is no label either.)

Firing. A firing alert is posted with `endsAt` four repost intervals ahead and posted again every
interval (`run_reposts`) while Guidepost holds it firing, so it outlives Alertmanager's
`resolve_timeout`, and ends by itself within four intervals if Guidepost stops posting. Alerts
that report news rather than a lasting condition (a guidance revision, an outcome, a
restatement, a change point: Guidepost never clears them) are posted once without `endsAt`:
Alertmanager ends them after its `resolve_timeout`.

Resolved. A resolved notice is posted with `endsAt` at the time Guidepost saw the condition end.
Each repost round also reconciles with the alerts worker's records: an alert the records no
longer hold firing (its resolved notice not yet through, say) is posted resolved.

Order. Notices of one alert can reach the sink out of order (several consumers, a retried
notice). Each alert's newest notice posted is kept in Redis (`{alertmanager}:alerts`, updated
under WATCH): an older notice than that is not posted, so a late firing notice cannot reopen a
resolved alert. A firing notice the records already moved past is skipped too (its successor
is on the stream), so catching up on a backlog posts each alert's final state, not every step.

Delivery is `WebhookDelivery`'s under the name `alertmanager`: its own consumer group, leases,
delivered marks, redelivery schedule with backoff and dead letters; each POST has a total
deadline. With several Alertmanagers (a cluster), every one gets every post; a post counts as
delivered when one took it (the next repost round reaches the others).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol

import httpx
from pydantic import JsonValue

from schemas.alerts import Alert, AlertStatus
from schemas.money import plain_decimal
from services.alerts.lifecycle import AlertRecord
from services.alerts.posted import NEWS_KINDS, Posted, is_news
from services.alerts.posted import notice_order as _order
from services.alerts.redelivery import Backoff as RetryBackoff
from services.alerts.service import WebhookDelivery
from services.alerts.store import AlertRecords, AlertStores, PostedAlerts
from services.alerts.webhook import DeliveryFailed, WebhookSink, status_page_url
from services.common.health import Backoff
from services.common.metrics import NO_METRICS, RepostMetrics, WebhookMetrics
from services.common.settings import LABEL_NAME, WorkerSettings

log = logging.getLogger(__name__)

SINK = "alertmanager"
API_PATH = "/api/v2/alerts"
VALIDITY_INTERVALS = 4  # a firing post is valid for this many repost intervals (as Prometheus)
RETENTION_S = 30 * 24 * 3600  # an ended alert's order is kept as long as delivered marks
MAX_DESCRIPTION = 4_000
MAX_ANNOTATION_VALUE = 500
MAX_DETAIL_ANNOTATIONS = 40
POSTS_PER_REQUEST = 500
OWN_ANNOTATIONS = frozenset(
    {"summary", "description", "severity", "state", "fingerprint", "notification"}
)


# --------------------------------------------------------------------------- the alert


def api_url(base: str) -> str:
    """Alertmanager's alerts endpoint under `base` (which may carry a route prefix)."""
    trimmed = base.rstrip("/")
    return trimmed if trimmed.endswith(API_PATH) else trimmed + API_PATH


def identity_labels(alert: Alert, constant: Mapping[str, str]) -> dict[str, str]:
    return {
        **constant,
        "alertname": alert.kind.value,
        "company": alert.company,
        "period": alert.period,
        "subject": alert.subject,
    }


def plain_number(value: float | int | Decimal) -> str:
    """A number in plain notation (no exponent): 242000000000, not 2.42E+11."""
    if isinstance(value, bool):
        return str(value).lower()
    text = repr(value) if isinstance(value, float) else str(value)
    if "e" not in text.lower():
        return text
    return plain_decimal(Decimal(text))


def _annotation_value(value: JsonValue) -> str:
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, int | float):
        return plain_number(value)
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True, allow_nan=False)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def alert_annotations(alert: Alert) -> dict[str, str]:
    """State, severity, summary and numbers: what may change while the alert stays one."""
    found = {
        "summary": alert.summary,
        "severity": alert.severity.value,
        "state": alert.state or "",
        "fingerprint": alert.fingerprint,
        "notification": str(alert.notification),
        "description": _cut(
            "; ".join(
                f"{key}={_annotation_value(value)}" for key, value in sorted(alert.details.items())
            ),
            MAX_DESCRIPTION,
        ),
    }
    scalars = [
        (key, value)
        for key, value in sorted(alert.details.items())
        if not isinstance(value, dict | list) and value is not None
    ]
    for key, value in scalars[:MAX_DETAIL_ANNOTATIONS]:
        if LABEL_NAME.fullmatch(key) and key not in OWN_ANNOTATIONS:
            found[key] = _cut(_annotation_value(value), MAX_ANNOTATION_VALUE)
    return {name: value for name, value in found.items() if value}


def postable_alert(
    alert: Alert,
    *,
    ends_at: datetime | None,
    constant_labels: Mapping[str, str],
    external_url: str,
) -> dict[str, JsonValue]:
    """One element of `POST /api/v2/alerts` (`ends_at` None: Alertmanager's resolve_timeout)."""
    entry: dict[str, JsonValue] = {
        "labels": dict(identity_labels(alert, constant_labels)),
        "annotations": dict(alert_annotations(alert)),
        "startsAt": _rfc3339(alert.starts_at),
    }
    if ends_at is not None:
        entry["endsAt"] = _rfc3339(max(ends_at, alert.starts_at))
    link = status_page_url(external_url, alert.company)
    if link:
        entry["generatorURL"] = link
    return entry


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


# --------------------------------------------------------------------------- the sink


class AlertmanagerSink:
    """An `AlertSink` for `WebhookDelivery`: posts notices, keeps firing alerts alive."""

    def __init__(
        self,
        *,
        urls: Sequence[str],
        posted: PostedAlerts,
        records: AlertRecords,
        repost_interval_s: float = 60.0,
        constant_labels: Mapping[str, str] | None = None,
        external_url: str = "",
        max_attempts: int = 5,
        timeout_s: float = 10.0,
        client: httpx.AsyncClient | None = None,
        metrics: RepostMetrics = NO_METRICS,
        clock: Callable[[], float] = time.time,
        **poster_options: Any,
    ) -> None:
        if not urls:
            raise ValueError("AlertmanagerSink needs at least one Alertmanager URL")
        self._records = records
        self.repost_interval_s = repost_interval_s
        self._labels = dict(constant_labels or {})
        self._external_url = external_url
        self._clock = clock
        self._metrics = metrics
        self.posted = posted
        self.loop_health = Backoff("the Alertmanager repost loop", logger=log)
        self._posters = [
            WebhookSink(
                url=api_url(url),
                max_attempts=max_attempts,
                timeout_s=timeout_s,
                client=client,
                clock=clock,
                name=SINK,
                **poster_options,
            )
            for url in urls
        ]

    def __repr__(self) -> str:
        return f"AlertmanagerSink({', '.join(repr(p) for p in self._posters)})"

    @property
    def validity(self) -> timedelta:
        return timedelta(seconds=self.repost_interval_s * VALIDITY_INTERVALS)

    async def aclose(self) -> None:
        for poster in self._posters:
            await poster.aclose()

    # -- notices

    async def send(self, alerts: Sequence[Alert], *, max_attempts: int | None = None) -> None:
        """Post the notices that are still each alert's newest; raise `DeliveryFailed` when no
        Alertmanager took them."""
        superseded = await self._superseded(alerts)
        now = self._clock()
        current = [
            alert
            for alert in alerts
            if alert.event_id not in superseded and await self.posted.advance(alert, now=now)
        ]
        if current:
            await self._post([self._postable(alert) for alert in current], max_attempts)

    def _postable(self, alert: Alert) -> dict[str, JsonValue]:
        """Resolved: ends when it ended; firing: valid for four intervals; news: no end (the
        Alertmanager's resolve_timeout)."""
        now = datetime.fromtimestamp(self._clock(), UTC)
        ends_at: datetime | None = None
        if alert.status is AlertStatus.RESOLVED:
            ends_at = alert.ends_at or now
        elif not is_news(alert):
            ends_at = now + self.validity
        return postable_alert(
            alert, ends_at=ends_at, constant_labels=self._labels, external_url=self._external_url
        )

    async def _superseded(self, alerts: Sequence[Alert]) -> set[str]:
        """Firing notices the alerts worker's records already moved past."""
        firing = [a for a in alerts if a.status is AlertStatus.FIRING]
        records = await self._records_of([(a.company, a.fingerprint) for a in firing])
        return {
            alert.event_id
            for alert, record in zip(firing, records, strict=True)
            if record is not None and (record.starts_at, record.notifications) > _order(alert)
        }

    async def _records_of(self, keys: list[tuple[str, str]]) -> list[AlertRecord | None]:
        return await self._records.find(keys)

    async def _post(self, body: list[dict[str, JsonValue]], max_attempts: int | None) -> None:
        outcomes = await asyncio.gather(
            *(poster.deliver(list(body), max_attempts=max_attempts) for poster in self._posters),
            return_exceptions=True,
        )
        failures = [o for o in outcomes if isinstance(o, BaseException)]
        if len(failures) < len(outcomes):
            for failure in failures:  # the next repost round reaches the others
                log.warning("an Alertmanager did not take a post: %s", failure)
            return
        refused = [f for f in failures if isinstance(f, DeliveryFailed)]
        if len(refused) < len(failures):
            raise next(f for f in failures if not isinstance(f, DeliveryFailed))
        raise DeliveryFailed(
            payload=refused[0].payload,
            last_error="; ".join(f.last_error for f in refused),
            attempts=refused[0].attempts,
            status_code=refused[0].status_code,
            retryable=any(f.retryable for f in refused),
        )

    # -- keeping firing alerts alive

    async def repost(self) -> int:
        """One round: post every alert Guidepost still holds firing (fresh `endsAt`), post
        resolved those its records no longer hold firing, forget long-ended ones. Returns how
        many alerts were posted firing."""
        posted = await self.posted.all()
        kept = {fp: p for fp, p in posted.items() if p.reposted}
        alerts = [Alert.model_validate_json(p.alert_json or "") for p in kept.values()]
        records = await self._records_of([(a.company, a.fingerprint) for a in alerts])
        body: list[dict[str, JsonValue]] = []
        firing = 0
        for alert, record in zip(alerts, records, strict=True):
            ended = _ended(alert, record, now=datetime.fromtimestamp(self._clock(), UTC))
            if ended is None:
                body.append(self._postable(alert))
                firing += 1
                continue
            if await self.posted.advance(ended, now=self._clock()):
                body.append(self._postable(ended))
        try:
            for start in range(0, len(body), POSTS_PER_REQUEST):
                await self._post(body[start : start + POSTS_PER_REQUEST], max_attempts=1)
        except DeliveryFailed:
            self._metrics.reposted(alerts=firing, ok=False)
            raise
        self._metrics.reposted(alerts=firing, ok=True)
        await self.posted.forget_ended(before=self._clock() - RETENTION_S)
        return firing

    async def run_reposts(self, stop: asyncio.Event) -> None:
        """Repost every interval until `stop`; one replica a round (a lease), the others wait."""
        while not stop.is_set():
            wait_s = self.repost_interval_s
            try:
                lease_ms = max(1, int(self.repost_interval_s * 900))
                if await self.posted.take_repost_lease(ttl_ms=lease_ms):
                    await self.repost()
            except Exception as error:  # Redis or Alertmanager away: the loop must outlive it
                wait_s = min(wait_s, self.loop_health.failed(error))
            else:
                self.loop_health.succeeded()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=wait_s)


def _ended(alert: Alert, record: AlertRecord | None, *, now: datetime) -> Alert | None:
    """The resolved notice to post when the records no longer hold this alert firing (None
    while they do, or have not caught up with it yet: on a cluster notices go first)."""
    if record is None or (record.starts_at, record.notifications) < _order(alert):
        return None
    same_episode = record.starts_at == alert.starts_at
    if same_episode and record.status == "firing":
        return None
    ends_at = record.resolved_at if same_episode and record.resolved_at else now
    return alert.model_copy(update={"status": AlertStatus.RESOLVED, "ends_at": ends_at})


# --------------------------------------------------------------------------- assembly


class AlertmanagerMetrics(WebhookMetrics, RepostMetrics, Protocol):
    """What the Alertmanager delivery records: notices taken or not, repost rounds."""


@dataclass
class AlertmanagerDelivery:
    """What the alerts worker runs for Alertmanager: the delivery and the repost loop."""

    delivery: WebhookDelivery
    sink: AlertmanagerSink

    async def run(self, stop: asyncio.Event) -> None:
        await asyncio.gather(self.delivery.run_retries(stop), self.sink.run_reposts(stop))


def build_alertmanager(
    settings: WorkerSettings,
    *,
    stores: AlertStores,
    metrics: AlertmanagerMetrics = NO_METRICS,
) -> AlertmanagerDelivery:
    sink = AlertmanagerSink(
        urls=[str(url) for url in settings.alertmanager_url],
        posted=stores.posted,
        records=stores.records,
        repost_interval_s=settings.alertmanager_repost_interval_s,
        constant_labels=settings.alertmanager_labels,
        external_url=str(settings.external_url or ""),
        max_attempts=settings.webhook_max_attempts,
        timeout_s=settings.alertmanager_timeout_s,
        metrics=metrics,
    )
    delivery = WebhookDelivery(
        ledger=stores.ledger(SINK),
        schedule=stores.schedule(SINK),
        sink=sink,
        horizon_s=settings.webhook_retry_horizon_s,
        backoff=RetryBackoff(settings.webhook_retry_base_s, settings.webhook_retry_max_delay_s),
        metrics=metrics,
        name=SINK,
    )
    return AlertmanagerDelivery(delivery=delivery, sink=sink)


__all__ = [
    "NEWS_KINDS",
    "SINK",
    "AlertmanagerDelivery",
    "AlertmanagerSink",
    "Posted",
    "build_alertmanager",
    "is_news",
    "postable_alert",
]
