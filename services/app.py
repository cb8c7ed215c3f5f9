"""The composition root: `create_app(settings)` builds broker, adapters and workers.

Nothing connects at import or construction time; the FastStream app's start-up hook creates
the consumer groups (at the start of each stream) before any subscriber reads.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta

import redis.asyncio as aioredis
from faststream import FastStream
from faststream.redis import RedisBroker

from schemas.alerts import Alert, AlertSignal
from schemas.base import Event
from schemas.forecasts import ForecastUpdated
from schemas.guidance import GuidanceIssued
from schemas.history import HistoryUpdated
from schemas.metrics import MetricReported
from schemas.results import ResultsPublished
from schemas.streams import Groups, Streams
from services.alerts.alertmanager import SINK as ALERTMANAGER_GROUP
from services.alerts.alertmanager import AlertmanagerDelivery, build_alertmanager
from services.alerts.redelivery import Backoff as RetryBackoff
from services.alerts.service import AlertService, WebhookDelivery
from services.alerts.store import RedisAlertStores
from services.alerts.webhook import WebhookSink
from services.common.consumer import Apply, ApplyAcknowledging, Consumption
from services.common.health import Readiness
from services.common.histories.facts import RedisHistoryStore
from services.common.histories.guidance import RedisGuidanceStore
from services.common.metrics import Metrics, MetricsServer, serve_metrics
from services.common.settings import Service, WorkerSettings
from services.common.streams import backlog, ensure_group, trim_acknowledged
from services.common.subscribe import BatchWindow, subscribe
from services.common.transport import create_broker, create_redis, stopped_subscribers
from services.forecast.service import ForecastService
from services.forecast.store import RedisForecastStore
from services.guidance.service import GuidanceService
from services.guidance.store import RedisGuidanceWorkerStore
from services.ingest.service import IngestService
from services.ingest.store import RedisIngestStore

WEBHOOK_GROUP = "webhook"
log = logging.getLogger(__name__)


@dataclass
class Workers:
    """What one process runs; the demo and tests reach its parts through this."""

    settings: WorkerSettings
    redis: aioredis.Redis
    broker: RedisBroker
    streams: Streams
    consumptions: list[Consumption] = field(default_factory=list)
    forecast: ForecastService | None = None
    alerts: AlertService | None = None
    background: list[asyncio.Task[None]] = field(default_factory=list)
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    metrics: Metrics = field(default_factory=Metrics)
    exporter: MetricsServer | None = None
    windows: list[BatchWindow] = field(default_factory=list)
    webhook: WebhookDelivery | None = None
    alertmanager: AlertmanagerDelivery | None = None
    readiness: Readiness = field(default_factory=Readiness)

    def __post_init__(self) -> None:
        self.readiness.subscribers_ok = self._subscribers_running

    def _subscribers_running(self) -> bool:
        return not stopped_subscribers(self.broker)

    async def ensure_groups(self) -> None:
        for consumption in self.consumptions:
            await ensure_group(self.redis, consumption.stream, consumption.group)

    def start_background(self) -> None:
        self.stop.clear()
        if self.forecast is not None:
            self.background.append(asyncio.create_task(self.forecast.run(self.stop)))
        if self.webhook is not None:
            self.background.append(asyncio.create_task(self.webhook.run_retries(self.stop)))
        if self.alertmanager is not None:
            self.background.append(asyncio.create_task(self.alertmanager.run(self.stop)))
        self.background.append(asyncio.create_task(self.trim_streams()))
        self.background.append(asyncio.create_task(self.watch_groups()))
        self.background.append(
            asyncio.create_task(self.readiness.watch(self.redis.ping, self.stop))
        )

    async def watch_groups(self, every_s: float = 1.0) -> None:
        """A stream or group that vanished (a Redis restarted without its data) stops FastStream's
        subscriber; recreate the groups at the stream's start and restart the subscriber.
        Under `guidepost run` FastStream also exits the app, and start-up recreates them."""
        while not self.stop.is_set():
            stopped = stopped_subscribers(self.broker)
            if stopped:
                with contextlib.suppress(Exception):  # Redis may still be down; next round
                    await self.ensure_groups()
                    for subscriber in stopped:
                        await subscriber.start()
                    log.warning(
                        "recreated consumer groups and restarted %d subscriber(s)", len(stopped)
                    )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), timeout=every_s)

    async def trim_streams(self, every_s: float = 5.0) -> None:
        """Keep consumed streams bounded without ever cutting an entry a group still needs."""
        streams = sorted({c.stream for c in self.consumptions if c.stream in self._trimmable})
        while not self.stop.is_set():
            for stream in streams:
                with contextlib.suppress(Exception):  # Redis may be restarting; try next round
                    await trim_acknowledged(
                        self.redis, stream, keep=self.settings.stream_max_length
                    )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), timeout=every_s)

    @property
    def _trimmable(self) -> set[str]:
        return {s for base in self.streams.partitioned for s in self.streams.all_of(base)}

    async def drain_batches(self) -> None:
        """Finish the batches already taken; run after the broker stopped reading."""
        for window in self.windows:
            await window.drain()

    async def stop_background(self) -> None:
        self.stop.set()
        for task in self.background:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.background.clear()

    def start_exporter(self) -> None:
        """Serve `/metrics` when a metrics port is configured."""
        port = self.settings.metrics_port
        if port is not None and self.exporter is None:
            self.exporter = serve_metrics(
                self.metrics,
                port=port,
                settings=self.settings,
                streams=self.streams,
                readiness=self.readiness.state,
                redis_gauges=self.settings.stream_metrics,
            )

    def stop_exporter(self) -> None:
        if self.exporter is not None:
            self.exporter.close()
            self.exporter = None

    async def is_idle(self) -> bool:
        """No entry waiting or pending in any group, no refit due, every subscriber running."""
        if not self._subscribers_running():
            return False
        streams = {c.stream for c in self.consumptions}
        dirty = await self.forecast.pending() if self.forecast else 0
        return dirty == 0 and await backlog(self.redis, streams) == 0


def build_workers(
    settings: WorkerSettings,
    *,
    redis: aioredis.Redis | None = None,
    broker: RedisBroker | None = None,
    claim_abandoned: bool = True,
) -> Workers:
    """`claim_abandoned=False` only for the in-memory test broker, which has no pending list."""
    redis = redis or create_redis(settings)
    streams = settings.streams()
    workers = Workers(settings, redis, broker or create_broker(settings), streams)
    history = RedisHistoryStore(redis, streams)
    guidance = RedisGuidanceStore(redis, streams)
    if Service.INGEST in settings.services:
        ingest = IngestService(
            store=RedisIngestStore(redis, streams, max_length=settings.stream_max_length)
        )
        for stream, event_type in (
            (streams.results, ResultsPublished),
            (streams.metrics, MetricReported),
            (streams.guidance, GuidanceIssued),
        ):
            _consume(
                workers,
                stream,
                Groups.INGEST,
                event_type,
                ingest.apply_all,
                acknowledging=ingest.apply_all_acknowledging,
            )
    if Service.FORECAST in settings.services:
        workers.forecast = ForecastService(
            store=RedisForecastStore(redis, streams, max_length=settings.stream_max_length),
            streams=streams,
            history=history,
            guidance=guidance,
            coalesce_ms=settings.coalesce_ms,
            max_failures=settings.refit_max_attempts,
            refit_timeout_s=settings.refit_timeout_s,
            max_history_quarters=settings.max_history_quarters,
            metrics=workers.metrics,
        )
        _consume(
            workers,
            streams.history,
            Groups.FORECAST,
            HistoryUpdated,
            workers.forecast.mark_all,
            linger_ms=mark_linger_ms(settings),
        )
    if Service.GUIDANCE in settings.services:
        checker = GuidanceService(
            store=RedisGuidanceWorkerStore(
                redis,
                streams,
                max_length=settings.stream_max_length,
                history=history,
                guidance=guidance,
            )
        )
        _consume(
            workers, streams.forecasts, Groups.GUIDANCE, ForecastUpdated, checker.apply_forecasts
        )
        _consume(
            workers,
            streams.history,
            Groups.GUIDANCE,
            HistoryUpdated,
            checker.apply_history,
            linger_ms=settings.guidance_linger_ms,
        )
    if Service.ALERTS in settings.services:
        repeat = timedelta(seconds=settings.alert_repeat_interval_s)
        stores = RedisAlertStores(
            redis, streams, max_length=settings.stream_max_length,
            atomic=not settings.redis_cluster,
        )  # fmt: skip
        workers.alerts = AlertService(
            records=stores.records,
            silences=stores.silences,
            repeat_interval=repeat,
            metrics=workers.metrics,
        )
        _consume(
            workers,
            streams.signals,
            Groups.ALERTS,
            AlertSignal,
            workers.alerts.apply_all,
            acknowledging=workers.alerts.apply_all_acknowledging,
        )
        if settings.webhook_url is not None:
            sink = WebhookSink(
                url=str(settings.webhook_url),
                secret=settings.webhook_secret,
                max_attempts=settings.webhook_max_attempts,
                timeout_s=settings.webhook_timeout_s,
                receiver=settings.webhook_receiver,
                external_url=str(settings.external_url or ""),
            )
            workers.webhook = WebhookDelivery(
                ledger=stores.ledger(WEBHOOK_GROUP),
                schedule=stores.schedule(WEBHOOK_GROUP),
                sink=sink,
                horizon_s=settings.webhook_retry_horizon_s,
                backoff=RetryBackoff(
                    settings.webhook_retry_base_s, settings.webhook_retry_max_delay_s
                ),
                metrics=workers.metrics,
            )
            _consume(workers, streams.alerts, WEBHOOK_GROUP, Alert, workers.webhook.deliver_all)
        if settings.alertmanager_url:
            workers.alertmanager = build_alertmanager(
                settings, stores=stores, metrics=workers.metrics
            )
            deliver = workers.alertmanager.delivery.deliver_all
            _consume(workers, streams.alerts, ALERTMANAGER_GROUP, Alert, deliver)
    for consumption in workers.consumptions:
        # batches overlap only where effects do not depend on arrival order: a guidance
        # statement's revision is classified against the statements recorded before it
        window = None
        order_free = consumption.stream not in streams.all_of(streams.guidance)
        if (
            consumption.group == Groups.INGEST
            and order_free
            and settings.ingest_batches_in_flight > 1
        ):
            window = BatchWindow(settings.ingest_batches_in_flight)
            workers.windows.append(window)
        subscribe(
            workers.broker, consumption, settings, claim_abandoned=claim_abandoned, window=window
        )
    return workers


def mark_linger_ms(settings: WorkerSettings) -> int:
    """Refit marks wait to be read in bigger batches: half the coalescing window, at most
    100 ms. A refit is due a coalescing window after its company's first mark, so this delays
    it by at most half a window, and saves a read, a write and an ack per few events."""
    return min(settings.coalesce_ms // 2, 100)


def _consume(
    workers: Workers,
    stream: str,
    group: str,
    event_type: type[Event],
    apply: Apply,
    *,
    linger_ms: int = 0,
    acknowledging: ApplyAcknowledging | None = None,
) -> None:
    """One consumption per physical stream: every partition of a partitioned stream."""
    for physical in workers.streams.all_of(stream):
        workers.consumptions.append(
            Consumption(
                redis=workers.redis,
                streams=workers.streams,
                stream=physical,
                group=group,
                event_type=event_type,
                apply=apply,
                max_deliveries=workers.settings.max_deliveries,
                max_payload_bytes=workers.settings.max_payload_bytes,
                metrics=workers.metrics,
                linger_ms=linger_ms,
                apply_acknowledging=acknowledging,
                plausibility=workers.settings.plausibility(),
            )
        )


def create_app(settings: WorkerSettings, *, redis: aioredis.Redis | None = None) -> FastStream:
    """The FastStream application for `guidepost run`."""
    workers = build_workers(settings, redis=redis)
    app = FastStream(workers.broker, logger=logging.getLogger("guidepost.app"))
    app.on_startup(workers.ensure_groups)
    app.on_startup(workers.start_exporter)
    app.after_startup(_in_loop(workers.start_background))
    app.on_shutdown(workers.stop_background)
    app.on_shutdown(workers.stop_exporter)
    app.after_shutdown(workers.drain_batches)
    app.context.set_global("workers", workers)
    return app


def _in_loop(hook: Callable[[], None]) -> Callable[[], Awaitable[None]]:
    """FastStream runs a sync hook in a worker thread; one that creates tasks needs the loop."""

    async def run() -> None:
        hook()

    return run


@contextlib.asynccontextmanager
async def running(workers: Workers):  # type: ignore[no-untyped-def]
    """Run the workers in this event loop (demo, tests) until the block exits."""
    await workers.ensure_groups()
    await workers.broker.start()
    workers.start_background()
    workers.start_exporter()
    try:
        yield workers
    finally:
        workers.stop_exporter()
        await workers.stop_background()
        await workers.broker.stop()
        await workers.drain_batches()
