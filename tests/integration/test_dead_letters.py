"""A malformed entry written straight to an input stream ends in the dead-letter stream."""

from __future__ import annotations

import json
from typing import Any

import pytest

from schemas.deadletter import DeadLetter, FailureReason
from services.common.wire import B_DATA_FIELD
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
