"""A stream and its groups that vanish (Redis restarted without its data) are recreated, and
the workers go on consuming; so do workers whose start-up Redis interrupted."""

from __future__ import annotations

import contextlib

import pytest

from services.app import build_workers
from services.common.embedded import EmbeddedRedis
from services.common.histories.facts import RedisHistoryStore
from services.common.transport import stopped_subscribers
from tests.support.pipeline import pipeline, publish_and_settle, synthetic_company, worker_settings

pytestmark = pytest.mark.integration


@pytest.mark.timeout(120)
async def test_a_deleted_input_stream_gets_its_group_back_and_is_consumed_again(
    redis_url: str, namespace: str
) -> None:
    async with pipeline(worker_settings(redis_url, namespace, services="ingest")) as workers:
        await publish_and_settle(
            workers, synthetic_company("ACME", first="2023Q1", values=[1, 2], guided=(2, 3))
        )
        await workers.redis.delete(workers.streams.metrics)
        await publish_and_settle(
            workers, synthetic_company("BETA", first="2023Q1", values=[5, 6, 7], guided=(7, 8))
        )
        groups = await workers.redis.xinfo_groups(workers.streams.metrics)
        versions = await RedisHistoryStore(workers.redis, workers.streams).versions("BETA")
    assert {g["name"] for g in groups} == {b"ingest"}
    assert len(versions) == 3


@pytest.mark.timeout(120)
async def test_workers_whose_start_redis_interrupted_consume_once_it_is_back(
    namespace: str,
) -> None:
    server = EmbeddedRedis().start()  # private: this test kills it
    workers = build_workers(worker_settings(server.url, namespace, services="ingest"))
    try:
        await workers.ensure_groups()
        server.kill()
        await workers.broker.start()
        not_started = stopped_subscribers(workers.broker)
        workers.start_background()
        server.start()
        await workers.redis.connection_pool.disconnect()  # this test publishes through it
        await publish_and_settle(
            workers, synthetic_company("ACME", first="2023Q1", values=[1, 2, 3], guided=(3, 4))
        )
        versions = await RedisHistoryStore(workers.redis, workers.streams).versions("ACME")
    finally:
        await workers.stop_background()
        await workers.broker.stop()
        with contextlib.suppress(Exception):
            await workers.redis.aclose()
        server.cleanup()
    assert len(not_started) == len(workers.broker.subscribers)
    assert len(versions) == 3
