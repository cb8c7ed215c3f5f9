"""The multiplexed transport's client and broker: redis-py and FastStream with their hot paths
replaced (these reach into private internals of both; pinned versions, see pyproject)."""

from __future__ import annotations

import logging
import ssl
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Self, cast

import hiredis
import redis.asyncio as aioredis
import redis.exceptions as redis_errors
from faststream._internal.parser import DefaultCodec
from faststream.redis import RedisBroker, RedisClusterBroker, StreamSub
from faststream.redis.configs.state import ConnectionState, RedisConnectionState
from faststream.redis.message import FAKE_CONSUMER, RedisBatchStreamMessage, RedisStreamMessage
from faststream.redis.parser.message import MessageFormat
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.connection import AbstractConnection

from services.common.settings import RedisSettings
from services.common.transport.connection import (
    OUTAGE,
    broker_options,
    client_options,
    credentials,
    tls_context,
)
from services.common.transport.multiplexed import Endpoint, MultiplexedRedis

log = logging.getLogger(__name__)


def create_redis(settings: RedisSettings) -> aioredis.Redis:
    """A client for state and stream writes (bytes in, bytes out); a cluster client when
    `redis_cluster` is set (it speaks the same commands; keys of one company share a slot)."""
    options = client_options(settings)
    if settings.redis_cluster:
        cluster = RedisCluster.from_url(str(settings.redis_url), **options)
        return cast(aioredis.Redis, cluster)
    pool = aioredis.ConnectionPool.from_url(
        str(settings.redis_url), health_check_interval=10, **options
    )
    pool.connection_class = packed_by_hiredis(pool.connection_class)
    return MultiplexedRedis.owning(pool, endpoint_of(settings))


_PACKED_CLASSES: dict[type[AbstractConnection], type[AbstractConnection]] = {}


def packed_by_hiredis(base: type[AbstractConnection]) -> type[AbstractConnection]:
    """`base` (plain or TLS) with commands packed by hiredis' C packer.

    redis-py's asyncio connections pack every argument in Python (its synchronous ones
    already use hiredis); a batch's script call carries hundreds of keys, and packing them in
    Python cost more than validating the events. The bytes on the wire are the same."""
    if base not in _PACKED_CLASSES:
        _PACKED_CLASSES[base] = type(f"Hiredis{base.__name__}", (_HiredisPacking, base), {})
    return _PACKED_CLASSES[base]


class _HiredisPacking:
    def pack_command(self, *args: Any) -> list[bytes]:
        command = args[0]
        if isinstance(command, str):  # "CONFIG GET" is two arguments on the wire
            args = (*command.encode().split(), *args[1:])
        elif b" " in command:
            args = (*command.split(), *args[1:])
        try:
            return [hiredis.pack_command(args)]
        except TypeError:  # hiredis takes bytes, not bytearray or memoryview
            pass
        try:
            return [hiredis.pack_command(tuple(map(_packable, args)))]
        except TypeError as error:
            raise redis_errors.DataError(f"{error} (command {args[0]!r})") from None


def _packable(arg: Any) -> Any:
    return bytes(arg) if isinstance(arg, bytearray | memoryview) else arg


def create_broker(
    settings: RedisSettings, *, tracer_provider: Any = None, **extra: Any
) -> RedisBroker:
    """FastStream's broker on the same Redis; events travel as plain JSON."""
    extra.setdefault("message_format", PlainJsonFormat)
    options = broker_options(settings, tracer_provider=tracer_provider, **extra)
    if settings.redis_cluster:
        return OutageTolerantClusterBroker(str(settings.redis_url), **options)
    security = options["security"]  # one TLS context for the broker's reads and the rest
    endpoint = endpoint_of(settings, security.ssl_context if security else None)
    return OutageTolerantBroker(str(settings.redis_url), endpoint=endpoint, **options)


def endpoint_of(settings: RedisSettings, tls: ssl.SSLContext | None = None) -> Endpoint:
    """Where the multiplexed client connects; `tls` if the caller built it already."""
    tls = tls or tls_context(settings)
    return Endpoint.of(str(settings.redis_url), **credentials(settings), tls=tls)


class OutageTolerantBroker(RedisBroker):
    """FastStream's broker on a `MultiplexedRedis`: its reads on lean connections of their
    own, the rest pipelined on one (FastStream's per-read cost is most of a small batch's)."""

    def __init__(self, *args: Any, endpoint: Endpoint, **kwargs: Any) -> None:
        self._endpoint = endpoint
        super().__init__(*args, **kwargs)

    def _make_connection_state(
        self, connection_options: dict[str, Any], kwargs: dict[str, Any]
    ) -> ConnectionState[Any]:
        return MultiplexedConnectionState(connection_options, self._endpoint)

    async def start(self) -> None:
        await self.connect()
        await start_through_outages(self)


class MultiplexedConnectionState(RedisConnectionState):
    __slots__ = ("_endpoint",)

    def __init__(self, options: dict[str, Any], endpoint: Endpoint) -> None:
        super().__init__(options)
        self._endpoint = endpoint

    async def connect(self) -> aioredis.Redis:
        client = MultiplexedRedis.owning(aioredis.ConnectionPool(**self._options), self._endpoint)
        self._client = client
        self._connected = True
        return client


class OutageTolerantClusterBroker(RedisClusterBroker):
    async def start(self) -> None:
        await self.connect()
        await start_through_outages(self)


async def start_through_outages(broker: RedisBroker) -> None:
    """Start every subscriber and publisher, surviving Redis going away half-way through.

    FastStream starts its subscribers one by one, each with a round trip to Redis; the first
    ones already consume while the later ones start. If Redis drops in between, FastStream's
    start raises and the process dies although every subscriber would recover. Here a
    subscriber that could not start stays stopped, and the workers' group watcher starts it
    once Redis answers again."""
    for subscriber in broker.subscribers:
        try:
            await subscriber.start()
        except OUTAGE as problem:
            log.warning("a subscriber waits for Redis to start: %s", problem)
    for publisher in broker.publishers:
        await publisher.start()
    broker.running = True


class PlainJsonFormat(MessageFormat):
    """FastStream message format that writes the body as-is, so any client can read it."""

    @classmethod
    async def encode(
        cls,
        *,
        message: Sequence[Any] | Any,
        reply_to: str | None,
        headers: dict[str, Any] | None,
        correlation_id: str,
        serializer: Any = None,
        codec: Any = None,
    ) -> bytes:
        payload, _content_type = await (codec or DefaultCodec()).encode(message, serializer)
        return bytes(payload)

    @classmethod
    def parse(cls, data: bytes) -> tuple[bytes, dict[str, Any]]:
        return data, {"content-type": "application/json"}


async def entries_untouched(message: Any, original: Callable[[Any], Awaitable[Any]]) -> Any:
    """FastStream's message around the read, its entries left as received.

    The Consumption decodes and validates each entry itself, so FastStream's parser (which
    decodes every entry's JSON, then encodes the batch again as the message body) would be
    wasted work, and it fails outright on entries that are not UTF-8 (which must reach the
    dead-letter stream, not loop). The first entry's id names the read in FastStream's logs.
    The message cannot acknowledge (no group): the Consumption does, once effects are durable.

    FastStream's in-memory test broker delivers entries without ids and pairs each message
    with its pending entry by the correlation id its parser finds; its reads keep that parser."""
    ids = message.get("message_ids")
    if not ids:
        return await _parsed_in_memory(message, original)
    kind = RedisBatchStreamMessage if isinstance(message["data"], list) else RedisStreamMessage
    first = ids[0].decode()
    return kind(
        raw_message=message,
        body=b"",
        message_id=first,
        correlation_id=first,
        consumer=FAKE_CONSUMER,
        group=None,
    )


async def _parsed_in_memory(message: Any, original: Callable[[Any], Awaitable[Any]]) -> Any:
    data = message["data"]
    try:
        parsed = await original({**message, "data": data[:1] if isinstance(data, list) else data})
    except (UnicodeDecodeError, ValueError, TypeError):
        parsed = await original({**message, "data": [] if isinstance(data, list) else {}})
    parsed.raw_message = message
    return parsed


def stream_sub(stream: str, **options: Any) -> StreamSub[Any]:
    return UnprefixedStreamSub(stream, **options)


class UnprefixedStreamSub(StreamSub[Any]):
    """FastStream asks its subscription for the stream's name with the broker's prefix twice
    per read, and each time deep-copies the whole subscription to add it; with no prefix (the
    workers' broker has none) the subscription itself is the answer."""

    def add_prefix(self, prefix: str) -> Self:
        return self if not prefix else super().add_prefix(prefix)
