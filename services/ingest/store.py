"""The ingest worker's port: what it reads and writes, and its Redis adapter.

The adapter composes the histories every worker shares (facts and guidance, in
`services.common.histories`) with the ingest worker's outputs: the HistoryUpdated entries and
the alert signals it publishes, and the acknowledgement of what it consumed. The in-memory
fake honouring the same contract is `services.ingest.fakes.InMemoryIngestStore`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Protocol

import redis.asyncio as aioredis

from schemas.alerts import AlertSignal
from schemas.history import HistoryUpdated
from schemas.streams import Streams
from services.common.histories.facts import (
    FactVersion,
    Recording,
    RecordOutcome,
    RedisHistoryStore,
)
from services.common.histories.guidance import GuidanceVersion, RedisGuidanceStore
from services.common.streams import Acknowledgement, publish

RecentKey = tuple[str, str, tuple[str, ...]]  # company, metric, periods


class IngestStore(Protocol):
    @property
    def writes_history_updates_atomically(self) -> bool:
        """True: `record_facts` appends each event's HistoryUpdated with its facts, in one
        atomic step. False (a cluster): the outcomes carry the entries, which the caller
        appends with `append_history_updates` and then marks published."""
        ...

    async def record_facts(
        self, batch: list[Recording], envelope: dict[str, str | int]
    ) -> list[RecordOutcome | BaseException]:
        """Each event's facts, atomic with its dedupe mark: a repeat of an event id with the
        same content is a duplicate (its changes as first recorded), with other content a
        `ConflictingDuplicate` (nothing written). `envelope`: the fields every HistoryUpdated
        of the batch shares."""
        ...

    async def history_updates_published(self, items: list[tuple[str, str]]) -> set[str]:
        """Which of these (company, event id) had their history updates appended by the
        caller already."""
        ...

    async def append_history_updates(self, entries: list[tuple[str, bytes]]) -> None:
        """The (company, entry) pairs `record_facts` returned, appended as they are."""
        ...

    async def mark_history_updates_published(self, items: list[tuple[str, str]]) -> None: ...

    async def recent_values(self, keys: list[RecentKey]) -> list[list[Decimal]]:
        """For each (company, metric, periods), the latest values known for those periods."""
        ...

    async def retract(
        self, company: str, metric: str, period: str, *, at: datetime, retraction_id: str
    ) -> FactVersion | None:
        """Withdraw a fact's current value from `at` on; the version withdrawn, or None."""
        ...

    async def guidance_digest(self, company: str, event_id: str) -> str | None:
        """The digest of the guidance statement recorded under this event id, if any."""
        ...

    async def remember_guidance(self, company: str, event_id: str, digest: str) -> None:
        """This event id stands for this statement (the first content stays)."""
        ...

    async def guidance_history(
        self, company: str, metric: str, period: str
    ) -> list[GuidanceVersion]: ...

    async def append_guidance(self, company: str, version: GuidanceVersion, revision: str) -> bool:
        """Add a version unless this event, or the same statement, is already recorded."""
        ...

    async def publish_history_updates(self, updates: Sequence[HistoryUpdated]) -> None: ...

    async def publish_signals(
        self, signals: Sequence[AlertSignal], *, acknowledging: Acknowledgement | None = None
    ) -> None:
        """With `acknowledging` (one Redis), the consumed entries are acknowledged in the same
        MULTI that appends the signals."""
        ...

    async def acknowledge(self, acknowledgement: Acknowledgement) -> None: ...


class RedisIngestStore:
    def __init__(self, redis: aioredis.Redis, streams: Streams, *, max_length: int) -> None:
        self._redis = redis
        self._streams = streams
        self._max_length = max_length
        self._facts = RedisHistoryStore(redis, streams)
        self._guidance = RedisGuidanceStore(redis, streams)

    @property
    def writes_history_updates_atomically(self) -> bool:
        return self._facts.writes_history_updates_atomically

    async def record_facts(
        self, batch: list[Recording], envelope: dict[str, str | int]
    ) -> list[RecordOutcome | BaseException]:
        return await self._facts.record_many(batch, envelope)

    async def history_updates_published(self, items: list[tuple[str, str]]) -> set[str]:
        return await self._facts.history_updates_published(items)

    async def append_history_updates(self, entries: list[tuple[str, bytes]]) -> None:
        await self._facts.append_history_updates(entries)

    async def mark_history_updates_published(self, items: list[tuple[str, str]]) -> None:
        await self._facts.mark_history_updates_published(items)

    async def recent_values(self, keys: list[RecentKey]) -> list[list[Decimal]]:
        return await self._facts.recent_values(keys)

    async def retract(
        self, company: str, metric: str, period: str, *, at: datetime, retraction_id: str
    ) -> FactVersion | None:
        return await self._facts.retract(
            company, metric, period, at=at, retraction_id=retraction_id
        )

    async def guidance_digest(self, company: str, event_id: str) -> str | None:
        return await self._guidance.seen_digest(company, event_id)

    async def remember_guidance(self, company: str, event_id: str, digest: str) -> None:
        await self._guidance.remember(company, event_id, digest)

    async def guidance_history(
        self, company: str, metric: str, period: str
    ) -> list[GuidanceVersion]:
        return await self._guidance.history(company, metric, period)

    async def append_guidance(self, company: str, version: GuidanceVersion, revision: str) -> bool:
        return await self._guidance.append(company, version, revision)

    async def publish_history_updates(self, updates: Sequence[HistoryUpdated]) -> None:
        await self._publish(self._streams.history, updates)

    async def publish_signals(
        self, signals: Sequence[AlertSignal], *, acknowledging: Acknowledgement | None = None
    ) -> None:
        await self._publish(self._streams.signals, signals, acknowledging=acknowledging)

    async def acknowledge(self, acknowledgement: Acknowledgement) -> None:
        await acknowledgement.send(self._redis)

    async def _publish(
        self,
        stream: str,
        events: Sequence[HistoryUpdated] | Sequence[AlertSignal],
        *,
        acknowledging: Acknowledgement | None = None,
    ) -> None:
        """To the company's partition of `stream`, in one round trip (see `publish`)."""
        await publish(
            self._redis,
            stream,
            events,
            max_length=self._max_length,
            streams=self._streams,
            acknowledging=acknowledging,
        )
