"""The alerts worker's stores: the in-memory fakes honour the contract the Redis adapter does.

Every test runs twice, against `FakeAlertStores` and against `RedisAlertStores` on a real
Redis, with the same assertions; where a test must look at what was written outside the port
(the alerts stream, the dead-letter stream, a batch's acknowledgement) each side answers
through a small probe of its own."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis.asyncio as aioredis

from schemas.alerts import Alert, AlertKind, AlertStatus, Severity
from schemas.deadletter import DeadLetter, FailureReason
from schemas.streams import Streams
from services.alerts.lifecycle import AlertRecord, Silence, fingerprint, group_key
from services.alerts.redelivery import Pending
from services.alerts.store import (
    AlertStores,
    AlertsView,
    FakeAlertStores,
    RecordWrite,
    RedisAlertStores,
    RedisAlertsView,
)
from services.common.streams import Acknowledgement
from services.common.wire import B_DATA_FIELD

pytestmark = pytest.mark.integration

T0 = datetime(2024, 8, 1, 9, tzinfo=UTC)


@dataclass
class Side:
    """One implementation of the stores, and how to see what it wrote outside them."""

    stores: AlertStores
    redis: aioredis.Redis | None = None
    streams: Streams | None = None

    def view(self) -> AlertsView:
        """The read side as the API and the command build it."""
        if self.redis is None or self.streams is None:
            assert isinstance(self.stores, FakeAlertStores)
            return self.stores.records
        return RedisAlertsView(self.redis, self.streams)

    async def notices(self) -> list[Alert]:
        if self.redis is None or self.streams is None:
            assert isinstance(self.stores, FakeAlertStores)
            return list(self.stores.records.notices)
        entries: Any = await self.redis.xrange(self.streams.alerts)
        return [Alert.model_validate_json(fields[B_DATA_FIELD]) for _, fields in entries]

    async def dead_letters(self, sink: str) -> list[DeadLetter]:
        if self.redis is None or self.streams is None:
            assert isinstance(self.stores, FakeAlertStores)
            return list(self.stores.ledger(sink).letters)
        entries: Any = await self.redis.xrange(self.streams.dead_letters)
        return [DeadLetter.model_validate_json(fields[B_DATA_FIELD]) for _, fields in entries]

    async def acknowledgement(self) -> Acknowledgement:
        """An entry read by a group, waiting for its acknowledgement."""
        if self.redis is None or self.streams is None:
            return Acknowledgement("signals", "alerts", (b"1-0",))
        stream = self.streams.signals
        group = f"g{await self.redis.incr(self.streams.key('contract-groups'))}"
        await self.redis.xgroup_create(stream, group, id="$", mkstream=True)
        entry_id = await self.redis.xadd(stream, {"__data__": "{}"})
        await self.redis.xreadgroup(group, "c", {stream: ">"})
        return Acknowledgement(stream, group, (entry_id,))

    async def acknowledged(self, acknowledgement: Acknowledgement) -> bool:
        if self.redis is None:
            assert isinstance(self.stores, FakeAlertStores)
            return acknowledgement in self.stores.records.acknowledged
        summary: Any = await self.redis.xpending(acknowledgement.stream, acknowledgement.group)
        return int(summary["pending"]) == 0


@pytest.fixture(params=["fake", "redis"])
def side(request: pytest.FixtureRequest, redis_client: aioredis.Redis, streams: Streams) -> Side:
    if request.param == "fake":
        return Side(FakeAlertStores())
    return Side(RedisAlertStores(redis_client, streams, max_length=1_000), redis_client, streams)


def record(
    *, company: str = "QFIN", subject: str = "net_income", status: str = "firing", notices: int = 1
) -> AlertRecord:
    identity = {"company": company, "period": "2024Q2", "kind": "band_check", "subject": subject}
    return AlertRecord(
        fingerprint=fingerprint(**identity),
        **identity,
        status=status,  # type: ignore[arg-type]
        severity="warning",
        state="likely_below",
        summary=f"{company} {subject} is likely below.",
        details_digest="d",
        starts_at=T0,
        observed_at=T0,
        last_notified_at=T0,
        notifications=notices,
        notified_state="likely_below",
        notified_severity="warning",
    )


def notice_of(kept: AlertRecord, *, event_id: str | None = None, starts_at: datetime = T0) -> Alert:
    return Alert(
        event_id=event_id or f"{kept.fingerprint}-{kept.notifications}",
        company=kept.company, fingerprint=kept.fingerprint,
        group_key=group_key(company=kept.company, period=kept.period),
        kind=AlertKind(kept.kind), status=AlertStatus(kept.status), severity=Severity.WARNING,
        period=kept.period, subject=kept.subject, state=kept.state, summary=kept.summary,
        starts_at=starts_at, notification=kept.notifications,
    )  # fmt: skip


def pending(alert: Alert, *, attempts: int = 1, first: float = 100.0) -> Pending:
    return Pending(alert.event_id, alert.model_dump_json(), first, attempts, "HTTP 503")


# --------------------------------------------------------------------------- records


async def test_records_written_with_their_notices_are_read_back_singly_and_by_company(
    side: Side,
) -> None:
    net, adjusted = record(), record(subject="non_gaap_net_income", status="resolved")
    other = record(company="ACME")
    records = side.stores.records
    await records.write([RecordWrite(net, notice_of(net)), RecordWrite(adjusted)])
    await records.write([RecordWrite(other, notice_of(other))])

    known = await records.known(
        whole=["QFIN"], single=[("ACME", other.fingerprint), ("ACME", "0" * 32)]
    )
    assert known.records == {
        ("QFIN", net.fingerprint): net,
        ("QFIN", adjusted.fingerprint): adjusted,
        ("ACME", other.fingerprint): other,
        ("ACME", "0" * 32): None,
    }
    assert await records.records("QFIN") == {net.fingerprint: net, adjusted.fingerprint: adjusted}
    assert await records.find([("QFIN", adjusted.fingerprint), ("QFIN", "0" * 32)]) == [
        adjusted,
        None,
    ]
    assert await records.find([]) == []
    assert [n.event_id for n in await side.notices()] == [
        notice_of(net).event_id,
        notice_of(other).event_id,
    ]


async def test_the_read_side_counts_what_fires_now(side: Side) -> None:
    records = side.stores.records
    await records.write(
        [RecordWrite(record()), RecordWrite(record(subject="b", status="resolved"))]
    )
    await records.write([RecordWrite(record(subject="c"))])
    view = side.view()
    assert await view.firing("QFIN") == 2
    assert await view.firing("NONE") == 0


async def test_the_read_side_gives_the_newest_notices_first_of_one_company_or_all(
    side: Side,
) -> None:
    qfin = [record(subject=s) for s in ("a", "b", "c")]
    acme = record(company="ACME")
    writes = [RecordWrite(r, notice_of(r)) for r in (qfin[0], acme, qfin[1], qfin[2])]
    for write in writes:
        await side.stores.records.write([write])
    view = side.view()
    assert [n.subject for n in await view.newest("QFIN", limit=2)] == ["c", "b"]
    assert [n.company for n in await view.newest(limit=10)] == ["QFIN", "QFIN", "ACME", "QFIN"]
    assert await view.newest("NONE") == []


async def test_a_tail_reads_the_notices_after_an_entry_in_order(side: Side) -> None:
    for subject in ("a", "b", "c"):
        kept = record(subject=subject)
        await side.stores.records.write([RecordWrite(kept, notice_of(kept))])
    view = side.view()
    everything = await view.read_after("0", block_ms=1)
    first_two = await view.read_after("0", block_ms=1, count=2)
    after_first = await view.read_after(everything[0][0], block_ms=1)

    assert [a.subject for _, a in everything if a is not None] == ["a", "b", "c"]
    assert [entry for entry, _ in first_two] == [entry for entry, _ in everything[:2]]
    assert [a.subject for _, a in after_first if a is not None] == ["b", "c"]
    assert await view.read_after(everything[-1][0], block_ms=1) == []
    assert await view.read_after("$", block_ms=1) == [], "only what arrives while it waits"


async def test_a_record_written_again_replaces_the_old_one(side: Side) -> None:
    first = record()
    resolved = replace(first, status="resolved", notifications=2, resolved_at=T0 + timedelta(1))
    await side.stores.records.write([RecordWrite(first)])
    await side.stores.records.write([RecordWrite(resolved)])
    assert await side.stores.records.records("QFIN") == {first.fingerprint: resolved}


async def test_the_batch_is_acknowledged_with_its_writes_or_alone_when_nothing_changed(
    side: Side,
) -> None:
    with_writes, alone = await side.acknowledgement(), await side.acknowledgement()
    await side.stores.records.write([RecordWrite(record())], with_writes)
    assert await side.acknowledged(with_writes)
    await side.stores.records.write([], alone)
    assert await side.acknowledged(alone)


# --------------------------------------------------------------------------- silences


def silence(silence_id: str = "s1", *, hours: int = 2) -> Silence:
    return Silence(id=silence_id, matchers={"company": "QFIN"}, starts_at=T0,
                   ends_at=T0 + timedelta(hours=hours), created_by="ops", comment="earnings")  # fmt: skip


async def test_silences_are_kept_and_every_change_moves_their_version(side: Side) -> None:
    def version_now() -> Any:
        return side.stores.records.known(whole=[], single=[])

    before = (await version_now()).silences_version
    await side.stores.silences.add(silence())
    added = (await version_now()).silences_version
    await side.stores.silences.add(silence("s2", hours=5))
    ended = await side.stores.silences.expire("s1", at=T0 + timedelta(minutes=30))
    after = (await version_now()).silences_version

    kept = {s.id: s for s in await side.stores.silences.all()}
    assert len({json.dumps(str(v)) for v in (before, added, after)}) == 3
    assert ended is True
    assert await side.stores.silences.expire("nope", at=T0) is False
    assert kept["s1"].ends_at == T0 + timedelta(minutes=30)
    assert not kept["s1"].is_active(at=T0 + timedelta(hours=1))
    assert kept["s2"] == silence("s2", hours=5)


# --------------------------------------------------------------------------- delivery ledger


async def test_a_lease_is_held_until_released_and_delivered_marks_stay(side: Side) -> None:
    ledger, other_sink = side.stores.ledger("webhook"), side.stores.ledger("alertmanager")
    assert await ledger.take_leases(["a", "b"]) == set()
    assert await ledger.take_leases(["b", "c"]) == {"b"}
    assert await other_sink.take_leases(["b"]) == set(), "each sink leases its own"
    await ledger.release_leases(["b"])
    assert await ledger.take_leases(["b"]) == set()
    assert await ledger.delivered(["a", "b"]) == [False, False]
    await ledger.mark_delivered(["a"])
    assert await ledger.delivered(["a", "b"]) == [True, False]
    assert await other_sink.delivered(["a"]) == [False]
    assert await ledger.delivered([]) == []


async def test_a_notice_given_up_on_is_dead_lettered_with_the_notice_as_payload(
    side: Side,
) -> None:
    notice = notice_of(record())
    await side.stores.ledger("alertmanager").dead_letter(
        pending(notice), error="HTTP 400 Bad Request", attempts=3
    )
    (letter,) = await side.dead_letters("alertmanager")
    assert (letter.reason, letter.group, letter.delivery_count) == (
        FailureReason.DELIVERY_FAILED, "alertmanager", 3,
    )  # fmt: skip
    assert (letter.company, letter.event_id, letter.error) == (
        "QFIN", notice.event_id, "HTTP 400 Bad Request",
    )  # fmt: skip
    assert Alert.model_validate_json(letter.payload["__data__"]) == notice


# --------------------------------------------------------------------------- redelivery


async def test_due_notices_come_by_time_then_id_and_done_ones_leave(side: Side) -> None:
    schedule = side.stores.schedule("webhook")
    a, b, c = (notice_of(record(subject=s), event_id=s) for s in ("a", "b", "c"))
    await schedule.schedule(pending(c), at=10.0)
    await schedule.schedule(pending(b), at=20.0)
    await schedule.schedule(pending(a), at=20.0)

    assert [p.event_id for p in await schedule.due(now=20.0)] == ["c", "a", "b"]
    assert [p.event_id for p in await schedule.due(now=15.0)] == ["c"]
    assert [p.event_id for p in await schedule.due(now=20.0, limit=2)] == ["c", "a"]
    assert await schedule.next_due() == 10.0
    await schedule.done("c")
    assert (await schedule.waiting(), await schedule.next_due()) == (2, 20.0)
    assert await schedule.ids() == {"a", "b"}
    assert await side.stores.schedule("alertmanager").waiting() == 0, "each sink its own"


async def test_a_waiting_notice_keeps_its_time_when_joined_and_moves_when_rescheduled(
    side: Side,
) -> None:
    schedule = side.stores.schedule("webhook")
    notice = notice_of(record())
    await schedule.schedule(pending(notice, attempts=1), at=10.0)
    await schedule.schedule(pending(notice, attempts=0), at=50.0, keep_existing=True)
    (joined,) = await schedule.due(now=10.0)
    await schedule.schedule(pending(notice, attempts=4), at=50.0)

    assert joined.attempts == 1
    assert await schedule.due(now=49.0) == []
    assert [p.attempts for p in await schedule.due(now=50.0)] == [4]


async def test_postponing_moves_only_waiting_notices_and_a_requeued_one_is_due_now(
    side: Side,
) -> None:
    schedule = side.stores.schedule("alertmanager")
    notice = notice_of(record())
    await schedule.schedule(pending(notice), at=10.0)
    await schedule.postpone([notice.event_id, "gone"], at=99.0)
    assert (await schedule.next_due(), await schedule.waiting()) == (99.0, 1)
    await schedule.done(notice.event_id)
    assert await schedule.next_due() is None

    await schedule.requeue(notice.event_id, notice.model_dump_json(), error="replayed")
    (back,) = await schedule.due(now=datetime.now(UTC).timestamp() + 1)
    assert (back.event_id, back.attempts, back.last_error) == (notice.event_id, 0, "replayed")


# --------------------------------------------------------------------------- posted alerts


async def test_the_newest_notice_of_an_alert_wins_and_ended_ones_are_forgotten(
    side: Side,
) -> None:
    posted = side.stores.posted
    first = notice_of(record(notices=1))
    second = notice_of(record(notices=2))
    resolved = notice_of(record(notices=1, status="resolved"), event_id="other",
                         starts_at=T0 - timedelta(days=1))  # fmt: skip
    other = resolved.model_copy(update={"fingerprint": "f" * 32})

    assert await posted.advance(second, now=100.0)
    assert not await posted.advance(first, now=101.0), "older than what was posted"
    assert await posted.advance(second, now=102.0), "the same again is no older"
    assert await posted.advance(other, now=50.0)
    kept = await posted.all()
    assert (kept[second.fingerprint].number, kept[second.fingerprint].reposted) == (2, True)
    assert not kept[other.fingerprint].reposted

    assert await posted.forget_ended(before=60.0) == 1
    assert set(await posted.all()) == {second.fingerprint}, "a firing alert is kept"


async def test_one_replica_takes_the_repost_lease(side: Side) -> None:
    assert await side.stores.posted.take_repost_lease(ttl_ms=60_000)
    assert not await side.stores.posted.take_repost_lease(ttl_ms=60_000)
