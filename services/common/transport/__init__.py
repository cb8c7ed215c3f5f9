"""How the processes reach Redis: the client, the broker and the stream reads' hooks.

Two implementations, chosen by `redis_client` (GUIDEPOST_REDIS_CLIENT):
- `multiplexed` (default): redis-py and FastStream with their hot paths replaced (one
  pipelined connection per process, hiredis packing, FastStream's parser bypassed). It
  reaches into private internals of both, and only this package may.
- `stock`: both libraries through their public APIs only, so a new version of either can
  be tried by running the suites with `GUIDEPOST_REDIS_CLIENT=stock`.

Both keep what the workers rely on: consumer groups created at the stream's start before
any read (`services.common.streams.ensure_group`), manual acknowledgement once effects are
durable, batches, TLS and ACL settings, and a start that survives Redis going away.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol, cast

import redis.asyncio as aioredis
import redis.exceptions as redis_errors
from faststream.redis import RedisBroker, StreamSub

from services.common.settings import RedisClient, RedisSettings
from services.common.transport import multiplexed_broker, stock
from services.common.transport.connection import OUTAGE, as_received, credentials, tls_context

__all__ = (
    "OUTAGE",
    "RedisUnavailableError",
    "Transport",
    "check_connection",
    "create_broker",
    "create_redis",
    "credentials",
    "stopped_subscribers",
    "tls_context",
    "transport_for",
)


ReadHook = Callable[[Any, Callable[[Any], Awaitable[Any]]], Awaitable[Any]]


class BrokerFactory(Protocol):
    def __call__(
        self, settings: RedisSettings, *, tracer_provider: Any = None, **extra: Any
    ) -> RedisBroker: ...


@dataclass(frozen=True)
class Transport:
    """One implementation: its Redis client, its broker, and how a stream is read."""

    client: RedisClient
    create_redis: Callable[[RedisSettings], aioredis.Redis]
    create_broker: BrokerFactory
    # a read: `broker.subscriber(stream=stream_sub(...), parser=parser, decoder=decoder)`
    # hands its handler the read as Redis returned it (entry ids and fields)
    stream_sub: Callable[..., StreamSub[Any]]
    parser: ReadHook
    decoder: Callable[[Any], Awaitable[Any]]

    def batches(self, stream: str, **options: Any) -> StreamSub[Literal[True]]:
        """A subscription to `stream` that reads batches (StreamSub's other `options`)."""
        return cast("StreamSub[Literal[True]]", self.stream_sub(stream, batch=True, **options))

    def one_by_one(self, stream: str, **options: Any) -> StreamSub[Literal[False]]:
        return cast("StreamSub[Literal[False]]", self.stream_sub(stream, **options))


_TRANSPORTS = {
    RedisClient.MULTIPLEXED: Transport(
        RedisClient.MULTIPLEXED,
        multiplexed_broker.create_redis,
        multiplexed_broker.create_broker,
        multiplexed_broker.stream_sub,
        multiplexed_broker.entries_untouched,
        as_received,
    ),
    RedisClient.STOCK: Transport(
        RedisClient.STOCK,
        stock.create_redis,
        stock.create_broker,
        stock.stream_sub,
        stock.entries_parsed,
        as_received,
    ),
}


def transport_for(settings: RedisSettings) -> Transport:
    """The implementation `settings.redis_client` names."""
    return _TRANSPORTS[RedisClient(settings.redis_client)]


def create_redis(settings: RedisSettings) -> aioredis.Redis:
    """A client for state and stream writes (bytes in, bytes out), as `settings` select."""
    return transport_for(settings).create_redis(settings)


def create_broker(
    settings: RedisSettings, *, tracer_provider: Any = None, **extra: Any
) -> RedisBroker:
    """FastStream's broker on the same Redis, as `settings` select."""
    return transport_for(settings).create_broker(settings, tracer_provider=tracer_provider, **extra)


def stopped_subscribers(broker: RedisBroker) -> list[Any]:
    """The broker's subscribers that are not reading (never started, or stopped by an error)."""
    return [subscriber for subscriber in broker.subscribers if not subscriber.running]


class RedisUnavailableError(RuntimeError):
    """Redis is unreachable or refused us; the message says which setting to check."""


async def check_connection(settings: RedisSettings) -> None:
    """Fail fast at start-up with a clear message (never the password) instead of retrying."""
    client = create_redis(settings)
    user = settings.redis_username or "default"
    try:
        await client.ping()
    except redis_errors.AuthenticationError:
        raise RedisUnavailableError(
            f"Redis refused the credentials of user {user!r}: check GUIDEPOST_REDIS_USERNAME "
            "and GUIDEPOST_REDIS_PASSWORD"
        ) from None
    except redis_errors.ConnectionError as error:
        where = f"{settings.redis_url.host}:{settings.redis_url.port}"
        raise RedisUnavailableError(
            f"cannot reach Redis at {where}: {error}; check GUIDEPOST_REDIS_URL"
        ) from None
    finally:
        await client.aclose()
