"""The whole path on a local 3-master Redis Cluster, with partitioned streams and two companies
whose state lives on different nodes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from schemas.alerts import AlertKind
from schemas.base import Event
from schemas.history import HistoryUpdated
from schemas.metrics import MetricReported
from schemas.results import ResultsPublished
from schemas.streams import DATA_FIELD, Streams
from services.common.histories.facts import Recording
from services.common.publishing import read_jsonl
from services.common.settings import WorkerSettings
from services.common.transport import create_redis
from services.ingest.events import history_update_envelope, history_update_id
from services.ingest.facts import facts_from_metric
from services.ingest.fakes import InMemoryIngestStore
from services.ingest.service import IngestService
from services.ingest.store import IngestStore, RedisIngestStore
from tests.support.cluster import LocalCluster, local_cluster
from tests.support.pipeline import (
    all_alerts,
    client_under_test,
    pipeline,
    publish_and_settle,
    synthetic_company,
)

pytestmark = pytest.mark.integration
NET_INCOME = [410, 425, 433, 452, 470, 468, 490, 505, 512, 530, 541, 560]


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    with local_cluster() as running:
        yield running


def companies_on_different_nodes(cluster: LocalCluster, namespace: str) -> tuple[str, str]:
    first = "ACME"
    for candidate in ("BETA", "GAMMA", "DELTA", "OMEGA", "ZETA", "KAPPA", "SIGMA"):
        key = f"{namespace}:{{{candidate}}}:facts"
        if cluster.node_of(key) != cluster.node_of(f"{namespace}:{{{first}}}:facts"):
            return first, candidate
    raise AssertionError("no second company on another node among the candidates")


@pytest.mark.timeout(180)
async def test_the_full_path_runs_on_a_three_master_cluster_with_companies_on_different_nodes(
    cluster: LocalCluster, namespace: str
) -> None:
    first, second = companies_on_different_nodes(cluster, namespace)
    settings = WorkerSettings.model_validate(
        {
            **client_under_test(),
            "redis_url": cluster.url,
            "redis_cluster": True,
            "namespace": namespace,
            "partitions": 4,
            "claim_idle_ms": 500,
            "coalesce_ms": 20,
            "block_ms": 50,
        }
    )
    events = [
        *synthetic_company(first, first="2021Q1", values=NET_INCOME, guided=(570, 590)),
        *synthetic_company(
            second, first="2021Q1", values=[v * 2 for v in NET_INCOME], guided=(1100, 1150)
        ),
    ]
    async with pipeline(settings) as workers:
        await publish_and_settle(workers, events, timeout_s=120)
        alerts = await all_alerts(workers)
        partitions = {
            workers.streams.for_company(workers.streams.metrics, c) for c in (first, second)
        }

    bands = sorted((a.company, a.subject) for a in alerts if a.kind is AlertKind.BAND_CHECK)
    assert bands == sorted([(first, "net_income"), (second, "net_income")])
    assert all(stream.startswith(f"{namespace}:in:metrics:p") for stream in partitions)


FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "qfin_2024q1_events.jsonl"
CLOCK = datetime(2024, 6, 1, 12, tzinfo=UTC)


def recorded_inputs() -> list[Event]:
    """The bundled quarter's results and metrics (guidance is no fact), then a metric restated
    a day later."""
    events, errors = read_jsonl(FIXTURE)
    assert not errors
    facts = [e for e in events if isinstance(e, ResultsPublished | MetricReported)]
    metric = next(e for e in facts if isinstance(e, MetricReported))
    restated = metric.model_copy(
        update={
            "event_id": metric.event_id + "-restated",
            "value": metric.value + Decimal(1),
            "occurred_at": metric.occurred_at + timedelta(days=1),
        }
    )
    return [*facts, restated]


def documents(entries: list[bytes]) -> set[str]:
    """Each entry as canonical JSON (keys sorted), so two encoders' bytes compare by content."""
    return {json.dumps(json.loads(entry), sort_keys=True) for entry in entries}


async def history_entries(client: aioredis.Redis, streams: Streams, company: str) -> list[bytes]:
    raw: Any = await client.xrange(streams.for_company(streams.history, company))
    return [fields[DATA_FIELD.encode()] for _, fields in raw]


async def ingest_as_delivered(
    client: aioredis.Redis, streams: Streams, inputs: list[Event], died: MetricReported
) -> list[bytes]:
    store = RedisIngestStore(client, streams, max_length=10_000)
    await deliver(store, inputs, died)
    return await history_entries(client, streams, died.company)


async def deliver(store: IngestStore, inputs: list[Event], died: MetricReported) -> None:
    """Every input, then all again (a redelivery); before them, `died`'s facts recorded by a
    worker that died before it published, and its redelivery last."""
    recording = Recording(
        died.company, died.event_id, facts_from_metric(died), history_update_id(died)
    )
    (outcome,) = await store.record_facts([recording], history_update_envelope(CLOCK))
    assert not isinstance(outcome, BaseException)
    service = IngestService(store=store, clock=lambda: CLOCK)
    for batch in (inputs, inputs, [died]):
        assert await service.apply_all(batch) == [None] * len(batch)


@pytest.mark.timeout(120)
async def test_one_redis_and_a_cluster_write_the_same_history_updates(
    cluster: LocalCluster, redis_url: str, namespace: str
) -> None:
    streams = Streams(namespace)
    inputs = recorded_inputs()
    died = next(e for e in inputs if isinstance(e, MetricReported) and e.metric != inputs[1].metric)
    delivered = [e for e in inputs if e is not died]
    single = aioredis.Redis.from_url(redis_url)
    clustered = create_redis(
        WorkerSettings.model_validate(
            {"redis_url": cluster.url, "redis_cluster": True, "namespace": namespace}
        )
    )
    try:
        on_one_redis = await ingest_as_delivered(single, streams, delivered, died)
        on_a_cluster = await ingest_as_delivered(clustered, streams, delivered, died)
    finally:
        async for key in single.scan_iter(match=f"{namespace}:*", count=1000):
            await single.delete(key)
        await single.aclose()
        await clustered.aclose()

    causes = [HistoryUpdated.model_validate_json(entry).cause_event_id for entry in on_one_redis]
    assert len(causes) == len(set(causes)), "a redelivery adds no second history update"
    assert {died.event_id, inputs[-1].event_id} <= set(causes), "the restatement, the redelivery"
    assert len(on_one_redis) > 2
    # the same entries, as documents (each server's Lua encoder writes them; the order differs
    # only in `died`'s, which one Redis wrote with its facts and a cluster on the redelivery)
    cluster_docs, single_docs = documents(on_a_cluster), documents(on_one_redis)
    assert cluster_docs == single_docs, (
        f"only on the cluster: {sorted(cluster_docs - single_docs)}; "
        f"only on one Redis: {sorted(single_docs - cluster_docs)}"
    )
    assert len(cluster_docs) == len(on_a_cluster) == len(on_one_redis)
    fake = InMemoryIngestStore(atomic=False)
    await deliver(fake, delivered, died)
    assert sorted(fake.history_updates, key=by_id) == sorted(
        (HistoryUpdated.model_validate_json(entry) for entry in on_a_cluster), key=by_id
    ), "the unit tests' fake of a cluster tells what the adapter does"


def by_id(update: HistoryUpdated) -> str:
    return update.event_id
