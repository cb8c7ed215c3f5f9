"""5,000 guidance statements published at full speed yield the same revision notices, in the
same order, as the same statements published at 400 events/s (the notices once depended on
how the history announcements happened to be batched: 'initial' folded into 'raised'). Both are
counted from the alerts stream, and checked against each statement's revision classified here."""

from __future__ import annotations

import random
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import redis

from schemas.alerts import Alert, AlertKind
from schemas.guidance import GuidanceIssued
from schemas.money import Scale
from schemas.registry import Basis
from schemas.streams import Streams
from services.common.embedded import EmbeddedRedis
from services.common.guidance_rules import Band, classify_revision
from services.common.records import decode_entries
from tests.reliability.support import (
    dead_letters,
    report,
    settled,
    start_worker,
    wait_for,
    worker_pool,
    xadd_all,
)

pytestmark = pytest.mark.reliability
COMPANIES = 100
STATEMENTS = 50  # per company: 5,000 in all
SLOW_RATE = 400  # events per second
PERIOD = f"FY{datetime.now(UTC).year}"
# each statement names another quarter it was issued in: no statement repeats an earlier one
# (the same band from the same release is one statement, announced once)
QUARTERS = [f"{year}Q{q}" for year in range(2010, 2026) for q in (1, 2, 3, 4)]
Notices = dict[tuple[str, str, str], list[str]]


def statements() -> tuple[list[GuidanceIssued], Notices]:
    """Each company's bands wander (raised, lowered, narrowed, widened, maintained); every
    statement differs from the one before. Returns the events and each one's revision."""
    rng = random.Random(20241205)
    events: list[GuidanceIssued] = []
    expected: Notices = defaultdict(list)
    first_known = datetime(2025, 1, 1, tzinfo=UTC)
    for c in range(COMPANIES):
        company, low, high, previous = f"GB{c:03d}", 1000, 1100, None
        for s in range(STATEMENTS):
            step = rng.choice(("raise", "lower", "narrow", "widen", "maintain"))
            low, high = {
                "raise": (low + 10, high + 20), "lower": (low - 20, high - 10),
                "narrow": (low + 5, high - 5), "widen": (low - 5, high + 5),
                "maintain": (low, high),
            }[step] if s else (low, high)  # fmt: skip
            if high - low < 20:
                low, high = low - 20, high + 20
            band = Band(low=float(low), high=float(high))
            expected[(company, "net_income", PERIOD)].append(classify_revision(previous, band))
            previous = band
            statement = GuidanceIssued(
                event_id=f"{company}-{s}", company=company, metric="net_income",
                period=PERIOD, basis=Basis.GAAP, low=Decimal(low), high=Decimal(high),
                currency="CNY", scale=Scale.MILLIONS, issued_in_period=QUARTERS[s],
                occurred_at=first_known + timedelta(hours=s),
            )  # fmt: skip
            events.append(statement)
    order = sorted(range(len(events)), key=lambda i: (i % STATEMENTS, i))  # interleaved
    return [events[i] for i in order], expected


def notices(client: redis.Redis, streams: Streams) -> Notices:
    found: Notices = defaultdict(list)
    alerts = decode_entries(client.xrange(streams.alerts), Alert, stream=streams.alerts).values
    for alert in alerts:
        if alert.kind is AlertKind.GUIDANCE_REVISION:
            found[(alert.company, alert.subject, alert.period)].append(alert.state or "")
    return found


def run(
    redis_url: str, log_dir: Path, namespace: str, events: list[GuidanceIssued], *, rate: int | None
) -> tuple[Notices, float, int]:
    client = redis.Redis.from_url(redis_url)
    streams = Streams(namespace)
    bodies = [e.model_dump_json() for e in events]
    with worker_pool() as pool:
        worker = start_worker(pool, log_dir, redis_url, namespace,
                              services="ingest,guidance,alerts")  # fmt: skip
        started = time.monotonic()
        if rate is None:
            xadd_all(client, streams.guidance, bodies, chunk=5_000)
        else:
            for start in range(0, len(bodies), rate // 10):  # a tenth of a second's worth
                xadd_all(client, streams.guidance, bodies[start : start + rate // 10])
                time.sleep(max(0.0, started + (start + rate // 10) / rate - time.monotonic()))
        wait_for(settled(client, streams, settle_s=0.5), timeout_s=180, what=f"{namespace}")
        took_s = time.monotonic() - started
        assert worker.alive, worker.tail()
    found = notices(client, streams)
    letters = len(dead_letters(client, streams))
    client.close()
    return found, took_s, letters


@pytest.mark.timeout(400)
def test_revision_notices_do_not_depend_on_the_publishing_rate(
    private_redis: EmbeddedRedis, log_dir: Path, record_property: Callable[[str, object], None]
) -> None:
    events, expected = statements()
    slow, slow_s, slow_letters = run(
        private_redis.url, log_dir, "gp-guidance-slow", events, rate=SLOW_RATE
    )
    fast, fast_s, fast_letters = run(
        private_redis.url, log_dir, "gp-guidance-fast", events, rate=None
    )

    def total(found: Notices) -> int:
        return sum(len(states) for states in found.values())

    differing = sorted(key for key in expected if fast.get(key) != slow.get(key))
    report(
        record_property,
        "guidance_burst",
        events=len(events),
        expected_notices=total(expected),
        slow_notices=total(slow),
        fast_notices=total(fast),
        slow_rate_per_s=SLOW_RATE,
        slow_s=round(slow_s, 1),
        fast_s=round(fast_s, 1),
        fast_events_per_s=round(len(events) / fast_s),
        series_differing=len(differing),
        lost=total(expected) - total(fast),
        dead_lettered=slow_letters + fast_letters,
    )
    assert total(expected) == len(events)
    assert slow == expected, "at 400 events/s, each statement's own notice, in order"
    assert fast == slow, f"full speed differs from the slow run for {differing[:3]}"
    assert slow_letters == fast_letters == 0
