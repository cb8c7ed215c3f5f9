"""The history store: every fact with the time it became known (Redis adapter)."""

from __future__ import annotations

import asyncio
import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from importlib import resources
from typing import Any, NamedTuple, cast

import redis
import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster

from schemas.deadletter import FailureReason
from schemas.streams import DATA_FIELD, Streams
from services.common.consumer import RefusedEvent
from services.common.fact import FIELD_SEPARATOR, Fact, known_at_text
from services.common.wire import as_text

DEDUPE_TTL_S = 90 * 24 * 3600


@dataclass(frozen=True)
class RecordedChange:
    metric: str
    period: str
    kind: str  # recorded | restated | refined
    value: Decimal
    previous: Decimal | None
    currency: str | None


class RecordOutcome(NamedTuple):
    """What recording one event did. The changes stay encoded until someone asks: most events
    of a busy stream only record new figures, and nothing downstream of the store needs
    their details in this process."""

    duplicate: bool
    encoded_changes: bytes
    kinds: bytes = b""  # the changes' kinds, comma-separated: b"recorded,restated"
    history_updated: bool = False  # the store already appended the HistoryUpdated entry
    history_entry: bytes = b""  # else the entry the caller is to append (b"": no change)

    @property
    def changes(self) -> tuple[RecordedChange, ...]:
        return tuple(_decode_changes(self.encoded_changes))

    @property
    def restated(self) -> bool:
        return b"restated" in self.kinds.split(b",")


class ConflictingDuplicate(RefusedEvent):
    """An event id already recorded with other content: the first stays, this one is refused."""

    def __init__(self, event_id: str, recorded: str, received: str) -> None:
        super().__init__(
            FailureReason.CONFLICT,
            f"event_id: {event_id!r} was recorded with other content (digest {recorded[:12]}…, "
            f"this one {received[:12]}…); a new fact needs a new event id",
            field="event_id",
            details={"recorded_digest": recorded, "received_digest": received},
        )
        self.event_id = event_id
        self.recorded_digest = recorded
        self.received_digest = received


@dataclass(frozen=True)
class Recording:
    """One event's facts and the id of the HistoryUpdated telling what they changed ("" for
    none); the script builds that entry from the changes it actually made."""

    company: str
    event_id: str
    facts: list[Fact]
    update_id: str = ""

    def script_args(self) -> list[str]:
        """The event's part of the script's flat arguments (see record_facts.lua). The digest
        of its content covers every fact argument (their event id is the event's own, the same
        in any two events the digest is compared between)."""
        args = [self.update_id, self.company, self.event_id, "", str(len(self.facts))]
        for fact in self.facts:
            args += (
                fact.field,
                str(fact.value),
                str(fact.precision),
                known_at_text(fact.known_at),
                fact.event_id,
                fact.currency or "",
            )
        args[3] = hashlib.sha256("\x1f".join(args[5:]).encode()).hexdigest()
        return args


@dataclass(frozen=True)
class FactVersion:
    metric: str
    period: str
    value: Decimal
    precision: Decimal
    known_at: str
    event_id: str
    currency: str | None
    retracted: bool = False  # an operator's retraction of `value` from `known_at` on


class RedisHistoryStore:
    def __init__(self, redis: aioredis.Redis, streams: Streams) -> None:
        self._redis = redis
        self._streams = streams
        scripts = resources.files("services.common.histories")
        self._record = redis.register_script(scripts.joinpath("record_facts.lua").read_text())
        self._retract = redis.register_script(scripts.joinpath("retract_fact.lua").read_text())
        self._single = not isinstance(redis, RedisCluster)

    def keys(self, company: str, event_id: str) -> list[str]:
        return [
            self._streams.company_key(company, "facts"),
            self._streams.company_key(company, "versions"),
            self._streams.company_key(company, "seen:" + event_id),
        ]

    @property
    def writes_history_updates_atomically(self) -> bool:
        """One Redis: the script appends the HistoryUpdated entry too. A cluster cannot (the
        stream and the company's keys live on different slots), so the client appends the
        entry the script built, after."""
        return self._single

    async def record(self, company: str, event_id: str, facts: list[Fact]) -> RecordOutcome:
        """Apply the facts and the event's dedupe mark in one atomic step."""
        outcome = (await self.record_many([Recording(company, event_id, facts)]))[0]
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    async def record_many(
        self, batch: list[Recording], envelope: dict[str, str | int] | None = None
    ) -> list[RecordOutcome | BaseException]:
        """Each event's facts atomic with its dedupe mark, and on one Redis with its
        HistoryUpdated entry: the items' update ids plus the fields in `envelope` every update
        of the batch shares (on a cluster, the outcomes carry the entries to append)."""
        shared = json.dumps(envelope or {})
        if not self.writes_history_updates_atomically:
            companies = sorted({i.company for i in batch})
            return await self._record_concurrently(batch, companies, shared)
        keys = [key for item in batch for key in self._keys_with_stream(item, appends=True)]
        keys.append(self._streams.key("companies"))  # one Redis: the script registers them
        args: list[str | int] = [DEDUPE_TTL_S, "1", shared]
        for item in batch:
            args += item.script_args()
        try:
            result = await self._record(keys=keys, args=args)
        except Exception as error:
            return [error] * len(batch)
        replies = iter(result)
        return [
            _outcome(reply, item.event_id, history_updated=True)
            for item, reply in zip(
                batch, zip(replies, replies, replies, replies, strict=True), strict=True
            )
        ]

    def _keys_with_stream(self, item: Recording, *, appends: bool) -> list[str]:
        """The item's keys and the history stream the script appends to (a placeholder when
        it does not: a cluster routes a script by its keys, which must share one slot)."""
        keys = self.keys(item.company, item.event_id)
        if not appends:
            return [*keys, keys[2]]
        return [*keys, self._streams.for_company(self._streams.history, item.company)]

    async def _record_concurrently(
        self, batch: list[Recording], companies: list[str], shared: str
    ) -> list[RecordOutcome | BaseException]:
        """Companies side by side, each company's events in batch order: a restatement
        recorded before the figure it restates would tell another history than one Redis."""
        by_company: dict[str, list[int]] = {company: [] for company in companies}
        for index, item in enumerate(batch):
            by_company[item.company].append(index)
        results: dict[int, RecordOutcome | BaseException] = {}

        async def record_in_order(indices: list[int]) -> None:
            for index in indices:
                results[index] = await self._record_one(batch[index], shared)

        await asyncio.gather(*(record_in_order(indices) for indices in by_company.values()))
        await self._redis.sadd(self._streams.key("companies"), *companies)  # type: ignore[misc]
        return [results[index] for index in range(len(batch))]

    async def _record_one(self, item: Recording, shared: str) -> RecordOutcome | BaseException:
        try:
            reply = await self._record(
                keys=self._keys_with_stream(item, appends=False),
                args=[DEDUPE_TTL_S, "0", shared, *item.script_args()],
            )
        except Exception as error:  # kept with its entry, as the concurrent gather did
            return error
        return _outcome(reply, item.event_id)

    def _published_key(self, company: str, event_id: str) -> str:
        # "announced:" is the mark's name in running deployments and in the ingest ACL
        return self._streams.company_key(company, "announced:" + event_id)

    async def history_updates_published(self, items: list[tuple[str, str]]) -> set[str]:
        """Which of these (company, event id) had their history updates appended already
        (on a cluster, where the client appends them)."""
        if not items:
            return set()
        flags = await self._redis.mget([self._published_key(c, e) for c, e in items])
        return {event_id for (_, event_id), flag in zip(items, flags, strict=True) if flag}

    async def append_history_updates(self, entries: list[tuple[str, bytes]]) -> None:
        """(On a cluster.) Append the (company, entry) pairs the script built, as they are, to
        each company's partition of the history stream (not capped: acknowledged trims)."""
        if not entries:
            return
        async with self._redis.pipeline(transaction=False) as pipe:
            for company, entry in entries:
                stream = self._streams.for_company(self._streams.history, company)
                pipe.xadd(stream, {DATA_FIELD: entry})
            await pipe.execute()

    async def mark_history_updates_published(self, items: list[tuple[str, str]]) -> None:
        async with self._redis.pipeline(transaction=False) as pipe:
            for company, event_id in items:
                pipe.set(self._published_key(company, event_id), "1", ex=DEDUPE_TTL_S)
            await pipe.execute()

    async def latest(self, company: str, metric: str, period: str) -> Decimal | None:
        """The value of a fact as known now (the store keeps the latest apart from versions)."""
        stored = await self._latest_record(company, metric, period)
        return Decimal(stored["v"]) if stored else None

    async def latest_known_at(self, company: str, metric: str, period: str) -> datetime | None:
        """When the value known now became known."""
        stored = await self._latest_record(company, metric, period)
        return datetime.fromisoformat(stored["t"]) if stored else None

    async def _latest_record(self, company: str, metric: str, period: str) -> dict[str, Any]:
        key = self._streams.company_key(company, "facts")
        blob = await self._redis.hget(key, f"{metric}{FIELD_SEPARATOR}{period}")  # type: ignore[misc]
        return cast(dict[str, Any], json.loads(blob)) if blob else {}

    async def recent_values(
        self, keys: list[tuple[str, str, tuple[str, ...]]]
    ) -> list[list[Decimal]]:
        """For each (company, metric, periods), the latest values known for those periods."""
        if not keys:
            return []
        async with self._redis.pipeline(transaction=False) as pipe:
            for company, metric, periods in keys:
                fields = [f"{metric}{FIELD_SEPARATOR}{period}" for period in periods]
                pipe.hmget(self._streams.company_key(company, "facts"), fields)
            rows = await pipe.execute()
        return [[Decimal(json.loads(blob)["v"]) for blob in row if blob] for row in rows]

    async def versions(self, company: str) -> list[FactVersion]:
        raw = await self._redis.hgetall(self._streams.company_key(company, "versions"))  # type: ignore[misc]
        return [version for blob in raw.values() for version in _decode_versions(blob)]

    async def retract(
        self, company: str, metric: str, period: str, *, at: datetime, retraction_id: str
    ) -> FactVersion | None:
        """Withdraw the fact's current value from `at` on (bitemporal: earlier times still see
        it); the retracted version, or None when the fact has no current value."""
        keys = [
            self._streams.company_key(company, "facts"),
            self._streams.company_key(company, "versions"),
        ]
        field = f"{metric}{FIELD_SEPARATOR}{period}"
        raw = await self._retract(keys=keys, args=[field, known_at_text(at), retraction_id])
        return _version(json.loads(raw)) if raw else None

    async def companies(self) -> list[str]:
        members = await self._redis.smembers(self._streams.key("companies"))  # type: ignore[misc]
        return sorted(as_text(m) for m in members)

    async def knows(self, company: str) -> bool:
        """Whether any fact of the company was recorded."""
        key = self._streams.key("companies")
        return bool(await self._redis.sismember(key, company))  # type: ignore[misc]


def _outcome(
    result: object, event_id: str, *, history_updated: bool = False
) -> RecordOutcome | ConflictingDuplicate:
    status, encoded, kinds, entry = cast(list[bytes], result)
    if status == b"conflict":
        return ConflictingDuplicate(event_id, as_text(encoded), as_text(kinds))
    return RecordOutcome(status == b"duplicate", encoded, kinds, history_updated, entry)


def latest_as_of(versions: list[FactVersion], as_of: datetime | None) -> list[FactVersion]:
    """The value of each (metric, period) as it was known at `as_of` (now if None); a fact
    whose latest version then was a retraction has none."""
    cutoff = known_at_text(as_of) if as_of else None
    latest: dict[tuple[str, str], FactVersion] = {}
    for version in versions:
        if cutoff is not None and version.known_at > cutoff:
            continue
        key = (version.metric, version.period)
        if key not in latest or version.known_at >= latest[key].known_at:
            latest[key] = version
    return [version for version in latest.values() if not version.retracted]


def _split(field: str) -> tuple[str, str]:
    metric, period = field.split(FIELD_SEPARATOR, 1)
    return metric, period


def _decode_changes(raw: bytes) -> list[RecordedChange]:
    changes: list[RecordedChange] = []
    for item in json.loads(raw):
        metric, period = _split(item["f"])
        previous = item.get("prev")
        changes.append(
            RecordedChange(
                metric=metric,
                period=period,
                kind=item["k"],
                value=Decimal(item["v"]),
                previous=Decimal(previous) if previous else None,
                currency=item.get("c") or None,
            )
        )
    return changes


def _decode_versions(blob: bytes | str) -> list[FactVersion]:
    items: list[dict[str, Any]] = json.loads(blob)
    return [_version(item) for item in items]


def _version(item: dict[str, Any]) -> FactVersion:
    metric, period = _split(item["f"])
    return FactVersion(
        metric=metric,
        period=period,
        value=Decimal(item["v"]),
        precision=Decimal(item["p"]),
        known_at=item["t"],
        event_id=item["e"],
        currency=item.get("c") or None,
        retracted=bool(item.get("x")),
    )


def fact_counts(client: redis.Redis, streams: Streams) -> dict[str, int]:
    """How many metric-period pairs each company has on record (a sync client: the scrape)."""
    companies: Any = client.smembers(streams.key("companies"))
    names = sorted(as_text(c) for c in companies)
    return {name: int(cast(Any, client.hlen(streams.company_key(name, "facts")))) for name in names}
