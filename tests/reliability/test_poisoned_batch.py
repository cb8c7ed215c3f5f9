"""One read of 100 entries holding poison: two the contract refuses (a value of 1e999999 and an
occurred_at in the year 9999, which once failed the whole batch when scaled) and one whose
effect fails in Redis itself (its company's state is corrupt). The 97 valid batch-mates are
recorded within that one read, each failure is logged with its own error, the refused ones are
dead-lettered at once and the failing one after its retries; the worker keeps serving."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import redis

from schemas.deadletter import FailureReason
from schemas.streams import Streams
from services.common.embedded import EmbeddedRedis
from tests.reliability.support import (
    daily_metric,
    dead_letters,
    report,
    start_worker,
    store_count,
    wait_for,
    worker_pool,
)

pytestmark = pytest.mark.reliability
NAMESPACE = "gp-poisoned-batch"
CLAIM_IDLE_MS = 4_000  # a retry would come no sooner than this
MAX_DELIVERIES = 2


@pytest.mark.timeout(90)
def test_a_poisoned_batch_applies_its_valid_batch_mates_within_one_read(
    private_redis: EmbeddedRedis,
    client: redis.Redis,
    log_dir: Path,
    record_property: Callable[[str, object], None],
) -> None:
    streams = Streams(NAMESPACE)
    valid = [daily_metric(f"OK{n % 10}", n, 1000 + n) for n in range(97)]
    overflow = json.loads(daily_metric("HUGE", 1, 1).model_dump_json()) | {"value": "1e999999"}
    future = json.loads(daily_metric("LATE", 1, 1).model_dump_json())
    future["occurred_at"] = "9999-12-31T23:59:59Z"
    corrupt = daily_metric("CORRUPT", 1, 1)
    client.set(streams.company_key("CORRUPT", "versions"), "not a hash")  # WRONGTYPE in Redis
    bodies = [e.model_dump_json() for e in valid[:30]]
    bodies += [json.dumps(overflow), corrupt.model_dump_json(), json.dumps(future)]
    bodies += [e.model_dump_json() for e in valid[30:]]
    assert len(bodies) == 100, "one read of the worker's batch size"

    with worker_pool() as pool:
        worker = start_worker(
            pool, log_dir, private_redis.url, NAMESPACE, services="ingest",
            settings={"GUIDEPOST_CLAIM_IDLE_MS": str(CLAIM_IDLE_MS),
                      "GUIDEPOST_MAX_DELIVERIES": str(MAX_DELIVERIES)},
        )  # fmt: skip
        warm_up = daily_metric("WARMUP", 1, 1)
        client.xadd(streams.metrics, {"__data__": warm_up.model_dump_json()})
        wait_for(
            lambda: warm_up.event_id in store_count(client, NAMESPACE).recorded_events,
            timeout_s=60,
            what="the worker reading",
        )
        started = time.monotonic()
        with client.pipeline(transaction=True) as pipe:  # all 100 arrive at once: one read
            for body in bodies:
                pipe.xadd(streams.metrics, {"__data__": body})
            pipe.execute()
        recorded_s = wait_for(
            lambda: {e.event_id for e in valid} <= store_count(client, NAMESPACE).recorded_events,
            timeout_s=30,
            what="the valid batch-mates recorded",
        )
        letters = wait_for_letters(client, streams, 3)
        served_after = daily_metric("AFTER", 1, 7)
        client.xadd(streams.metrics, {"__data__": served_after.model_dump_json()})
        wait_for(
            lambda: served_after.event_id in store_count(client, NAMESPACE).recorded_events,
            timeout_s=10,
            what="the worker still serving",
        )
        assert worker.alive, worker.tail()
        records = worker.log_records()
    since_start_s = time.monotonic() - started

    failures = [r for r in records if r.get("message", "").startswith("handling failed")]
    count = store_count(client, NAMESPACE)
    by_reason = {letter.event_id or letter.entry_id: letter.reason for letter in letters}
    report(
        record_property,
        "poisoned_batch",
        entries=len(bodies),
        valid=len(valid),
        lost=len({e.event_id for e in valid} - count.recorded_events),
        duplicated=count.applied_twice,
        dead_lettered=len(letters),
        dead_letter_reasons=sorted(reason.value for reason in by_reason.values()),
        valid_recorded_s=round(recorded_s, 2),
        claim_idle_s=CLAIM_IDLE_MS / 1000,
        failure_log_lines=len(failures),
        failure_log_events=sorted({r.get("event_id", "") for r in failures}),
        run_s=round(since_start_s, 1),
    )
    assert recorded_s < CLAIM_IDLE_MS / 1000, "batch-mates waited for a retry"
    assert count.applied_twice == 0
    assert sorted(r.value for r in by_reason.values()) == ["handler_failed", "invalid", "invalid"]
    assert by_reason[corrupt.event_id] is FailureReason.HANDLER_FAILED
    assert {r.get("event_id") for r in failures} == {corrupt.event_id}, "each its own error"
    assert all("WRONGTYPE" in r.get("error", "") for r in failures)
    assert len(failures) == MAX_DELIVERIES  # logged once per delivery (its batch, then alone)
    fields = {letter.field for letter in letters if letter.reason is FailureReason.INVALID}
    assert fields == {"value", "occurred_at"}


def wait_for_letters(client: redis.Redis, streams: Streams, count: int) -> list:  # type: ignore[type-arg]
    wait_for(
        lambda: len(dead_letters(client, streams)) >= count,
        timeout_s=30,
        what=f"{count} dead letters",
    )
    return dead_letters(client, streams)
