"""Producers reuse event ids: the same event again changes nothing, while an id sent again with
other content is dead-lettered as `conflict` with both digests and raises a data-quality alert;
the first content stays recorded."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest
import redis

from schemas.alerts import Alert, AlertKind
from schemas.deadletter import FailureReason
from schemas.metrics import MetricReported
from schemas.streams import Streams
from services.common.embedded import EmbeddedRedis
from services.common.records import decode_entries
from tests.reliability.support import (
    daily_metric,
    dead_letters,
    report,
    settled,
    start_worker,
    store_count,
    wait_for,
    worker_pool,
    xadd_all,
)

pytestmark = pytest.mark.reliability
NAMESPACE = "gp-conflict"
EVENTS = 300
CONFLICTING = 30


@pytest.mark.timeout(120)
def test_a_reused_event_id_with_other_content_is_a_conflict_and_the_same_content_a_no_op(
    private_redis: EmbeddedRedis,
    client: redis.Redis,
    log_dir: Path,
    record_property: Callable[[str, object], None],
) -> None:
    streams = Streams(NAMESPACE)
    originals = [daily_metric(f"CF{n % 30:02d}", n // 30, 100 + n) for n in range(EVENTS)]
    changed = [
        e.model_copy(update={"value": e.value + Decimal(1)}) for e in originals[::10][:CONFLICTING]
    ]
    with worker_pool() as pool:
        worker = start_worker(pool, log_dir, private_redis.url, NAMESPACE,
                              services="ingest,alerts")  # fmt: skip
        xadd_all(client, streams.metrics, (e.model_dump_json() for e in originals))
        xadd_all(client, streams.metrics, (e.model_dump_json() for e in originals))  # again
        xadd_all(client, streams.metrics, (e.model_dump_json() for e in changed))
        wait_for(settled(client, streams, settle_s=0.3, ingest_only=True), timeout_s=60,
                 what="ingest draining")  # fmt: skip
        wait_for(
            lambda: len(conflict_alerts(client, streams)) >= CONFLICTING,
            timeout_s=30,
            what="a data-quality alert per conflict",
        )
        assert worker.alive, worker.tail()

    letters = dead_letters(client, streams)
    alerts = conflict_alerts(client, streams)
    count = store_count(client, NAMESPACE)
    stored_values = recorded_values(client, streams, originals)
    kept_first = sum(1 for e in originals if stored_values.get((e.company, e.period)) == e.value)
    report(
        record_property,
        "conflicting_event_id",
        events=EVENTS * 2 + len(changed),
        identical_repeats=EVENTS,
        conflicting=len(changed),
        lost=len({e.event_id for e in originals} - count.recorded_events),
        duplicated=count.applied_twice,
        first_content_kept=kept_first,
        dead_lettered=len(letters),
        conflicts_dead_lettered=sum(1 for x in letters if x.reason is FailureReason.CONFLICT),
        conflict_alerts=len(alerts),
    )
    assert count.applied_twice == 0
    assert kept_first == EVENTS
    assert [x.reason for x in letters] == [FailureReason.CONFLICT] * CONFLICTING
    assert {x.event_id for x in letters} == {e.event_id for e in changed}
    assert all(x.details["recorded_digest"] != x.details["received_digest"] for x in letters)
    assert sorted(a.subject for a in alerts) == sorted(f"event_id:{e.event_id}" for e in changed)


def conflict_alerts(client: redis.Redis, streams: Streams) -> list[Alert]:
    alerts = decode_entries(client.xrange(streams.alerts), Alert, stream=streams.alerts)
    return [
        a
        for a in alerts.values
        if a.kind is AlertKind.DATA_QUALITY and a.subject.startswith("event_id:")
    ]


def recorded_values(
    client: redis.Redis, streams: Streams, events: list[MetricReported]
) -> dict[tuple[str, str], Decimal]:
    values = {}
    for company in {e.company for e in events}:
        for field, blob in client.hgetall(streams.company_key(company, "facts")).items():
            period = field.decode().split("|", 1)[1]
            values[(company, period)] = Decimal(json.loads(blob)["v"])
    return values
