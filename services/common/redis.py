"""Connections to Redis built from settings: AUTH, ACL user, TLS; nothing at import time."""

from __future__ import annotations

import logging
import ssl
from typing import Any, cast

import hiredis
import redis.asyncio as aioredis
import redis.exceptions as redis_errors
from faststream.redis import RedisBroker, RedisClusterBroker
from faststream.redis.configs.state import ConnectionState, RedisConnectionState
from faststream.security import BaseSecurity
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.connection import AbstractConnection

from services.common.multiplex import Endpoint, MultiplexedRedis
from services.common.settings import RedisSettings
from services.common.wire import PlainJsonFormat

OUTAGE = (redis_errors.ConnectionError, redis_errors.TimeoutError, TimeoutError)
log = logging.getLogger(__name__)


def tls_context(settings: RedisSettings) -> ssl.SSLContext | None:
    if settings.redis_url.scheme != "rediss":
        return None
    context = ssl.create_default_context(
        cafile=str(settings.redis_tls_ca_file) if settings.redis_tls_ca_file else None
    )
    if settings.redis_tls_cert_file:
        context.load_cert_chain(
            str(settings.redis_tls_cert_file),
            str(settings.redis_tls_key_file) if settings.redis_tls_key_file else None,
        )
    return context


def credentials(settings: RedisSettings) -> dict[str, Any]:
    password = settings.redis_password.get_secret_value() if settings.redis_password else None
    return {"username": settings.redis_username, "password": password}


def create_redis(settings: RedisSettings) -> aioredis.Redis:
    """A client for state and stream writes (bytes in, bytes out); a cluster client when
    `redis_cluster` is set (it speaks the same commands; keys of one company share a slot)."""
    options: dict[str, Any] = {**credentials(settings)}
    if settings.redis_url.scheme == "rediss":
        options.update(ssl_ca_certs=_str(settings.redis_tls_ca_file))
        options.update(ssl_certfile=_str(settings.redis_tls_cert_file))
        options.update(ssl_keyfile=_str(settings.redis_tls_key_file))
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
    if settings.tracing:
        from faststream.redis.opentelemetry import RedisTelemetryMiddleware

        extra["middlewares"] = (RedisTelemetryMiddleware(tracer_provider=tracer_provider),)
    tls = tls_context(settings)
    security = BaseSecurity(ssl_context=tls) if tls else None
    extra.setdefault("message_format", PlainJsonFormat)
    # handlers take the read as Redis returned it and validate it themselves: FastDepends'
    # per-message argument resolution would cost about a quarter of a small batch's CPU
    extra.setdefault("apply_types", False)
    options: dict[str, Any] = {
        "security": security,
        "logger": logging.getLogger("guidepost.broker"),  # our handlers and format, on stderr
        "log_level": logging.DEBUG,  # one line per message is noise at INFO; errors still log
        **{k: v for k, v in credentials(settings).items() if v is not None},
        **extra,
    }
    if settings.redis_cluster:
        return OutageTolerantClusterBroker(str(settings.redis_url), **options)
    endpoint = endpoint_of(settings, tls)
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


def _str(value: object | None) -> str | None:
    return None if value is None else str(value)


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
