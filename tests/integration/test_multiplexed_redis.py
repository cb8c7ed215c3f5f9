"""The workers' Redis client: every task's commands pipelined on one connection, blocking
reads on connections of their own, the same replies and errors as redis-py's own client."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis
import redis.exceptions as redis_errors
from redis.asyncio import ConnectionPool

from services.common.embedded import EmbeddedRedis
from services.common.settings import RedisSettings
from services.common.transport.multiplexed import Endpoint, MultiplexedRedis
from services.common.transport.multiplexed_broker import create_broker, create_redis

pytestmark = pytest.mark.integration


@pytest.fixture
async def client(redis_url: str, namespace: str) -> AsyncIterator[MultiplexedRedis]:
    redis = create_redis(RedisSettings.model_validate({"redis_url": redis_url}))
    assert isinstance(redis, MultiplexedRedis)
    yield redis
    async for key in redis.scan_iter(match=f"{namespace}:*", count=1000):
        await redis.delete(key)
    await redis.aclose()


async def test_concurrent_tasks_each_get_their_own_replies(
    client: MultiplexedRedis, namespace: str
) -> None:
    async def one(n: int) -> tuple[Any, ...]:
        await client.set(f"{namespace}:k{n}", f"v{n}")
        async with client.pipeline(transaction=True) as pipe:
            pipe.hset(f"{namespace}:h{n}", mapping={"n": n})
            pipe.hgetall(f"{namespace}:h{n}")
            pipe.incr(f"{namespace}:counter")
            _, fields, counted = await pipe.execute()
        return await client.get(f"{namespace}:k{n}"), fields, counted

    results = await asyncio.gather(*(one(n) for n in range(300)))

    assert [value for value, _, _ in results] == [f"v{n}".encode() for n in range(300)]
    assert [fields for _, fields, _ in results] == [{b"n": str(n).encode()} for n in range(300)]
    assert sorted(counted for _, _, counted in results) == list(range(1, 301))


async def test_error_replies_raise_redis_py_s_exceptions_and_the_connection_goes_on(
    client: MultiplexedRedis, namespace: str
) -> None:
    await client.set(f"{namespace}:text", "x")
    with pytest.raises(redis_errors.ResponseError, match="WRONGTYPE"):
        await client.hget(f"{namespace}:text", "field")
    assert await client.get(f"{namespace}:text") == b"x"


async def test_a_script_the_server_forgot_is_loaded_again(
    client: MultiplexedRedis, namespace: str
) -> None:
    script = client.register_script("return redis.call('INCR', KEYS[1])")
    assert await script(keys=[f"{namespace}:n"]) == 1
    await client.script_flush()  # the server forgets it (a restart without persistence)
    assert await script(keys=[f"{namespace}:n"]) == 2


async def test_a_transaction_with_a_refused_command_writes_nothing(
    client: MultiplexedRedis, namespace: str
) -> None:
    async with client.pipeline(transaction=True) as pipe:
        pipe.set(f"{namespace}:written", "1")
        pipe.execute_command("NO-SUCH-COMMAND")
        with pytest.raises(redis_errors.ResponseError, match="unknown command"):
            await pipe.execute()
    assert await client.get(f"{namespace}:written") is None


async def test_a_failed_command_inside_a_transaction_is_reported_in_its_place(
    client: MultiplexedRedis, namespace: str
) -> None:
    await client.set(f"{namespace}:text", "x")
    async with client.pipeline(transaction=True) as pipe:
        pipe.set(f"{namespace}:a", "1")
        pipe.hset(f"{namespace}:text", "f", "v")  # WRONGTYPE when it runs
        pipe.get(f"{namespace}:a")
        ok, failed, value = await pipe.execute(raise_on_error=False)
    assert ok is True
    assert isinstance(failed, redis_errors.ResponseError)
    assert value == b"1"


async def test_blocking_reads_hold_their_own_connections_not_the_shared_one(
    client: MultiplexedRedis, namespace: str
) -> None:
    stream = f"{namespace}:stream"
    await client.xgroup_create(stream, "g", id="0", mkstream=True)

    async def read(consumer: str) -> Any:
        return await client.xreadgroup("g", consumer, {stream: ">"}, count=1, block=5000)

    readers = [asyncio.create_task(read(f"c{n}")) for n in range(2)]
    await asyncio.sleep(0)  # both reads sent
    started = time.monotonic()
    for _ in range(50):
        assert await client.ping()
    assert time.monotonic() - started < 2  # not queued behind a read blocked for 5 s
    await client.xadd(stream, {"n": 1})
    await client.xadd(stream, {"n": 2})
    replies = await asyncio.wait_for(asyncio.gather(*readers), timeout=5)
    assert sorted(reply[0][1][0][1][b"n"] for reply in replies) == [b"1", b"2"]


async def test_fast_stream_s_reads_go_through_it_too(redis_url: str) -> None:
    broker = create_broker(RedisSettings.model_validate({"redis_url": redis_url}))
    client = await broker.connect()
    try:
        assert isinstance(client, MultiplexedRedis)
        assert await client.ping()
    finally:
        await broker.stop()


@pytest.mark.timeout(60)
async def test_after_redis_restarts_the_next_command_reconnects() -> None:
    with EmbeddedRedis() as server:  # private: this test restarts it
        client = _multiplexed(server.url)
        await client.set("k", "before")
        server.kill()
        with pytest.raises(redis_errors.ConnectionError):
            await client.get("k")
        server.start()
        assert await client.set("k", "after")
        assert await client.get("k") == b"after"
        await client.aclose()


@pytest.mark.timeout(60)
async def test_a_server_that_stops_answering_times_the_request_out() -> None:
    with EmbeddedRedis() as server:
        client = _multiplexed(server.url, timeout_s=0.3)
        await client.ping()
        assert server.process is not None
        os.kill(server.process.pid, signal.SIGSTOP)
        try:
            with pytest.raises(redis_errors.TimeoutError):
                await client.ping()
        finally:
            os.kill(server.process.pid, signal.SIGCONT)
        assert await client.ping()
        await client.aclose()


@pytest.mark.timeout(60)
async def test_it_authenticates_with_the_password_and_refuses_a_wrong_one() -> None:
    with EmbeddedRedis() as server:
        admin = redis.Redis.from_url(server.url)
        admin.config_set("requirepass", "s3cret")
        admin.close()
        good = _multiplexed(server.url, password="s3cret")
        assert await good.set("k", "v")
        bad = _multiplexed(server.url, password="wrong")
        with pytest.raises(redis_errors.AuthenticationError):
            await bad.get("k")
        await good.aclose()
        await bad.aclose()


def _multiplexed(
    url: str, *, password: str | None = None, timeout_s: float = 5.0
) -> MultiplexedRedis:
    pool = ConnectionPool.from_url(url, password=password)
    endpoint = Endpoint.of(url, password=password, timeout_s=timeout_s)
    return MultiplexedRedis.owning(pool, endpoint)


@pytest.mark.parametrize("protocol", [2, 3])
async def test_its_replies_equal_redis_py_s_own_in_either_protocol(
    redis_url: str, namespace: str, protocol: int
) -> None:
    url = f"{redis_url}?protocol={protocol}"
    own = redis.asyncio.Redis.from_url(url)
    ours = MultiplexedRedis.owning(ConnectionPool.from_url(url), Endpoint.of(redis_url))
    stream, key = f"{namespace}:s", f"{namespace}:h"
    await own.hset(key, mapping={"a": 1, "b": "two"})
    await own.xgroup_create(stream, "g", id="0", mkstream=True)
    await own.xadd(stream, {"f": "v"}, id="1-1")

    async def replies(client: Any) -> list[Any]:
        async with client.pipeline(transaction=True) as pipe:
            pipe.hgetall(key)
            pipe.xrange(stream)
            in_transaction = await pipe.execute()
        return [
            await client.hgetall(key),
            await client.xinfo_groups(stream),
            await client.xpending(stream, "g"),
            await client.xrange(stream),
            await client.config_get("maxmemory-policy"),
            in_transaction,
        ]

    try:
        assert await replies(ours) == await replies(own)
        read = await ours.xreadgroup("g", "c", {stream: ">"}, count=10)
        assert read == await own.xreadgroup("g", "c", {stream: "0"}, count=10)  # its pending
    finally:
        await own.delete(stream, key)
        await own.aclose()
        await ours.aclose()
