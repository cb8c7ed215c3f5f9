"""With partitioned streams, an entry a producer writes to the input stream's own (unpartitioned)
name is still read: applied like one on its partition, or dead-lettered with its reason."""

from __future__ import annotations

import json
from typing import Any

import pytest

from schemas.deadletter import DeadLetter, FailureReason
from schemas.history import HistoryUpdated
from schemas.streams import Groups
from services.cli.demo import wait_until_idle
from services.common.publishing import logical_stream_for
from services.common.wire import B_DATA_FIELD, entry_fields
from tests.support.pipeline import pipeline, synthetic_company, worker_settings

pytestmark = pytest.mark.integration


@pytest.mark.timeout(120)
async def test_entries_on_the_unpartitioned_input_name_are_applied_or_dead_lettered(
    redis_url: str, namespace: str
) -> None:
    settings = worker_settings(redis_url, namespace, partitions=4)
    events = synthetic_company("ACME", first="2023Q1", values=[1, 2, 3], guided=(3, 4))
    bad = {"company": "ACME", "metric": "net_incme", "period": "2024Q1", "value": "1"}
    async with pipeline(settings) as workers:
        streams = workers.streams
        for event in events:
            unpartitioned = logical_stream_for(streams, event)
            await workers.redis.xadd(unpartitioned, entry_fields(event))  # type: ignore[arg-type]
        await workers.redis.xadd(streams.metrics, {"__data__": json.dumps(bad)})
        await wait_until_idle(workers, timeout_s=60, settle_s=0.2)
        history_stream = streams.for_company(streams.history, "ACME")
        history: Any = await workers.redis.xrange(history_stream)
        letters: Any = await workers.redis.xrange(streams.dead_letters)
        groups: Any = await workers.redis.xinfo_groups(streams.metrics)

    causes = {
        HistoryUpdated.model_validate_json(f[B_DATA_FIELD]).cause_event_id for _, f in history
    }
    sent = {e.event_id for e in events}
    assert history_stream != streams.history, "the history stream is partitioned"
    assert sent <= causes, "every event written to the unpartitioned names was recorded"
    [letter] = [DeadLetter.model_validate_json(f[B_DATA_FIELD]) for _, f in letters]
    assert (letter.source_stream, letter.reason) == (streams.metrics, FailureReason.INVALID)
    assert "unknown metric" in letter.error
    [group] = groups
    assert (group["name"], group["pending"], group["lag"]) == (Groups.INGEST.encode(), 0, 0)
