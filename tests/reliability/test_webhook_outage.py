"""The webhook receiver is down for longer than the sink's retry budget (the notices used to be
dead-lettered and never sent again): every notice is scheduled for redelivery, and once the
receiver is back each arrives exactly once, counted at the receiver against the alerts
stream."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis

from schemas.alerts import Alert
from schemas.streams import Streams
from services.common.embedded import EmbeddedRedis
from services.common.records import decode_entries
from tests.reliability.support import (
    dead_letters,
    group_backlog,
    report,
    settled,
    start_worker,
    wait_for,
    worker_pool,
    xadd_all,
)
from tests.support.pipeline import synthetic_company
from tests.support.receiver import receiving

pytestmark = pytest.mark.reliability
NAMESPACE = "gp-webhook-outage"
OUTAGE_S = 8.0
NET_INCOME = [410, 425, 433, 452, 470, 468, 490, 505, 512, 530, 541, 560]
# three attempts with 0.5 s base backoff: about 1.5 s of retries before a notice is scheduled;
# while the receiver is known down, later notices join the schedule at once
WEBHOOK = {
    "GUIDEPOST_WEBHOOK_MAX_ATTEMPTS": "3",
    "GUIDEPOST_WEBHOOK_RETRY_BASE_S": "0.5",
    "GUIDEPOST_WEBHOOK_RETRY_MAX_DELAY_S": "2",
}


class Receiver:
    """503 for every request until `up`; then records each notice it accepts."""

    def __init__(self) -> None:
        self.up = False
        self.refused = 0
        self.accepted: list[tuple[str, str, str]] = []
        self.lock = threading.Lock()

    def answer(self, body: bytes) -> int:
        with self.lock:
            if not self.up:
                self.refused += 1
                return 503
            for alert in json.loads(body)["alerts"]:
                notice = (
                    alert["fingerprint"],
                    alert["startsAt"],
                    alert["annotations"]["notification"],
                )
                self.accepted.append(notice)
            return 200


@contextmanager
def serving(receiver: Receiver) -> Iterator[str]:
    with receiving(lambda posted: receiver.answer(posted.body), "/hook") as url:
        yield url


def notice_of(alert: Alert) -> tuple[str, str, str]:
    starts = alert.starts_at.isoformat().replace("+00:00", "Z")
    return alert.fingerprint, starts, str(alert.notification)


def all_scheduled(client: redis.Redis, streams: Streams) -> bool:
    """The webhook group has taken every notice, and each waits in the redelivery schedule."""
    notices = len(stream_notices(client, streams))
    backlog = group_backlog(client, streams.alerts)
    return notices > 0 and backlog == 0 and client.zcard(streams.key("{webhook}", "due")) == notices


def stream_notices(client: redis.Redis, streams: Streams) -> list[tuple[str, str, str]]:
    alerts = decode_entries(client.xrange(streams.alerts), Alert, stream=streams.alerts).values
    return [notice_of(alert) for alert in alerts]


@pytest.mark.timeout(150)
def test_a_receiver_down_past_the_retry_budget_gets_every_notice_exactly_once(
    private_redis: EmbeddedRedis,
    client: redis.Redis,
    log_dir: Path,
    record_property: Callable[[str, object], None],
) -> None:
    streams = Streams(NAMESPACE)
    events = [
        e
        for n in range(8)
        for e in synthetic_company(f"WH{n}", first="2021Q1", values=NET_INCOME, guided=(570, 590))
    ]
    receiver = Receiver()
    with serving(receiver) as url, worker_pool() as pool:
        worker = start_worker(pool, log_dir, private_redis.url, NAMESPACE,
                              settings={"GUIDEPOST_WEBHOOK_URL": url, **WEBHOOK})  # fmt: skip
        started = time.monotonic()
        metrics = [e for e in events if type(e).__name__ == "MetricReported"]
        guidance = [e for e in events if type(e).__name__ == "GuidanceIssued"]
        xadd_all(client, streams.metrics, (e.model_dump_json() for e in metrics))
        xadd_all(client, streams.guidance, (e.model_dump_json() for e in guidance))
        wait_for(settled(client, streams), timeout_s=60, what="the pipeline settled")
        # the outage lasts until every notice waits in the redelivery schedule, and OUTAGE_S
        wait_for(
            lambda: all_scheduled(client, streams), timeout_s=90, what="every notice scheduled"
        )
        time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - started)))
        scheduled = int(client.zcard(streams.key("{webhook}", "due")))
        receiver.up = True
        back_at = time.monotonic()
        outage_s = back_at - started
        expected = stream_notices(client, streams)
        wait_for(
            lambda: set(expected) <= set(receiver.accepted),
            timeout_s=30,
            what="every notice delivered after the outage",
        )
        delivered_s = time.monotonic() - back_at
        wait_for(lambda: client.zcard(streams.key("{webhook}", "due")) == 0, timeout_s=10,
                 what="the redelivery schedule empty")  # fmt: skip
        time.sleep(1.0)  # a duplicate would arrive within a retry round or two
        assert worker.alive, worker.tail()
        log = worker.tail(100_000)

    counts = Counter(receiver.accepted)
    report(
        record_property,
        "webhook_outage",
        events=len(events),
        notices=len(expected),
        outage_s=round(outage_s, 1),
        refused_during_outage=receiver.refused,
        scheduled_for_redelivery=scheduled,
        delivered=len(counts),
        lost=len(set(expected) - set(counts)),
        delivered_twice=sum(n - 1 for n in counts.values()),
        dead_lettered=len(dead_letters(client, streams)),
        redelivery_log_lines=log.count("next attempt in"),
        time_to_deliver_after_outage_s=round(delivered_s, 2),
    )
    assert expected, "the load raised alerts"
    assert scheduled == len(expected)
    assert set(counts) == set(expected)
    assert all(n == 1 for n in counts.values()), "each notice delivered exactly once"
    assert dead_letters(client, streams) == []
