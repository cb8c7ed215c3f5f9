"""Metrics after a real run: a worker's exporter and the API's /metrics, parsed as Prometheus."""

from __future__ import annotations

import json

import httpx
import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from schemas.streams import Groups, Streams
from tests.api.running import BundledRun

pytestmark = pytest.mark.integration

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def samples(text: str) -> Samples:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(found: Samples, name: str, **labels: str) -> float:
    return found[(name, frozenset(labels.items()))]


def worker_groups(streams: Streams) -> list[tuple[str, str]]:
    return [
        *((stream, Groups.INGEST) for stream in streams.inputs),
        (streams.history, Groups.FORECAST),
        (streams.history, Groups.GUIDANCE),
        (streams.forecasts, Groups.GUIDANCE),
        (streams.signals, Groups.ALERTS),
    ]


def test_worker_counted_every_input_entry_it_consumed(bundled_run: BundledRun) -> None:
    found = samples(bundled_run.worker_metrics)

    assert bundled_run.published, "the backfill published to at least one input stream"
    for stream, count in bundled_run.published.items():
        labels = {"stream": stream, "group": Groups.INGEST}
        assert value(found, "guidepost_events_consumed_total", **labels) >= count > 0
        assert value(found, "guidepost_handling_seconds_count", **labels) >= 1
        assert (("guidepost_events_failed_total", frozenset(labels.items()))) not in found


def test_worker_reports_lag_and_pending_of_every_group_it_reads_as_zero_once_idle(
    bundled_run: BundledRun,
) -> None:
    found = samples(bundled_run.worker_metrics)

    for stream, group in worker_groups(Streams(bundled_run.namespace)):
        labels = {"stream": stream, "group": group}
        assert value(found, "guidepost_consumer_group_lag", **labels) == 0
        assert value(found, "guidepost_consumer_group_pending", **labels) == 0
        assert value(found, "guidepost_consumer_group_oldest_pending_age_seconds", **labels) == 0
    assert value(found, "guidepost_redis_up") == 1


def test_worker_counted_every_band_check_notice_it_published(bundled_run: BundledRun) -> None:
    found = samples(bundled_run.worker_metrics)
    client = redis.Redis.from_url(bundled_run.redis_url)
    try:
        entries = client.xrange(Streams(bundled_run.namespace).alerts)
    finally:
        client.close()
    notices = [json.loads(fields[b"__data__"]) for _, fields in entries]
    firing = [n for n in notices if n["kind"] == "band_check" and n["status"] == "firing"]

    # a guided figure's call may change while its history is still arriving; each change is
    # one notice, and the counter counts each notice once
    assert {(n["subject"], n["period"]) for n in firing} == {
        ("net_income", "2024Q2"),
        ("non_gaap_net_income", "2024Q2"),
    }
    assert value(found, "guidepost_alerts_total", kind="band_check", status="firing") == len(firing)


async def test_api_metrics_expose_stream_gauges_and_per_company_counts(
    client: httpx.AsyncClient, bundled_run: BundledRun
) -> None:
    response = await client.get("/metrics")
    forecasts = (await client.get(f"/api/companies/{bundled_run.company}/forecasts")).json()

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    found = samples(response.text)
    streams, company = Streams(bundled_run.namespace), bundled_run.company
    for stream, group in worker_groups(streams):
        assert value(found, "guidepost_consumer_group_lag", stream=stream, group=group) == 0
    for stream, count in bundled_run.published.items():
        assert value(found, "guidepost_stream_length", stream=stream) == count
    assert value(found, "guidepost_company_forecasts", company=company) == len(forecasts) >= 2
    assert value(found, "guidepost_company_trends", company=company) == 1
    assert value(found, "guidepost_company_facts", company=company) > 0
    band_states = {
        labels: v for (name, labels), v in found.items() if name == "guidepost_company_band_checks"
    }
    assert sum(band_states.values()) == 2
