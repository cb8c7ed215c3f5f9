"""The stock transport: redis-py's asyncio client and FastStream's RedisBroker as their
documents describe them, through public APIs only (constructors, `parser`/`decoder` hooks,
`StreamSub`), so that a new major version of either is checked by running this path."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, cast

import redis.asyncio as aioredis
from faststream.redis import RedisBroker, RedisClusterBroker, StreamSub
from redis.asyncio.cluster import RedisCluster

from services.common.settings import RedisSettings
from services.common.transport.connection import (
    OUTAGE,
    broker_options,
    client_options,
)

log = logging.getLogger(__name__)


def create_redis(settings: RedisSettings) -> aioredis.Redis:
    """redis-py's pooled client (a cluster client when `redis_cluster` is set)."""
    options = client_options(settings)
    if settings.redis_cluster:
        return cast(aioredis.Redis, RedisCluster.from_url(str(settings.redis_url), **options))
    return aioredis.Redis.from_url(str(settings.redis_url), health_check_interval=10, **options)


def create_broker(
    settings: RedisSettings, *, tracer_provider: Any = None, **extra: Any
) -> RedisBroker:
    """FastStream's broker with its own client and message format (the workers write their
    events with the Redis client; a body in FastStream's binary format is read too)."""
    options = broker_options(settings, tracer_provider=tracer_provider, **extra)
    if settings.redis_cluster:
        return StartsThroughOutagesCluster(str(settings.redis_url), **options)
    return StartsThroughOutages(str(settings.redis_url), **options)


class StartsThroughOutages(RedisBroker):
    """FastStream starts its subscribers one by one; if Redis drops half-way, its start raises
    and the process would die although every subscriber can recover. The subscribers that did
    not start stay stopped; the workers' group watcher starts them once Redis answers."""

    async def start(self) -> None:
        try:
            await super().start()
        except OUTAGE as problem:
            log.warning("subscribers wait for Redis to start: %s", problem)


class StartsThroughOutagesCluster(RedisClusterBroker):
    async def start(self) -> None:
        try:
            await super().start()
        except OUTAGE as problem:
            log.warning("subscribers wait for Redis to start: %s", problem)


async def entries_parsed(message: Any, original: Callable[[Any], Awaitable[Any]]) -> Any:
    """FastStream's own parser (a `parser` hook), with the read kept as received.

    FastStream's parser cannot take every entry a stream may hold (one that is not UTF-8
    fails it), yet such an entry must reach the Consumption to be dead-lettered, not loop
    unread: then the message is parsed from an empty read, and the real one put back."""
    data = message["data"]
    try:
        parsed = await original(message)
    except (UnicodeDecodeError, ValueError, TypeError):
        parsed = await original({**message, "data": [] if isinstance(data, list) else {}})
    parsed.raw_message = message
    return parsed


def stream_sub(stream: str, **options: Any) -> StreamSub[Any]:
    return StreamSub(stream, **options)
