"""Each reliability test gets a private redis-server it may kill, and a folder for worker logs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from services.common.embedded import EmbeddedRedis


@pytest.fixture
def private_redis() -> Iterator[EmbeddedRedis]:
    with EmbeddedRedis() as server:
        yield server


@pytest.fixture
def durable_redis() -> Iterator[EmbeddedRedis]:
    """AOF on with fsync at every write: what a killed server acknowledged, it still has."""
    with EmbeddedRedis(append_only=True, extra_args=("--appendfsync", "always")) as server:
        yield server


@pytest.fixture
def client(private_redis: EmbeddedRedis) -> Iterator[redis.Redis]:
    connection = redis.Redis.from_url(private_redis.url)
    yield connection
    connection.close()


@pytest.fixture
def log_dir(tmp_path: Path) -> Path:
    return tmp_path
