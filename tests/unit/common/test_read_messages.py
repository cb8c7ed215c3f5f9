"""How a read from Redis becomes FastStream's message: entries untouched, subscription uncopied."""

from __future__ import annotations

from typing import Any

import pytest
from faststream.redis.message import RedisBatchStreamMessage, RedisStreamMessage

from services.common.transport.multiplexed_broker import UnprefixedStreamSub, entries_untouched

pytestmark = pytest.mark.unit

NOT_UTF8 = {b"__data__": b"\xff\xfe not json"}


async def refuse(message: Any) -> Any:
    raise AssertionError("FastStream's parser ran on a read that carries entry ids")


async def test_a_batch_read_is_handed_over_as_received_named_by_its_first_entry() -> None:
    read = {
        "type": "bstream",
        "channel": "in:metrics",
        "data": [NOT_UTF8, {b"__data__": b"{}"}],
        "message_ids": [b"1-0", b"1-1"],
    }
    message = await entries_untouched(read, refuse)
    assert isinstance(message, RedisBatchStreamMessage)
    assert message.raw_message is read
    assert (message.message_id, message.correlation_id) == ("1-0", "1-0")


async def test_a_claimed_entry_is_handed_over_as_a_single_message() -> None:
    read = {"type": "stream", "channel": "in:metrics", "data": NOT_UTF8, "message_ids": [b"7-0"]}
    message = await entries_untouched(read, refuse)
    assert isinstance(message, RedisStreamMessage)
    assert message.raw_message is read


async def test_the_message_cannot_acknowledge_on_its_own() -> None:
    read = {"type": "stream", "channel": "s", "data": NOT_UTF8, "message_ids": [b"7-0"]}
    message = await entries_untouched(read, refuse)
    assert message.group is None  # FastStream's ack() sends no XACK without a group


async def test_a_read_without_entry_ids_keeps_faststreams_parser() -> None:
    """FastStream's in-memory test broker pairs messages with its pending entries by the
    correlation id its parser reads; its reads carry no entry ids."""
    seen: list[Any] = []

    async def original(message: Any) -> Any:
        seen.append(message)
        return RedisStreamMessage(raw_message=message, body=b"", consumer=None, group=None)  # type: ignore[arg-type]

    read = {"type": "bstream", "channel": "s", "data": [{b"__data__": b"{}"}] * 3}
    message = await entries_untouched(read, original)
    assert len(seen[0]["data"]) == 1  # parsed on a one-entry copy
    assert message.raw_message is read


def test_an_unprefixed_subscription_is_its_own_prefixed_form() -> None:
    subscription = UnprefixedStreamSub("in:metrics", group="ingest", consumer="c1")
    assert subscription.add_prefix("") is subscription


def test_a_prefix_still_names_a_copy() -> None:
    subscription = UnprefixedStreamSub("in:metrics", group="ingest", consumer="c1")
    prefixed = subscription.add_prefix("tenant-a:")
    assert prefixed.name == "tenant-a:in:metrics"
    assert subscription.name == "in:metrics"
