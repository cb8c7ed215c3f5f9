"""One pipeline run on the bundled company, shared by every API test (they only read)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from uuid import uuid4

import httpx
import pytest
import redis

from tests.api.running import POPULATE_TIMEOUT_S, BundledRun, api_client, populate


@pytest.fixture(scope="session")
def bundled_run(redis_url: str) -> Iterator[BundledRun]:
    namespace = f"gp-test-api-{uuid4().hex[:12]}"
    # its own thread and event loop: the session outlives every test's loop
    with ThreadPoolExecutor(max_workers=1) as pool:
        run = pool.submit(asyncio.run, populate(redis_url, namespace)).result(
            timeout=POPULATE_TIMEOUT_S
        )
    yield run
    client = redis.Redis.from_url(redis_url)
    for key in client.scan_iter(match=f"{namespace}:*", count=1000):
        client.delete(key)
    client.close()


@pytest.fixture
async def client(bundled_run: BundledRun) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(bundled_run.api_settings()) as client:
        yield client
