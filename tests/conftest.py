"""Where the tests find Redis: REDIS_URL, else a testcontainer if a Docker engine answers,
else a private redis-server on a free loopback port. Each test gets its own namespace."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import AsyncIterator, Iterator
from uuid import uuid4

import pytest
import redis
import redis.asyncio as aioredis

from schemas.streams import Streams
from services.common.embedded import EmbeddedRedis


def _docker_answers() -> bool:
    try:
        result = subprocess.run(["docker", "info"], capture_output=True, timeout=5, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0


@contextlib.contextmanager
def _testcontainer() -> Iterator[str]:
    from testcontainers.redis import RedisContainer

    with RedisContainer("redis:7.2") as container:
        host = container.get_container_host_ip()
        yield f"redis://{host}:{container.get_exposed_port(6379)}/0"


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    if url := os.environ.get("REDIS_URL"):
        yield url
    elif _docker_answers():
        with _testcontainer() as url:
            yield url
    else:
        with EmbeddedRedis() as server:
            yield server.url


@pytest.fixture
def namespace() -> str:
    return f"gp-test-{uuid4().hex[:12]}"


@pytest.fixture
def streams(namespace: str) -> Streams:
    return Streams(namespace)


@pytest.fixture
async def redis_client(redis_url: str, namespace: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_url)
    yield client
    await _delete_namespace(client, namespace)
    await client.aclose()


async def _delete_namespace(client: aioredis.Redis, namespace: str) -> None:
    """Only this test's keys: never FLUSHALL a shared server."""
    async for key in client.scan_iter(match=f"{namespace}:*", count=1000):
        await client.delete(key)


@pytest.fixture
def sync_redis(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def pytest_report_header() -> str:
    """Which transport the Redis-backed suites run on (`services.common.transport`)."""
    return f"redis client: {os.environ.get('GUIDEPOST_REDIS_CLIENT', 'multiplexed (default)')}"
