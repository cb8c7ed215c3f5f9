"""Workers on FastStream's in-memory broker with an in-memory Redis (component tests)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import fakeredis
from faststream.redis import RedisBroker, TestRedisBroker

from schemas.base import Event
from services.app import Workers, build_workers
from services.common.publishing import stream_for
from services.common.settings import WorkerSettings
from services.common.wire import B_DATA_FIELD


@contextlib.asynccontextmanager
async def in_memory_workers(
    services: str, **settings: Any
) -> AsyncIterator[tuple[Workers, TestRedisBroker]]:
    values = {"namespace": "component", "services": services, "coalesce_ms": 0, **settings}
    workers = build_workers(
        WorkerSettings.model_validate(values),
        redis=fakeredis.FakeAsyncRedis(),
        broker=RedisBroker(),
        claim_abandoned=False,  # the in-memory broker keeps no pending entries to claim
    )
    await workers.ensure_groups()
    async with TestRedisBroker(workers.broker) as broker:
        yield workers, broker


async def send(workers: Workers, broker: TestRedisBroker, *events: Event) -> None:
    for event in events:
        await broker.publish(event.model_dump_json(), stream=stream_for(workers.streams, event))
        await workers.drain_batches()  # ingest hands batches to its window and returns at once


async def entries(workers: Workers, stream: str) -> list[bytes]:
    raw: Any = await workers.redis.xrange(stream)
    return [fields[B_DATA_FIELD] for _, fields in raw]
