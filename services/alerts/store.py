"""What the alerts worker keeps, and the only place its Redis key names are spelled.

Ports (small Protocols, one per thing kept):

* `AlertRecords`: each alert identity's lifecycle record (`{company}:alerts`, by fingerprint),
  written with its notice on the alerts stream and the batch's acknowledgement;
* `Silences`: the operator's silences (`silences`) and their version counter (`silences:version`,
  bumped by every change, read with the records so the worker re-reads silences only then);
* `DeliveryLedger`: one sink's delivered marks and leases (`<sink>:delivered:<id>`,
  `<sink>:lease:<id>`) and its dead letters;
* `RedeliverySchedule`: one sink's notices waiting for another attempt (`{<sink>}:due`, a sorted
  set by due time; `{<sink>}:notices`, the notices with their attempt counts);
* `PostedAlerts`: each alert's newest notice posted to Alertmanager (`{alertmanager}:alerts`)
  and the lease of one repost round (`{alertmanager}:repost-lease`);
* `AlertsView`: the read side the API and the command may use.

Each has a Redis adapter and an in-memory fake with the same contract (the contract test runs
the same assertions against both). `RedisAlertStores` / `FakeAlertStores` build a set.
The alerts worker's role may run only the commands used here (deploy/redis/users.acl): no
scripts, and the same commands on the same keys.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timedelta
from typing import Any, Protocol

import redis
import redis.asyncio as aioredis
from redis.exceptions import WatchError

from schemas.alerts import Alert
from schemas.deadletter import DeadLetter, FailureReason
from schemas.streams import DATA_FIELD, Streams
from services.alerts.lifecycle import AlertRecord, Silence
from services.alerts.posted import Posted, notice_order
from services.alerts.redelivery import Pending
from services.common.records import decode_entries
from services.common.records import decode_record as decode_entry
from services.common.streams import Acknowledgement, dead_letter
from services.common.wire import as_text, entry_fields

ALERT_PAGE = 500  # notices read from the alerts stream at a time
MAX_ALERTS_SCANNED = 20_000
LEASE_MS = 300_000  # a notice being posted by one consumer is left alone by the others
DELIVERED_TTL_S = 30 * 24 * 3600
SilencesVersion = bytes | str | None
RecordKey = tuple[str, str]  # (company, fingerprint)


# --------------------------------------------------------------------------- key names


@dataclass(frozen=True)
class AlertKeys:
    """Every key the alerts worker reads or writes (its role's ACL names the same keys)."""

    streams: Streams

    def records(self, company: str) -> str:
        return self.streams.company_key(company, "alerts")

    @property
    def silences(self) -> str:
        return self.streams.key("silences")

    @property
    def silences_version(self) -> str:
        return self.streams.key("silences", "version")

    def delivered(self, sink: str, event_id: str) -> str:
        return self.streams.key(sink, "delivered", event_id)

    def lease(self, sink: str, event_id: str) -> str:
        return self.streams.key(sink, "lease", event_id)

    def due(self, sink: str) -> str:
        return self.streams.key(f"{{{sink}}}", "due")

    def notices(self, sink: str) -> str:
        return self.streams.key(f"{{{sink}}}", "notices")

    @property
    def posted(self) -> str:
        return self.streams.key("{alertmanager}", "alerts")

    @property
    def repost_lease(self) -> str:
        return self.streams.key("{alertmanager}", "repost-lease")


# --------------------------------------------------------------------------- encodings


DATETIME_FIELDS = {"starts_at", "observed_at", "last_notified_at", "resolved_at"}
_RECORD_FIELDS = tuple(f.name for f in fields(AlertRecord))


def encode_record(record: AlertRecord) -> str:
    """A flat record (`asdict` would deep-copy every field: measurable on the alert path)."""
    values = ((name, getattr(record, name)) for name in _RECORD_FIELDS)
    return json.dumps({k: v.isoformat() if isinstance(v, datetime) else v for k, v in values})


def decode_record(blob: bytes | str) -> AlertRecord:
    document: dict[str, Any] = json.loads(blob)
    known = set(_RECORD_FIELDS)
    values: dict[str, Any] = {
        k: datetime.fromisoformat(v) if k in DATETIME_FIELDS and v else v
        for k, v in document.items()
        if k in known
    }
    return AlertRecord(**values)


def encode_silence(silence: Silence) -> str:
    document = {
        "id": silence.id,
        "matchers": dict(silence.matchers),
        "starts_at": silence.starts_at.isoformat(),
        "ends_at": silence.ends_at.isoformat(),
        "created_by": silence.created_by,
        "comment": silence.comment,
    }
    return json.dumps(document, default=str)


def decode_silence(blob: bytes | str) -> Silence:
    document: dict[str, Any] = json.loads(blob)
    return Silence(
        id=document["id"],
        matchers=document["matchers"],
        starts_at=datetime.fromisoformat(document["starts_at"]),
        ends_at=datetime.fromisoformat(document["ends_at"]),
        created_by=document["created_by"],
        comment=document["comment"],
    )


def ended_silence(silence: Silence, *, at: datetime) -> Silence:
    """The silence ending at `at` (started just before, if it was to start later)."""
    return Silence(
        id=silence.id,
        matchers=silence.matchers,
        starts_at=min(silence.starts_at, at - timedelta(microseconds=1)),
        ends_at=at,
        created_by=silence.created_by,
        comment=silence.comment,
    )


def delivery_letter(
    pending: Pending, *, source_stream: str, sink: str, error: str, attempts: int
) -> DeadLetter:
    """The dead letter of a notice a sink gave up on: the notice itself is its payload."""
    alert = Alert.model_validate_json(pending.alert_json)
    return DeadLetter(
        source_stream=source_stream,
        entry_id=alert.event_id,
        group=sink,
        payload={DATA_FIELD: pending.alert_json},
        reason=FailureReason.DELIVERY_FAILED,
        error=error[:2_000],
        delivery_count=attempts,
        company=alert.company,
        event_id=alert.event_id,
    )


# --------------------------------------------------------------------------- ports


@dataclass(frozen=True)
class RecordWrite:
    """A record to store and, if the decision called for one, the notice to send with it."""

    record: AlertRecord
    notice: Alert | None = None


@dataclass(frozen=True)
class KnownRecords:
    """Records read for a batch (None: no record yet), and the silences' version as read in
    the same round trip."""

    records: dict[RecordKey, AlertRecord | None]
    silences_version: SilencesVersion


class AlertRecords(Protocol):
    async def known(self, *, whole: Sequence[str], single: Sequence[RecordKey]) -> KnownRecords: ...

    async def write(
        self, writes: Sequence[RecordWrite], acknowledgement: Acknowledgement | None = None
    ) -> None:
        """Records and notices, then the acknowledgement: together (one MULTI) where the
        adapter can; otherwise notices first (their ids let subscribers drop a repeat)."""

    async def records(self, company: str) -> dict[str, AlertRecord]: ...

    async def find(self, keys: Sequence[RecordKey]) -> list[AlertRecord | None]: ...


class AlertsView(Protocol):
    """What readers above the worker (API, command) may read: records and notices."""

    async def firing(self, company: str) -> int: ...

    async def records(self, company: str) -> dict[str, AlertRecord]: ...

    async def newest(self, company: str | None = None, *, limit: int = 50) -> list[Alert]: ...

    async def read_after(
        self, last_id: str, *, block_ms: int, count: int = 100
    ) -> list[tuple[str, Alert | None]]: ...


class Silences(Protocol):
    async def add(self, silence: Silence) -> None: ...

    async def all(self) -> list[Silence]: ...

    async def expire(self, silence_id: str, *, at: datetime) -> bool:
        """End the silence now; False if there is no such silence."""


class DeliveryLedger(Protocol):
    """One sink's marks: which notices got through, which one a consumer is sending."""

    async def delivered(self, event_ids: Sequence[str]) -> list[bool]: ...

    async def take_leases(self, event_ids: Sequence[str]) -> set[str]:
        """Lease each notice; returns the ids another consumer holds (or repeated here)."""

    async def release_leases(self, event_ids: Sequence[str]) -> None: ...

    async def mark_delivered(self, event_ids: Sequence[str]) -> None: ...

    async def dead_letter(self, pending: Pending, *, error: str, attempts: int) -> None: ...


class RedeliverySchedule(Protocol):
    async def schedule(self, pending: Pending, *, at: float, keep_existing: bool = False) -> None:
        """Schedule the notice's next attempt at `at`; with `keep_existing`, a notice already
        waiting keeps its record and time (a redelivered stream entry joins, not restarts)."""

    async def postpone(self, event_ids: Sequence[str], *, at: float) -> None:
        """Move waiting notices (only those) to `at`."""

    async def due(self, *, now: float, limit: int = 50) -> list[Pending]: ...

    async def done(self, event_id: str) -> None: ...

    async def waiting(self) -> int: ...

    async def next_due(self) -> float | None: ...

    async def requeue(self, event_id: str, alert_json: str, *, error: str) -> None:
        """A notice back from the dead-letter stream: due now, with a fresh horizon."""

    async def ids(self) -> set[str]: ...


class PostedAlerts(Protocol):
    async def advance(self, alert: Alert, *, now: float) -> bool:
        """Record `alert` as its alert's newest notice; False if a newer one is recorded."""

    async def all(self) -> dict[str, Posted]: ...

    async def forget_ended(self, *, before: float) -> int:
        """Drop alerts that ended before `before`; returns how many."""

    async def take_repost_lease(self, *, ttl_ms: int) -> bool:
        """True for the one replica that reposts this round."""


class AlertStores(Protocol):
    """Everything the alerts worker keeps; sinks are told apart by name."""

    @property
    def records(self) -> AlertRecords: ...

    @property
    def silences(self) -> Silences: ...

    @property
    def posted(self) -> PostedAlerts: ...

    def ledger(self, sink: str) -> DeliveryLedger: ...

    def schedule(self, sink: str) -> RedeliverySchedule: ...


def new_pending(event_id: str, alert_json: str, *, error: str, at: float) -> Pending:
    return Pending(event_id, alert_json, at, 0, error)


# --------------------------------------------------------------------------- Redis


class RedisAlertsView:
    """The read side: the commands the API's and the operator's roles may run (HGETALL)."""

    def __init__(self, redis: aioredis.Redis, streams: Streams) -> None:
        self._redis = redis
        self._streams = streams
        self._keys = AlertKeys(streams)

    async def records(self, company: str) -> dict[str, AlertRecord]:
        raw: Any = await self._redis.hgetall(self._keys.records(company))  # type: ignore[misc]
        return {as_text(k): decode_record(v) for k, v in raw.items()}

    async def firing(self, company: str) -> int:
        """Alerts firing now (one record per fingerprint)."""
        raw: Any = await self._redis.hgetall(self._keys.records(company))  # type: ignore[misc]
        return sum(1 for blob in raw.values() if json.loads(blob).get("status") == "firing")

    async def newest(self, company: str | None = None, *, limit: int = 50) -> list[Alert]:
        """The newest `limit` notices on the alerts stream (of one company, if given), newest
        first; read by range, never by a group, so no subscriber loses an entry to a reader."""
        found: list[Alert] = []
        upper, scanned = "+", 0
        while len(found) < limit and scanned < MAX_ALERTS_SCANNED:
            page: Any = await self._redis.xrevrange(
                self._streams.alerts, max=upper, min="-", count=ALERT_PAGE
            )
            if not page:
                break
            scanned += len(page)
            alerts = decode_entries(page, Alert, stream=self._streams.alerts).values
            found += [a for a in alerts if company is None or a.company == company]
            upper = "(" + as_text(page[-1][0])
        return found[:limit]

    async def read_after(
        self, last_id: str, *, block_ms: int, count: int = 100
    ) -> list[tuple[str, Alert | None]]:
        """Notices after `last_id` (`$`: only new ones), waiting up to `block_ms` for one; each
        with its entry id (None: an entry that is no notice). Read without a group, so no
        subscriber loses an entry to a tail."""
        stream = self._streams.alerts
        response: Any = await self._redis.xread({stream: last_id}, count=count, block=block_ms)
        return [
            (as_text(entry_id), decode_entry(fields, Alert))
            for _stream, entries in response
            for entry_id, fields in entries
        ]


class RedisAlertRecords(RedisAlertsView):
    def __init__(
        self, redis: aioredis.Redis, streams: Streams, *, max_length: int, atomic: bool = True
    ) -> None:
        super().__init__(redis, streams)
        self._max_length = max_length
        self._atomic = atomic

    async def known(self, *, whole: Sequence[str], single: Sequence[RecordKey]) -> KnownRecords:
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.get(self._keys.silences_version)
            for company in whole:
                pipe.hgetall(self._keys.records(company))
            for company, fingerprint in single:
                pipe.hget(self._keys.records(company), fingerprint)
            version, *replies = await pipe.execute()
        known: dict[RecordKey, AlertRecord | None] = {}
        for company, raw in zip(whole, replies, strict=False):
            known.update({(company, as_text(k)): decode_record(v) for k, v in raw.items()})
        for key, raw in zip(single, replies[len(whole) :], strict=True):
            known[key] = decode_record(raw) if raw else None
        return KnownRecords(known, version)

    async def write(
        self, writes: Sequence[RecordWrite], acknowledgement: Acknowledgement | None = None
    ) -> None:
        """An acknowledgement goes last in the MULTI: MULTI refuses the whole block if a command
        cannot be queued (out of memory, say), and a queued one fails only on a key of the wrong
        type, which no retry would mend. Without a MULTI (a cluster: the stream and the records
        live on different slots) it is sent after the writes."""
        in_multi = acknowledgement if writes and self._atomic else None
        if writes:
            await self._write(writes, in_multi)
        if acknowledgement is not None and in_multi is None:
            await acknowledgement.send(self._redis)

    async def _write(
        self, writes: Sequence[RecordWrite], acknowledgement: Acknowledgement | None
    ) -> None:
        async with self._redis.pipeline(transaction=self._atomic) as pipe:
            for write in writes:
                if write.notice is not None:
                    pipe.xadd(
                        self._streams.alerts,
                        entry_fields(write.notice),  # type: ignore[arg-type]
                        maxlen=self._max_length,
                        approximate=True,
                    )
                key = self._keys.records(write.record.company)
                pipe.hset(key, write.record.fingerprint, encode_record(write.record))
            if acknowledgement is not None:
                acknowledgement.add_to(pipe)
            await pipe.execute()

    async def find(self, keys: Sequence[RecordKey]) -> list[AlertRecord | None]:
        if not keys:
            return []
        async with self._redis.pipeline(transaction=False) as pipe:
            for company, fingerprint in keys:
                pipe.hget(self._keys.records(company), fingerprint)
            replies = await pipe.execute()
        return [decode_record(raw) if raw else None for raw in replies]


class RedisSilences:
    def __init__(self, redis: aioredis.Redis, streams: Streams) -> None:
        self._redis = redis
        self._keys = AlertKeys(streams)

    async def add(self, silence: Silence) -> None:
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hset(self._keys.silences, silence.id, encode_silence(silence))
            pipe.incr(self._keys.silences_version)
            await pipe.execute()

    async def all(self) -> list[Silence]:
        raw: Any = await self._redis.hgetall(self._keys.silences)  # type: ignore[misc]
        return [decode_silence(blob) for blob in raw.values()]

    async def expire(self, silence_id: str, *, at: datetime) -> bool:
        silence = next((s for s in await self.all() if s.id == silence_id), None)
        if silence is None:
            return False
        await self.add(ended_silence(silence, at=at))
        return True


class RedisDeliveryLedger:
    def __init__(
        self, redis: aioredis.Redis, streams: Streams, *, sink: str, max_length: int
    ) -> None:
        self._redis = redis
        self._streams = streams
        self._keys = AlertKeys(streams)
        self._sink = sink
        self._max_length = max_length

    async def delivered(self, event_ids: Sequence[str]) -> list[bool]:
        if not event_ids:
            return []
        async with self._redis.pipeline(transaction=False) as pipe:
            for event_id in event_ids:
                pipe.exists(self._keys.delivered(self._sink, event_id))
            return [bool(found) for found in await pipe.execute()]

    async def take_leases(self, event_ids: Sequence[str]) -> set[str]:
        if not event_ids:
            return set()
        async with self._redis.pipeline(transaction=False) as pipe:
            for event_id in event_ids:
                pipe.set(self._keys.lease(self._sink, event_id), "1", nx=True, px=LEASE_MS)
            taken = await pipe.execute()
        return {event_id for event_id, ok in zip(event_ids, taken, strict=True) if not ok}

    async def release_leases(self, event_ids: Sequence[str]) -> None:
        if event_ids:
            await self._redis.delete(*(self._keys.lease(self._sink, i) for i in event_ids))

    async def mark_delivered(self, event_ids: Sequence[str]) -> None:
        async with self._redis.pipeline(transaction=False) as pipe:
            for event_id in event_ids:
                key = self._keys.delivered(self._sink, event_id)
                pipe.set(key, "1", ex=DELIVERED_TTL_S)
            await pipe.execute()

    async def dead_letter(self, pending: Pending, *, error: str, attempts: int) -> None:
        letter = delivery_letter(
            pending, source_stream=self._streams.alerts, sink=self._sink, error=error,
            attempts=attempts,
        )  # fmt: skip
        await dead_letter(
            self._redis, self._streams.dead_letters, letter, max_length=self._max_length
        )


class RedisRedeliverySchedule:
    """A schedule's keys share the sink's hash tag (`{webhook}`: one cluster slot)."""

    def __init__(self, redis: aioredis.Redis, streams: Streams, *, sink: str = "webhook") -> None:
        self._redis = redis
        keys = AlertKeys(streams)
        self.due_key = keys.due(sink)
        self.notices_key = keys.notices(sink)

    async def schedule(self, pending: Pending, *, at: float, keep_existing: bool = False) -> None:
        record = json.dumps(asdict(pending))
        async with self._redis.pipeline(transaction=True) as pipe:
            if keep_existing:
                pipe.hsetnx(self.notices_key, pending.event_id, record)
                pipe.zadd(self.due_key, {pending.event_id: at}, nx=True)
            else:
                pipe.hset(self.notices_key, pending.event_id, record)
                pipe.zadd(self.due_key, {pending.event_id: at})
            await pipe.execute()

    async def postpone(self, event_ids: Sequence[str], *, at: float) -> None:
        if event_ids:
            await self._redis.zadd(self.due_key, dict.fromkeys(event_ids, at), xx=True)

    async def due(self, *, now: float, limit: int = 50) -> list[Pending]:
        ids: Any = await self._redis.zrangebyscore(self.due_key, "-inf", now, start=0, num=limit)
        if not ids:
            return []
        blobs: Any = await self._redis.hmget(self.notices_key, ids)  # type: ignore[misc]
        found = []
        for event_id, blob in zip(ids, blobs, strict=True):
            if blob is None:  # its notice went with a finished delivery: drop the stray id
                await self._redis.zrem(self.due_key, event_id)
                continue
            found.append(Pending(**json.loads(blob)))
        return found

    async def done(self, event_id: str) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.zrem(self.due_key, event_id)
            pipe.hdel(self.notices_key, event_id)
            await pipe.execute()

    async def waiting(self) -> int:
        return int(await self._redis.zcard(self.due_key))

    async def next_due(self) -> float | None:
        first: Any = await self._redis.zrange(self.due_key, 0, 0, withscores=True)
        return float(first[0][1]) if first else None

    async def requeue(self, event_id: str, alert_json: str, *, error: str) -> None:
        now = time.time()
        await self.schedule(new_pending(event_id, alert_json, error=error, at=now), at=now)

    async def ids(self) -> set[str]:
        raw: Any = await self._redis.hkeys(self.notices_key)  # type: ignore[misc]
        return {as_text(event_id) for event_id in raw}


class RedisPostedAlerts:
    """Each alert's newest notice, by fingerprint, in one hash (one cluster slot)."""

    def __init__(self, redis: aioredis.Redis, streams: Streams) -> None:
        self._redis = redis
        keys = AlertKeys(streams)
        self.key = keys.posted
        self._lease_key = keys.repost_lease

    async def advance(self, alert: Alert, *, now: float) -> bool:
        """Under WATCH: a concurrent writer makes this one read again."""
        async with self._redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(self.key)
                    raw = await pipe.hget(self.key, alert.fingerprint)  # type: ignore[misc]
                    if raw is not None and Posted.decode(raw).order > notice_order(alert):
                        await pipe.unwatch()  # type: ignore[no-untyped-call]
                        return False
                    pipe.multi()  # type: ignore[no-untyped-call]
                    pipe.hset(self.key, alert.fingerprint, Posted.of(alert, at=now).encode())
                    await pipe.execute()
                    return True
                except WatchError:
                    continue

    async def all(self) -> dict[str, Posted]:
        raw: Any = await self._redis.hgetall(self.key)  # type: ignore[misc]
        return {as_text(fp): Posted.decode(blob) for fp, blob in raw.items()}

    async def forget_ended(self, *, before: float) -> int:
        """Skipped, not retried, on a concurrent write (the next round forgets them)."""
        async with self._redis.pipeline(transaction=True) as pipe:
            try:
                await pipe.watch(self.key)
                raw: Any = await pipe.hgetall(self.key)  # type: ignore[misc]
                ended = [fp for fp, b in raw.items() if _forgettable(Posted.decode(b), before)]
                if not ended:
                    await pipe.unwatch()  # type: ignore[no-untyped-call]
                    return 0
                pipe.multi()  # type: ignore[no-untyped-call]
                pipe.hdel(self.key, *ended)
                await pipe.execute()
            except WatchError:
                return 0
        return len(ended)

    async def take_repost_lease(self, *, ttl_ms: int) -> bool:
        return bool(await self._redis.set(self._lease_key, "1", nx=True, px=ttl_ms))


def _forgettable(posted: Posted, before: float) -> bool:
    return posted.stored_at < before and not posted.reposted


class RedisAlertStores:
    """The alerts worker's stores on one Redis (or cluster: `atomic=False`)."""

    def __init__(
        self,
        redis: aioredis.Redis,
        streams: Streams,
        *,
        max_length: int = 1_000_000,
        atomic: bool = True,
    ) -> None:
        self._redis = redis
        self._streams = streams
        self._max_length = max_length
        self.records = RedisAlertRecords(redis, streams, max_length=max_length, atomic=atomic)
        self.silences = RedisSilences(redis, streams)
        self.posted = RedisPostedAlerts(redis, streams)

    def ledger(self, sink: str) -> RedisDeliveryLedger:
        return RedisDeliveryLedger(
            self._redis, self._streams, sink=sink, max_length=self._max_length
        )

    def schedule(self, sink: str) -> RedisRedeliverySchedule:
        return RedisRedeliverySchedule(self._redis, self._streams, sink=sink)


# --------------------------------------------------------------------------- in memory


class FakeSilences:
    def __init__(self) -> None:
        self.by_id: dict[str, Silence] = {}
        self.version = 0

    async def add(self, silence: Silence) -> None:
        self.by_id[silence.id] = silence
        self.version += 1

    async def all(self) -> list[Silence]:
        return list(self.by_id.values())

    async def expire(self, silence_id: str, *, at: datetime) -> bool:
        silence = self.by_id.get(silence_id)
        if silence is None:
            return False
        await self.add(ended_silence(silence, at=at))
        return True


class FakeAlertRecords:
    """Records by (company, fingerprint); `notices` is the alerts stream, in order."""

    def __init__(self, silences: FakeSilences | None = None) -> None:
        self._silences = silences or FakeSilences()
        self.by_key: dict[RecordKey, AlertRecord] = {}
        self.notices: list[Alert] = []
        self.acknowledged: list[Acknowledgement] = []

    async def known(self, *, whole: Sequence[str], single: Sequence[RecordKey]) -> KnownRecords:
        known: dict[RecordKey, AlertRecord | None] = {
            key: record for key, record in self.by_key.items() if key[0] in whole
        }
        known.update({key: self.by_key.get(key) for key in single})
        return KnownRecords(known, str(self._silences.version))

    async def write(
        self, writes: Sequence[RecordWrite], acknowledgement: Acknowledgement | None = None
    ) -> None:
        for write in writes:
            if write.notice is not None:
                self.notices.append(write.notice)
            self.by_key[(write.record.company, write.record.fingerprint)] = write.record
        if acknowledgement is not None:
            self.acknowledged.append(acknowledgement)

    async def records(self, company: str) -> dict[str, AlertRecord]:
        return {fp: record for (c, fp), record in self.by_key.items() if c == company}

    async def firing(self, company: str) -> int:
        return sum(1 for r in (await self.records(company)).values() if r.status == "firing")

    async def newest(self, company: str | None = None, *, limit: int = 50) -> list[Alert]:
        return [n for n in reversed(self.notices) if company in (None, n.company)][:limit]

    async def read_after(
        self, last_id: str, *, block_ms: int, count: int = 100
    ) -> list[tuple[str, Alert | None]]:
        """Entry ids are `<position>-0`; nothing arrives while a fake waits."""
        start = len(self.notices) if last_id == "$" else int(last_id.split("-")[0])
        later = list(enumerate(self.notices, start=1))[start : start + count]
        return [(f"{position}-0", notice) for position, notice in later]

    async def find(self, keys: Sequence[RecordKey]) -> list[AlertRecord | None]:
        return [self.by_key.get(key) for key in keys]


class _Leases:
    """Keys held until released or until their time runs out (by `clock`, in seconds)."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._until: dict[str, float] = {}

    def take(self, key: str, ttl_ms: int) -> bool:
        if self._until.get(key, float("-inf")) > self._clock():
            return False
        self._until[key] = self._clock() + ttl_ms / 1000
        return True

    def release(self, keys: Iterable[str]) -> None:
        for key in keys:
            self._until.pop(key, None)


class FakeDeliveryLedger:
    def __init__(self, *, sink: str, clock: Callable[[], float] = time.monotonic) -> None:
        self._sink = sink
        self._leases = _Leases(clock)
        self.delivered_ids: set[str] = set()
        self.letters: list[DeadLetter] = []

    async def delivered(self, event_ids: Sequence[str]) -> list[bool]:
        return [event_id in self.delivered_ids for event_id in event_ids]

    async def take_leases(self, event_ids: Sequence[str]) -> set[str]:
        return {event_id for event_id in event_ids if not self._leases.take(event_id, LEASE_MS)}

    async def release_leases(self, event_ids: Sequence[str]) -> None:
        self._leases.release(event_ids)

    async def mark_delivered(self, event_ids: Sequence[str]) -> None:
        self.delivered_ids.update(event_ids)

    async def dead_letter(self, pending: Pending, *, error: str, attempts: int) -> None:
        letter = delivery_letter(
            pending, source_stream="alerts", sink=self._sink, error=error, attempts=attempts
        )
        self.letters.append(letter)


class FakeRedeliverySchedule:
    """Due ids ordered as Redis orders a sorted set: by time, then by id."""

    def __init__(self) -> None:
        self.due_at: dict[str, float] = {}
        self.notices: dict[str, Pending] = {}

    async def schedule(self, pending: Pending, *, at: float, keep_existing: bool = False) -> None:
        if not keep_existing or pending.event_id not in self.notices:
            self.notices[pending.event_id] = pending
        if not keep_existing or pending.event_id not in self.due_at:
            self.due_at[pending.event_id] = at

    async def postpone(self, event_ids: Sequence[str], *, at: float) -> None:
        for event_id in event_ids:
            if event_id in self.due_at:
                self.due_at[event_id] = at

    async def due(self, *, now: float, limit: int = 50) -> list[Pending]:
        ids = [i for i in self._ordered() if self.due_at[i] <= now][:limit]
        for stray in [i for i in ids if i not in self.notices]:
            del self.due_at[stray]
        return [self.notices[i] for i in ids if i in self.notices]

    async def done(self, event_id: str) -> None:
        self.due_at.pop(event_id, None)
        self.notices.pop(event_id, None)

    async def waiting(self) -> int:
        return len(self.due_at)

    async def next_due(self) -> float | None:
        ordered = self._ordered()
        return self.due_at[ordered[0]] if ordered else None

    async def requeue(self, event_id: str, alert_json: str, *, error: str) -> None:
        now = time.time()
        await self.schedule(new_pending(event_id, alert_json, error=error, at=now), at=now)

    async def ids(self) -> set[str]:
        return set(self.notices)

    def _ordered(self) -> list[str]:
        return sorted(self.due_at, key=lambda i: (self.due_at[i], i))


class FakePostedAlerts:
    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.by_fingerprint: dict[str, Posted] = {}
        self._lease = _Leases(clock)

    async def advance(self, alert: Alert, *, now: float) -> bool:
        known = self.by_fingerprint.get(alert.fingerprint)
        if known is not None and known.order > notice_order(alert):
            return False
        self.by_fingerprint[alert.fingerprint] = Posted.of(alert, at=now)
        return True

    async def all(self) -> dict[str, Posted]:
        return dict(self.by_fingerprint)

    async def forget_ended(self, *, before: float) -> int:
        ended = [fp for fp, p in self.by_fingerprint.items() if _forgettable(p, before)]
        for fp in ended:
            del self.by_fingerprint[fp]
        return len(ended)

    async def take_repost_lease(self, *, ttl_ms: int) -> bool:
        return self._lease.take("repost", ttl_ms)


@dataclass
class FakeAlertStores:
    """In-memory stores sharing one state, as `RedisAlertStores` share one Redis."""

    clock: Callable[[], float] = time.monotonic
    silences: FakeSilences = field(default_factory=FakeSilences)
    _ledgers: dict[str, FakeDeliveryLedger] = field(default_factory=dict)
    _schedules: dict[str, FakeRedeliverySchedule] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.records = FakeAlertRecords(self.silences)
        self.posted = FakePostedAlerts(clock=self.clock)

    def ledger(self, sink: str) -> FakeDeliveryLedger:
        return self._ledgers.setdefault(sink, FakeDeliveryLedger(sink=sink, clock=self.clock))

    def schedule(self, sink: str) -> FakeRedeliverySchedule:
        return self._schedules.setdefault(sink, FakeRedeliverySchedule())


def alert_severities(client: redis.Redis, streams: Streams, company: str) -> list[tuple[str, str]]:
    """Each of a company's alert records as (status, severity) (a sync client: the scrape)."""
    blobs: Any = client.hvals(AlertKeys(streams).records(company))
    records = [json.loads(blob) for blob in blobs]
    return [(str(r.get("status")), str(r.get("severity"))) for r in records]
