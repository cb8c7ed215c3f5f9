"""One Redis connection shared by every task of a worker, its requests pipelined.

redis-py's asyncio client spends about 120 µs of CPU per awaited command on a 2-core machine
(a pool checkout under a lock, a retry wrapper, a timeout task, observability hooks); the same
round trip on a bare asyncio protocol costs about half (bench.pipeline reports both:
`round_trip_cpu_us`, `guidepost_round_trip_cpu_us`). A worker's hot path is a few small
commands per batch, so that overhead was much of its CPU at a steady trickle of
events. Here every non-blocking command and pipeline of the worker's client goes out on one
connection: each request writes its commands at once and waits for as many replies, and
Redis answers requests in the order they were written, so concurrent tasks need no lock and
no pool. Blocking stream reads take lean connections of their own, one per read in progress;
other blocking and connection-state commands (BLPOP, WATCH, SUBSCRIBE...) keep redis-py's
pooled connections.

A request that fails with the connection (reset, timeout, Redis restarting) raises redis-py's
`ConnectionError` or `TimeoutError`, as the pooled client does, and the next request
reconnects; callers already treat those as "not durable, retry later".
"""

from __future__ import annotations

import asyncio
import inspect
import ssl
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import hiredis
import redis.asyncio as aioredis
from redis._parsers.base import BaseParser
from redis.asyncio.client import Pipeline
from redis.asyncio.connection import parse_url
from redis.exceptions import (
    ConnectionError,
    ExecAbortError,
    InvalidResponse,
    ResponseError,
    WatchError,
)
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.utils import check_protocol_version

Command = Sequence[Any]
PUSH = getattr(hiredis, "PushNotification", ())
Stack = Sequence[tuple[Command, Mapping[str, Any]]]
_NOT_ENOUGH_DATA = object()
# other blocking commands, and those that change the connection's state, stay on redis-py's
_KEPT_ON_POOL = frozenset(
    {
        "AUTH", "BLMOVE", "BLMPOP", "BLPOP", "BRPOP", "BRPOPLPUSH", "BZMPOP", "BZPOPMAX",
        "BZPOPMIN", "CLIENT", "DISCARD", "EXEC", "HELLO", "MONITOR", "MULTI", "PSUBSCRIBE",
        "QUIT", "RESET", "SELECT", "SHUTDOWN", "SSUBSCRIBE", "SUBSCRIBE", "UNWATCH", "WAIT",
        "WAITAOF", "WATCH",
    }
)  # fmt: skip


@dataclass(frozen=True)
class Endpoint:
    """Where and as whom to connect (from the URL, overridden by explicit credentials)."""

    host: str | None
    port: int | None
    path: str | None
    db: int
    username: str | None
    password: str | None
    tls: ssl.SSLContext | None
    timeout_s: float
    resp: int = 2  # the protocol version redis-py's reply callbacks expect

    @classmethod
    def of(
        cls,
        url: str,
        *,
        username: str | None = None,
        password: str | None = None,
        tls: ssl.SSLContext | None = None,
        timeout_s: float = 5.0,
    ) -> Endpoint:
        parts = parse_url(url)
        return cls(
            host=parts.get("host"),
            port=parts.get("port"),
            path=parts.get("path"),
            db=int(parts.get("db") or 0),
            username=username or parts.get("username"),
            password=password or parts.get("password"),
            tls=tls,
            timeout_s=timeout_s,
        )


class _Request:
    __slots__ = ("expected", "future", "replies", "timer")

    def __init__(self, future: asyncio.Future[list[Any]], expected: int) -> None:
        self.future = future
        self.expected = expected
        self.replies: list[Any] = []
        self.timer: asyncio.TimerHandle | None = None


class _RespProtocol(asyncio.Protocol):
    """Replies in order to the requests in order; a lost connection fails every one waiting."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.waiting: deque[_Request] = deque()
        self.lost = False
        self._reader = hiredis.Reader(
            protocolError=InvalidResponse,
            replyError=BaseParser.parse_error,
            notEnoughData=_NOT_ENOUGH_DATA,
        )

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self._reader.feed(data)
        while (reply := self._reader.gets()) is not _NOT_ENOUGH_DATA:
            if isinstance(reply, PUSH):  # RESP3 out-of-band: no request's reply
                continue
            if not self.waiting:  # a reply nobody asked for: the stream is out of step
                self.abort(ConnectionError("Redis sent a reply no request was waiting for"))
                return
            request = self.waiting[0]
            request.replies.append(reply)
            if len(request.replies) == request.expected:
                self.waiting.popleft()
                if request.timer is not None:
                    request.timer.cancel()
                if not request.future.done():  # its caller may have been cancelled
                    request.future.set_result(request.replies)

    def connection_lost(self, exc: Exception | None) -> None:
        self.fail(ConnectionError(f"Connection to Redis lost: {exc or 'closed by the server'}"))

    def abort(self, error: Exception) -> None:
        self.fail(error)
        if self.transport is not None:
            self.transport.abort()

    def fail(self, error: Exception) -> None:
        self.lost = True
        while self.waiting:
            request = self.waiting.popleft()
            if request.timer is not None:
                request.timer.cancel()
            if not request.future.done():
                request.future.set_exception(error)


class MultiplexedConnection:
    """Pipelined requests from any number of tasks on one connection (opened on first use,
    reopened on the first use after it was lost)."""

    def __init__(self, endpoint: Endpoint) -> None:
        self._endpoint = endpoint
        self._protocol: _RespProtocol | None = None
        self._opening: asyncio.Lock | None = None

    async def execute(self, commands: Sequence[Command], *, blocks_s: float = 0) -> list[Any]:
        """The raw replies, in order; an error reply is returned as its exception, not raised.
        `blocks_s`: how long the server may hold the reply back on purpose (a blocking read)."""
        protocol = await self._connected()
        payload = b"".join(_packed(command) for command in commands)
        return await self._send(protocol, payload, len(commands), blocks_s)

    def _send(
        self, protocol: _RespProtocol, payload: bytes, expected: int, blocks_s: float = 0
    ) -> asyncio.Future[list[Any]]:
        loop = asyncio.get_running_loop()
        request = _Request(loop.create_future(), expected)
        timeout_s = self._endpoint.timeout_s + blocks_s
        request.timer = loop.call_later(timeout_s, self._timed_out, protocol, timeout_s)
        protocol.waiting.append(request)
        assert protocol.transport is not None
        protocol.transport.write(payload)
        return request.future

    def _timed_out(self, protocol: _RespProtocol, timeout_s: float) -> None:
        # the replies still owed would answer later requests: drop the connection
        protocol.abort(RedisTimeoutError(f"Redis did not answer within {timeout_s} s"))

    async def _connected(self) -> _RespProtocol:
        protocol = self._protocol
        if protocol is not None and not protocol.lost:
            return protocol
        if self._opening is None:
            self._opening = asyncio.Lock()
        async with self._opening:
            if self._protocol is None or self._protocol.lost:
                self._protocol = await self._open()
            return self._protocol

    async def _open(self) -> _RespProtocol:
        endpoint, loop = self._endpoint, asyncio.get_running_loop()
        try:
            async with asyncio.timeout(endpoint.timeout_s):
                if endpoint.path:
                    _, protocol = await loop.create_unix_connection(_RespProtocol, endpoint.path)
                else:
                    _, protocol = await loop.create_connection(
                        _RespProtocol,
                        endpoint.host or "localhost",
                        endpoint.port or 6379,
                        ssl=endpoint.tls,
                    )
                await self._handshake(protocol)
        except (OSError, TimeoutError) as error:
            where = endpoint.path or f"{endpoint.host}:{endpoint.port}"
            raise ConnectionError(f"Error connecting to {where}: {error}") from None
        return protocol

    async def _handshake(self, protocol: _RespProtocol) -> None:
        endpoint = self._endpoint
        commands: list[Command] = []
        if endpoint.resp == 3:
            hello: list[Any] = ["HELLO", 3]
            if endpoint.password is not None:
                hello += ["AUTH", endpoint.username or "default", endpoint.password]
            commands.append(hello)
        elif endpoint.password is not None:
            user = (endpoint.username,) if endpoint.username else ()
            commands.append(("AUTH", *user, endpoint.password))
        if endpoint.db:
            commands.append(("SELECT", endpoint.db))
        if not commands:
            return
        payload = b"".join(_packed(c) for c in commands)
        for reply in await self._send(protocol, payload, len(commands)):
            if isinstance(reply, Exception):
                protocol.abort(ConnectionError("handshake failed"))
                raise reply

    async def aclose(self) -> None:
        if self._protocol is not None and self._protocol.transport is not None:
            self._protocol.transport.close()
        self._protocol = None


def _packed(command: Command) -> bytes:
    """As redis-py sends it: a two-word name ("CONFIG GET") is two arguments on the wire.
    hiredis packs str, bytes, int and float; redis-py also takes bytearray and memoryview."""
    name = command[0]
    if " " in name if isinstance(name, str) else b" " in name:
        command = (*name.split(), *command[1:])
    try:
        return hiredis.pack_command(tuple(command))  # type: ignore[no-any-return]
    except TypeError:
        pass
    plain: tuple[Any, ...] = tuple(
        bytes(a) if isinstance(a, bytearray | memoryview) else a for a in command
    )
    return hiredis.pack_command(plain)  # type: ignore[no-any-return]


class MultiplexedRedis(aioredis.Redis):
    """redis-py's asyncio client whose non-blocking commands and pipelines share one
    multiplexed connection (see the module's docstring). Replies are never decoded."""

    def __init__(self, *args: Any, endpoint: Endpoint, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.get_encoder().decode_responses:  # type: ignore[no-untyped-call]
            raise ValueError("MultiplexedRedis returns bytes; decode_responses must be off")
        protocol = self.connection_pool.connection_kwargs.get("protocol")
        resp = 3 if check_protocol_version(protocol, 3) else 2
        self._endpoint = replace(endpoint, resp=resp)
        self.multiplexed = MultiplexedConnection(self._endpoint)
        self._idle_readers: list[MultiplexedConnection] = []
        self._readers: list[MultiplexedConnection] = []

    @classmethod
    def owning(cls, pool: aioredis.ConnectionPool, endpoint: Endpoint) -> MultiplexedRedis:
        """A client that closes `pool` with itself (as redis-py's `from_pool`)."""
        client = cls(connection_pool=pool, endpoint=endpoint)
        client.auto_close_connection_pool = True
        return client

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        name = _name(args)
        blocks_s = _blocking_read_s(name, args)
        if blocks_s is not None:
            reply = await self._blocking_read(args, blocks_s)
        elif name in _KEPT_ON_POOL:
            return await super().execute_command(*args, **options)  # type: ignore[no-untyped-call]
        else:
            (reply,) = await self.multiplexed.execute([args])
        return await parse_reply(self.response_callbacks, args[0], reply, options)

    async def _blocking_read(self, args: Command, blocks_s: float) -> Any:
        """A blocking XREAD/XREADGROUP holds its connection: each concurrent one takes an
        idle reader connection (or opens one) and gives it back when answered."""
        reader = self._idle_readers.pop() if self._idle_readers else self._new_reader()
        try:
            (reply,) = await reader.execute([args], blocks_s=blocks_s)
        except BaseException:
            await reader.aclose()  # cancelled or failed mid-read: its reply may still come
            self._readers.remove(reader)
            raise
        self._idle_readers.append(reader)
        return reply

    def _new_reader(self) -> MultiplexedConnection:
        reader = MultiplexedConnection(self._endpoint)
        self._readers.append(reader)
        return reader

    def pipeline(self, transaction: bool = True, shard_hint: str | None = None) -> Pipeline:
        return MultiplexedPipeline(
            self.multiplexed, self.connection_pool, self.response_callbacks, transaction, shard_hint
        )

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        await self.multiplexed.aclose()
        for reader in self._readers:
            await reader.aclose()
        self._readers.clear()
        self._idle_readers.clear()
        await super().aclose(close_connection_pool)


class MultiplexedPipeline(Pipeline):
    """A pipeline (MULTI/EXEC when `transaction`) sent as one request on the multiplexed
    connection. With WATCH, scripts to load, or an explicit MULTI it runs as redis-py's own."""

    def __init__(self, multiplexed: MultiplexedConnection, *args: Any) -> None:
        super().__init__(*args)
        self._multiplexed = multiplexed

    async def execute(self, raise_on_error: bool = True) -> list[Any]:
        if self.watching or self.scripts or self.explicit_transaction:
            return await super().execute(raise_on_error)
        stack = self.command_stack
        if not stack:
            return []
        try:
            if self.is_transaction:
                return await self._transaction(stack, raise_on_error)
            return await self._pipelined(stack, raise_on_error)
        finally:
            await self.reset()  # type: ignore[no-untyped-call]

    async def _pipelined(self, stack: Stack, raise_on_error: bool) -> list[Any]:
        replies = await self._multiplexed.execute([args for args, _ in stack])
        return await self._parsed(stack, replies, raise_on_error)

    async def _transaction(self, stack: Stack, raise_on_error: bool) -> list[Any]:
        replies = await self._multiplexed.execute(
            [("MULTI",), *(args for args, _ in stack), ("EXEC",)]
        )
        queued, outcome = replies[1:-1], replies[-1]
        if isinstance(outcome, ExecAbortError):  # a command was refused before EXEC
            refused = next((r for r in queued if isinstance(r, Exception)), None)
            raise refused or outcome
        if isinstance(outcome, Exception):
            raise outcome
        if outcome is None:
            raise WatchError("Watched variable changed.")
        if len(outcome) != len(stack):
            raise ResponseError("Wrong number of response items from pipeline execution")
        return await self._parsed(stack, outcome, raise_on_error)

    async def _parsed(self, stack: Stack, replies: list[Any], raise_on_error: bool) -> list[Any]:
        results = []
        for index, ((args, options), reply) in enumerate(zip(stack, replies, strict=True)):
            if isinstance(reply, ResponseError):
                self.annotate_exception(reply, index + 1, args)
                if raise_on_error:
                    raise reply
                results.append(reply)
                continue
            results.append(await parse_reply(self.response_callbacks, args[0], reply, options))
        return results


async def parse_reply(
    callbacks: Any, command_name: Any, reply: Any, options: Mapping[str, Any]
) -> Any:
    """What redis-py's client returns for `reply`: its error raised (or the command's stated
    empty response), else the command's response callback applied."""
    if isinstance(reply, ResponseError):
        if "EMPTY_RESPONSE" in options:
            return options["EMPTY_RESPONSE"]
        raise reply
    options = {k: v for k, v in options.items() if k not in _CLIENT_ONLY_OPTIONS}
    callback = callbacks.get(command_name)
    if callback is None:
        return reply
    result = callback(reply, **options)
    return await result if inspect.isawaitable(result) else result


_CLIENT_ONLY_OPTIONS = ("EMPTY_RESPONSE", "NEVER_DECODE", "keys")


def _blocking_read_s(name: str, args: Sequence[Any]) -> float | None:
    """Seconds an XREAD/XREADGROUP may block (BLOCK 0: a year), None if it does not block."""
    if name not in ("XREAD", "XREADGROUP"):
        return None
    for position, arg in enumerate(args[:-1]):
        if isinstance(arg, str | bytes) and arg.upper() in ("BLOCK", b"BLOCK"):
            milliseconds = int(args[position + 1])
            return milliseconds / 1000 if milliseconds else _FOREVER_S
    return None


_FOREVER_S = 365 * 24 * 3600.0


def _name(args: Sequence[Any]) -> str:
    first = args[0] if isinstance(args[0], str) else args[0].decode()
    return first.split()[0].upper()
