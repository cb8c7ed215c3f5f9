"""A burst of 200,000 events: the ingest worker's memory stays bounded and the lag drains."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from schemas.streams import Streams
from services.common.embedded import EmbeddedRedis
from tests.reliability.support import (
    WorkerProcess,
    company_name,
    daily_metric,
    group_backlog,
    report,
    start_worker,
    store_count,
    wait_for,
    worker_pool,
    xadd_all,
)

pytestmark = pytest.mark.reliability
BURST = 200_000
COMPANIES = 1_000
RSS_LIMIT_MB = 400


def burst_bodies(count: int) -> Iterator[str]:
    """Valid MetricReported JSON, from one serialised template (200k models would be slow)."""
    first = daily_metric("TEMPLATE", 0, 1)
    template = first.model_dump_json()
    known = first.model_dump(mode="json")["occurred_at"]
    days = count // COMPANIES
    for day in range(days):
        that_day = daily_metric("TEMPLATE", day, 1)
        period, seen = that_day.period, that_day.model_dump(mode="json")["occurred_at"]
        for index in range(COMPANIES):
            company = company_name(index)
            yield (
                template.replace("TEMPLATE-0-o", f"{company}-{day}")
                .replace("TEMPLATE", company)
                .replace('"2024-01-01"', f'"{period}"')
                .replace(f'"{known}"', f'"{seen}"')  # known the day after, as each day is
            )


class PeakRss:
    """Samples a process's RSS every `interval_s` in a thread."""

    def __init__(self, worker: WorkerProcess, interval_s: float = 0.1) -> None:
        self.peak_mb = 0.0
        self._worker, self._interval_s = worker, interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set() and self._worker.alive:
            self.peak_mb = max(self.peak_mb, self._worker.rss_mb())
            self._stop.wait(self._interval_s)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


@pytest.mark.timeout(240)
def test_a_burst_of_200k_events_drains_with_bounded_worker_memory(
    private_redis: EmbeddedRedis,
    client: redis.Redis,
    log_dir: Path,
    record_property: Callable[[str, object], None],
) -> None:
    streams = Streams("gp-burst")
    with worker_pool() as pool:
        worker = start_worker(
            pool, log_dir, private_redis.url, streams.namespace, services="ingest"
        )
        wait_for(
            lambda: (
                group_backlog(client, streams.metrics) == 0 and bool(client.exists(streams.metrics))
            ),
            timeout_s=30,
            what="the worker's groups",
        )
        idle_mb = worker.rss_mb()
        with PeakRss(worker) as rss:
            started = time.monotonic()
            published = xadd_all(client, streams.metrics, burst_bodies(BURST), chunk=2000)
            published_s = time.monotonic() - started
            drained_s = (
                wait_for(
                    lambda: group_backlog(client, streams.metrics) == 0,
                    timeout_s=200,
                    what="the burst draining",
                    interval_s=0.2,
                )
                + published_s
            )
        assert worker.alive, worker.tail()

    pipe = client.pipeline(transaction=False)
    for index in range(COMPANIES):
        pipe.hlen(streams.key("{" + company_name(index) + "}", "versions"))
    recorded = sum(pipe.execute())
    count = store_count(client, streams.namespace)
    report(
        record_property,
        "burst",
        events=published,
        lost=published - len(count.recorded_events),
        duplicated=count.applied_twice,
        dead_lettered=int(client.xlen(streams.dead_letters)),
        publish_s=round(published_s, 1),
        time_to_drain_s=round(drained_s, 1),
        events_per_s=round(published / drained_s),
        idle_rss_mb=round(idle_mb, 1),
        peak_rss_mb=round(rss.peak_mb, 1),
    )
    assert published == BURST
    assert recorded == BURST, "every event's fact is in the store"
    assert len(count.recorded_events) == BURST
    assert count.applied_twice == 0
    assert client.xlen(streams.dead_letters) == 0
    assert rss.peak_mb < RSS_LIMIT_MB
