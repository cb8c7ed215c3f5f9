"""Prometheus metrics on a registry passed down (never prometheus-client's global one).

Counters and histograms are recorded where the work happens: consumption, alert notices,
forecast fits. Stream gauges (lag, pending, oldest pending age) are read from Redis when
Prometheus scrapes; the exposition runs in a thread, so that collector uses a sync client.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from socketserver import ThreadingMixIn
from typing import Any, Protocol
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import redis
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, make_wsgi_app
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from redis.exceptions import RedisError, ResponseError

from schemas.streams import Streams
from services.common.histories.forecasts import refit_errors_key, refit_quarantine_key
from services.common.settings import RedisSettings
from services.common.transport import credentials

log = logging.getLogger(__name__)

HANDLING_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
FIT_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
SCRAPE_TIMEOUT_S = 5.0


class ConsumptionMetrics(Protocol):
    """What a `Consumption` records about the entries it handles."""

    def consumed(self, stream: str, group: str, count: int) -> None: ...
    def failed(self, stream: str, group: str) -> None: ...
    def dead_lettered(self, stream: str, group: str) -> None: ...
    def handled(self, stream: str, group: str, seconds: float) -> None: ...


class AlertMetrics(Protocol):
    def alert_sent(self, *, kind: str, status: str) -> None: ...


class WebhookMetrics(Protocol):
    """For notice delivery (`sink`: webhook, alertmanager): notices the receiver took, and a
    notice it did not take (`retrying` or `dead_lettered`)."""

    def webhook_failed(self, *, sink: str, outcome: str) -> None: ...
    def notices_delivered(self, *, sink: str, count: int) -> None: ...


class RepostMetrics(Protocol):
    """For the Alertmanager repost loop: a round posted (`ok`) or not, and how many alerts it
    kept firing."""

    def reposted(self, *, alerts: int, ok: bool) -> None: ...


class FitMetrics(Protocol):
    """For the forecast worker: seconds one company's refit took (fit and forecast)."""

    def observe_fit(self, seconds: float) -> None: ...


class NoMetrics:
    """Records nothing: the default wherever no registry was passed in."""

    def consumed(self, stream: str, group: str, count: int) -> None:
        pass

    def failed(self, stream: str, group: str) -> None:
        pass

    def dead_lettered(self, stream: str, group: str) -> None:
        pass

    def handled(self, stream: str, group: str, seconds: float) -> None:
        pass

    def alert_sent(self, *, kind: str, status: str) -> None:
        pass

    def observe_fit(self, seconds: float) -> None:
        pass

    def webhook_failed(self, *, sink: str, outcome: str) -> None:
        pass

    def notices_delivered(self, *, sink: str, count: int) -> None:
        pass

    def reposted(self, *, alerts: int, ok: bool) -> None:
        pass


NO_METRICS = NoMetrics()


class Metrics:
    """The counters and histograms of one process, registered on its own registry."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry = registry if registry is not None else CollectorRegistry()
        by_group = ("stream", "group")
        self._consumed = Counter(
            "guidepost_events_consumed",
            "Entries delivered to a consumer group.",
            by_group,
            registry=registry,
        )
        self._failed = Counter(
            "guidepost_events_failed",
            "Entries whose handling failed (retried later).",
            by_group,
            registry=registry,
        )
        self._dead_lettered = Counter(
            "guidepost_events_dead_lettered",
            "Entries moved to the dead-letter stream.",
            by_group,
            registry=registry,
        )
        self._handling = Histogram(
            "guidepost_handling_seconds",
            "Time to handle one batch (or one claimed entry), acknowledgement included.",
            by_group,
            buckets=HANDLING_BUCKETS,
            registry=registry,
        )
        self._fit = Histogram(
            "guidepost_forecast_fit_seconds",
            "Time to refit one company's forecasts and trends.",
            buckets=FIT_BUCKETS,
            registry=registry,
        )
        self._alerts = Counter(
            "guidepost_alerts",
            "Alert notices published, by kind and status.",
            ("kind", "status"),
            registry=registry,
        )
        self._webhook_failures = Counter(
            "guidepost_webhook_failures",
            "Notices a receiver (sink: webhook, alertmanager) did not take: scheduled again "
            "('retrying') or dead-lettered as delivery_failed ('dead_lettered').",
            ("sink", "outcome"),
            registry=registry,
        )
        self._reposts = Counter(
            "guidepost_alertmanager_reposts",
            "Rounds re-posting firing alerts to Alertmanager, by outcome (ok, failed).",
            ("outcome",),
            registry=registry,
        )
        self._reposted_alerts = Gauge(
            "guidepost_alertmanager_firing_alerts",
            "Alerts the last successful repost round kept firing in Alertmanager.",
            registry=registry,
        )
        self._delivered = Counter(
            "guidepost_notices_delivered",
            "Notices a receiver (sink: webhook, alertmanager) took.",
            ("sink",),
            registry=registry,
        )

    def consumed(self, stream: str, group: str, count: int) -> None:
        self._consumed.labels(stream, group).inc(count)

    def failed(self, stream: str, group: str) -> None:
        self._failed.labels(stream, group).inc()

    def dead_lettered(self, stream: str, group: str) -> None:
        self._dead_lettered.labels(stream, group).inc()

    def handled(self, stream: str, group: str, seconds: float) -> None:
        self._handling.labels(stream, group).observe(seconds)

    def alert_sent(self, *, kind: str, status: str) -> None:
        self._alerts.labels(kind, status).inc()

    def observe_fit(self, seconds: float) -> None:
        self._fit.observe(seconds)

    def webhook_failed(self, *, sink: str, outcome: str) -> None:
        self._webhook_failures.labels(sink, outcome).inc()

    def notices_delivered(self, *, sink: str, count: int) -> None:
        self._delivered.labels(sink).inc(count)

    def reposted(self, *, alerts: int, ok: bool) -> None:
        self._reposts.labels("ok" if ok else "failed").inc()
        if ok:
            self._reposted_alerts.set(alerts)


def create_metrics(registry: CollectorRegistry | None = None) -> Metrics:
    return Metrics(registry)


def create_sync_redis(settings: RedisSettings) -> redis.Redis:
    """A blocking client for scrapes (they run in the exporter's thread), with short timeouts."""
    options: dict[str, Any] = {
        **credentials(settings),
        "decode_responses": True,
        "socket_timeout": SCRAPE_TIMEOUT_S,
        "socket_connect_timeout": SCRAPE_TIMEOUT_S,
    }
    if settings.redis_url.scheme == "rediss":
        options.update(
            ssl_ca_certs=_str(settings.redis_tls_ca_file),
            ssl_certfile=_str(settings.redis_tls_cert_file),
            ssl_keyfile=_str(settings.redis_tls_key_file),
        )
    return redis.Redis.from_url(str(settings.redis_url), **options)


def all_streams(streams: Streams) -> tuple[str, ...]:
    """Every physical stream: each partition of a partitioned one."""
    logical = (*streams.partitioned, streams.alerts, streams.dead_letters)
    return tuple(name for stream in logical for name in streams.all_of(stream))


@dataclass(frozen=True)
class GroupState:
    stream: str
    group: str
    lag: int | None
    pending: int
    oldest_pending_age_s: float


class StreamCollector(Collector):
    """Length of every stream; lag, pending and oldest pending age of every group; companies
    whose refit is failing or quarantined (the refit ledger): read from Redis at scrape.

    Every scrape runs XINFO GROUPS and XPENDING on every stream, so one process exports these
    (the API by default, or a worker with `GUIDEPOST_STREAM_METRICS`), not every worker."""

    def __init__(self, client: redis.Redis, streams: Streams) -> None:
        self._client = client
        self._names = all_streams(streams)
        self._ledger = {  # the refit ledger's hashes
            "refit_failing": refit_errors_key(streams),
            "refit_quarantined": refit_quarantine_key(streams),
        }

    def collect(self) -> Iterator[Metric]:
        families = _stream_families()
        try:
            self._fill(families)
            families["up"].add_metric([], 1.0)
        except RedisError as error:
            log.warning("metrics scrape could not read Redis: %s", type(error).__name__)
            families["up"].add_metric([], 0.0)
        yield from families.values()

    def _fill(self, families: dict[str, GaugeMetricFamily]) -> None:
        for stream in self._names:
            families["length"].add_metric([stream], float(self._client.xlen(stream)))
            for state in self.groups(stream):
                labels = [state.stream, state.group]
                if state.lag is not None:
                    families["lag"].add_metric(labels, float(state.lag))
                families["pending"].add_metric(labels, float(state.pending))
                families["oldest"].add_metric(labels, state.oldest_pending_age_s)
        for family, key in self._ledger.items():
            try:
                count: Any = self._client.hlen(key)
            except ResponseError:  # a worker's role that may not read the ledger: leave it out
                continue
            families[family].add_metric([], float(count))

    def groups(self, stream: str) -> list[GroupState]:
        try:
            groups: Any = self._client.xinfo_groups(stream)
        except ResponseError:
            return []  # no such stream yet
        return [self._group_state(stream, group) for group in groups]

    def _group_state(self, stream: str, group: dict[str, Any]) -> GroupState:
        pending = int(group.get("pending") or 0)
        lag = group.get("lag")
        return GroupState(
            stream=stream,
            group=str(group["name"]),
            lag=None if lag is None else int(lag),
            pending=pending,
            oldest_pending_age_s=self._oldest_age(stream, str(group["name"])) if pending else 0.0,
        )

    def _oldest_age(self, stream: str, group: str) -> float:
        summary: Any = self._client.xpending(stream, group)
        oldest = summary.get("min") if summary else None
        if not oldest:
            return 0.0
        return max(0.0, time.time() - entry_time_s(str(oldest)))


def entry_time_s(entry_id: str) -> float:
    """The time an auto-generated stream id was assigned: its millisecond part."""
    return int(entry_id.split("-", 1)[0]) / 1000


def _stream_families() -> dict[str, GaugeMetricFamily]:
    by_group = ["stream", "group"]
    return {
        "length": GaugeMetricFamily(
            "guidepost_stream_length", "Entries in the stream.", labels=["stream"]
        ),
        "lag": GaugeMetricFamily(
            "guidepost_consumer_group_lag",
            "Entries not yet delivered to the group.",
            labels=by_group,
        ),
        "pending": GaugeMetricFamily(
            "guidepost_consumer_group_pending",
            "Entries delivered but not yet acknowledged.",
            labels=by_group,
        ),
        "oldest": GaugeMetricFamily(
            "guidepost_consumer_group_oldest_pending_age_seconds",
            "Age of the oldest unacknowledged entry (0 when none is pending).",
            labels=by_group,
        ),
        "refit_failing": GaugeMetricFamily(
            "guidepost_refit_failing_companies",
            "Companies whose last refit attempt failed (quarantined ones included).",
        ),
        "refit_quarantined": GaugeMetricFamily(
            "guidepost_refit_quarantined_companies",
            "Companies quarantined after failed refits, waiting for an operator (dlq replay).",
        ),
        "up": GaugeMetricFamily("guidepost_redis_up", "1 if the last scrape read Redis, else 0."),
    }


@dataclass
class MetricsServer:
    """The worker's `/metrics` endpoint, served from a thread; `close()` stops it."""

    metrics: Metrics
    collector: StreamCollector | None
    client: redis.Redis | None
    server: WSGIServer
    thread: threading.Thread

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)
        if self.collector is not None:
            self.metrics.registry.unregister(self.collector)
        if self.client is not None:
            self.client.close()


ReadinessProbe = Callable[[], tuple[bool, str]]


def serve_metrics(
    metrics: Metrics,
    *,
    port: int,
    settings: RedisSettings,
    streams: Streams,
    host: str = "0.0.0.0",  # Prometheus scrapes workers from outside their pod
    readiness: ReadinessProbe | None = None,
    redis_gauges: bool = True,
) -> MetricsServer:
    """`/metrics`, and the probes: `/health` (200 while the process serves) and `/ready`
    (503 with the reason while `readiness` says the worker cannot work, Redis away say).
    `redis_gauges` adds the Redis-derived gauges (`StreamCollector`): one process should."""
    client = create_sync_redis(settings) if redis_gauges else None
    collector = StreamCollector(client, streams) if client is not None else None
    if collector is not None:
        metrics.registry.register(collector)
    application = with_probes(make_wsgi_app(metrics.registry), readiness or _always_ready)
    server = make_server(host, port, application, ThreadingWSGIServer, handler_class=_Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    log.info("metrics exported on port %d", port)
    return MetricsServer(metrics, collector, client, server, thread)


def with_probes(metrics_app: Any, readiness: ReadinessProbe) -> Any:
    """The WSGI app: the probes by path, anything else to Prometheus' exposition."""

    def application(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/health":
            return _json_response(start_response, 200, {"status": "ok"})
        if path == "/ready":
            ok, reason = readiness()
            status = {"status": "ready" if ok else "unavailable", "reason": reason}
            return _json_response(start_response, 200 if ok else 503, status)
        result: list[bytes] = metrics_app(environ, start_response)
        return result

    return application


def _json_response(start_response: Any, code: int, body: dict[str, str]) -> list[bytes]:
    payload = json.dumps(body).encode()
    phrase = "OK" if code == 200 else "Service Unavailable"
    headers = [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))]
    start_response(f"{code} {phrase}", headers)
    return [payload]


def _always_ready() -> tuple[bool, str]:
    return True, "ready"


class ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # scrapes every few seconds
        pass


def _str(value: object | None) -> str | None:
    return None if value is None else str(value)
