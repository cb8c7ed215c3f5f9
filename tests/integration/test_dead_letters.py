"""A malformed entry written straight to an input stream ends in the dead-letter stream, with
its own reason and a copy capped in size."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

import pytest
import redis.asyncio as aioredis

from schemas.base import Event
from schemas.deadletter import DeadLetter, FailureReason
from schemas.metrics import MetricReported
from schemas.streams import Groups, Streams
from services.common.consumer import Consumption
from services.common.wire import B_DATA_FIELD
from tests.reliability.support import daily_metric
from tests.support.pipeline import pipeline, publish_and_settle, synthetic_company, worker_settings

pytestmark = pytest.mark.integration


@pytest.mark.timeout(120)
async def test_malformed_entry_is_dead_lettered_with_payload_and_reason_and_the_worker_keeps_serving(
    redis_url: str, namespace: str
) -> None:
    bad = {
        "company": "ACME",
        "metric": "dpd90_rate_pct",
        "period": "2024Q1",
        "value": "335",
        "unit": "percent",
    }
    async with pipeline(worker_settings(redis_url, namespace)) as workers:
        await workers.redis.xadd(workers.streams.metrics, {"__data__": json.dumps(bad)})
        await workers.redis.xadd(workers.streams.metrics, {"garbage": "no event field"})
        good = synthetic_company("ACME", first="2023Q1", values=[1, 2, 3], guided=(3, 4))
        await publish_and_settle(workers, good)
        letters_raw: Any = await workers.redis.xrange(workers.streams.dead_letters)
        stored = await workers.redis.hgetall(f"{namespace}:{{ACME}}:versions")

    # one letter each; their order is not promised (ingest handles several batches at once)
    letters = [DeadLetter.model_validate_json(fields[B_DATA_FIELD]) for _, fields in letters_raw]
    by_reason = {letter.reason: letter for letter in letters}
    assert len(letters) == 2
    assert set(by_reason) == {FailureReason.INVALID, FailureReason.UNDECODABLE}
    invalid, undecodable = by_reason[FailureReason.INVALID], by_reason[FailureReason.UNDECODABLE]
    assert json.loads(invalid.payload["__data__"]) == bad
    assert "value: dpd90_rate_pct must be at most 100, got 335" in invalid.error
    assert undecodable.payload == {"garbage": "no event field"}
    assert undecodable.field == "__data__"
    assert len(stored) == 3, "valid events after the bad ones were all processed"


@pytest.mark.timeout(60)
async def test_failures_of_entries_with_the_same_id_on_two_streams_keep_their_own_reasons(
    redis_client: aioredis.Redis, streams: Streams
) -> None:
    """One group reads several streams, whose entry ids may coincide: each entry's last error
    is its own when it is dead-lettered (they were once swapped)."""
    consumptions = {}
    for stream in (streams.metrics, streams.results):
        await redis_client.xgroup_create(stream, Groups.INGEST, id="0", mkstream=True)
        await redis_client.xadd(stream, {"__data__": daily_metric("SAME", 1, 1).model_dump_json()},
                                id="1-1")  # fmt: skip

        async def failing(
            events: Sequence[Event], name: str = stream
        ) -> list[BaseException | None]:
            return [RuntimeError(f"failed on {name}") for _ in events]

        consumptions[stream] = Consumption(
            redis=redis_client, streams=streams, stream=stream, group=Groups.INGEST,
            event_type=MetricReported, apply=failing, max_deliveries=1, max_payload_bytes=65_536,
        )  # fmt: skip
    for stream, consumption in consumptions.items():
        read: Any = await redis_client.xreadgroup(Groups.INGEST, "c", {stream: ">"})
        await consumption.consume_batch(read[0][1])
    for stream, consumption in consumptions.items():
        claimed: Any = await redis_client.xclaim(stream, Groups.INGEST, "c", 0, ["1-1"])
        await consumption.consume_claimed(claimed[0])

    raw: Any = await redis_client.xrange(streams.dead_letters)
    letters = [DeadLetter.model_validate_json(fields[B_DATA_FIELD]) for _, fields in raw]
    assert sorted((x.source_stream, x.entry_id, x.error) for x in letters) == sorted(
        (stream, "1-1", f"after 1 attempts: RuntimeError: failed on {stream}")
        for stream in consumptions
    )


@pytest.mark.timeout(60)
async def test_an_oversized_entry_leaves_a_capped_copy_with_its_size_and_digest(
    redis_url: str, namespace: str
) -> None:
    body = json.dumps({"company": "ACME", "padding": "x" * 400_000})
    settings = worker_settings(redis_url, namespace, services="ingest")
    async with pipeline(settings) as workers:
        await workers.redis.xadd(workers.streams.metrics, {"__data__": body})
        await publish_and_settle(workers, [daily_metric("ACME", 1, 1)])
        raw: Any = await workers.redis.xrange(workers.streams.dead_letters)

    (letter,) = [DeadLetter.model_validate_json(fields[B_DATA_FIELD]) for _, fields in raw]
    assert letter.reason is FailureReason.OVERSIZED
    assert letter.payload_truncated
    assert len(letter.payload["__data__"]) < 10_000
    assert letter.payload_bytes == len(b"__data__") + len(body)
    assert letter.payload_sha256 == hashlib.sha256(body.encode()).hexdigest()
