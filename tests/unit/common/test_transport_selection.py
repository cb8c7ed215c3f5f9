"""GUIDEPOST_REDIS_CLIENT chooses how every process reaches Redis: Guidepost's multiplexed
client (the default) or redis-py's and FastStream's stock ones; anything else is refused."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis
from faststream.redis import RedisBroker
from pydantic import ValidationError

from services.common.settings import (
    ApiSettings,
    RedisClient,
    RedisSettings,
    WorkerSettings,
    describe_settings_error,
)
from services.common.transport import create_broker, create_redis, transport_for
from services.common.transport.multiplexed import MultiplexedRedis
from services.common.transport.multiplexed_broker import OutageTolerantBroker

pytestmark = pytest.mark.unit


def settings_with(client: str | None) -> RedisSettings:
    return RedisSettings.model_validate({"redis_client": client} if client else {})


def test_the_multiplexed_client_is_the_default() -> None:
    assert transport_for(settings_with(None)).client is RedisClient.MULTIPLEXED


@pytest.mark.parametrize("settings_class", [RedisSettings, WorkerSettings, ApiSettings])
def test_every_process_reads_the_choice_from_the_environment(
    settings_class: type[RedisSettings], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GUIDEPOST_REDIS_CLIENT", "stock")

    assert transport_for(settings_class()).client is RedisClient.STOCK


async def test_multiplexed_builds_the_multiplexed_client_and_its_broker() -> None:
    settings = settings_with("multiplexed")
    client = create_redis(settings)
    try:
        assert isinstance(client, MultiplexedRedis)
        assert isinstance(create_broker(settings), OutageTolerantBroker)
    finally:
        await client.aclose()


async def test_stock_builds_redis_pys_own_client_and_faststreams_own_broker() -> None:
    settings = settings_with("stock")
    client = create_redis(settings)
    try:
        assert type(client) is aioredis.Redis
        broker = create_broker(settings)
        assert isinstance(broker, RedisBroker)
        assert not isinstance(broker, OutageTolerantBroker)
    finally:
        await client.aclose()


def test_the_two_read_entries_through_different_parsers() -> None:
    multiplexed = transport_for(settings_with("multiplexed"))
    stock = transport_for(settings_with("stock"))

    assert multiplexed.parser is not stock.parser
    assert type(stock.batches("s", group="g", consumer="c")).__module__.startswith("faststream.")


def test_an_unknown_client_is_refused_naming_the_setting_and_the_choices(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GUIDEPOST_REDIS_CLIENT", "pooled")

    with pytest.raises(ValidationError) as refused:
        WorkerSettings()

    message = describe_settings_error(refused.value)
    assert message.startswith("GUIDEPOST_REDIS_CLIENT:")
    assert "'multiplexed'" in message
    assert "'stock'" in message
