"""Guidance kept with its history per company, metric and period (Redis adapter)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from decimal import Decimal

import redis.asyncio as aioredis
from redis.exceptions import WatchError

from schemas.guidance import GuidanceIssued, GuidanceStatus
from schemas.money import Scale
from schemas.streams import Streams
from services.common.guidance_rules import Band, StatedRange
from services.common.histories.facts import FIELD_SEPARATOR, known_at_text
from services.common.wire import as_text

SEEN_TTL_S = 90 * 24 * 3600  # as long as the facts' dedupe marks


@dataclass(frozen=True)
class GuidanceVersion:
    """One statement of guidance; money bounds in whole currency units."""

    event_id: str
    metric: str
    period: str
    basis: str
    status: str
    low: str | None
    high: str | None
    currency: str | None
    yoy_low_pct: str | None
    yoy_high_pct: str | None
    issued_in_period: str | None
    known_at: str
    source: str | None
    revision: str = "initial"

    @property
    def digest(self) -> str:
        """SHA-256 of the statement as recorded (its revision is derived, not stated)."""
        content = {k: v for k, v in asdict(self).items() if k != "revision"}
        return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()

    @property
    def same_statement_key(self) -> tuple[object, ...]:
        return (
            self.status,
            self.low,
            self.high,
            self.issued_in_period,
            self.yoy_low_pct,
            self.yoy_high_pct,
        )

    def band(self) -> tuple[Decimal, Decimal] | None:
        """The amount band as stated (whole currency units), if one was."""
        if self.low is None or self.high is None:
            return None
        return Decimal(self.low), Decimal(self.high)

    def growth(self) -> tuple[Decimal | None, Decimal | None] | None:
        """The stated year-on-year growth bounds (percent), if any was stated."""
        if self.yoy_low_pct is None and self.yoy_high_pct is None:
            return None
        return _decimal(self.yoy_low_pct), _decimal(self.yoy_high_pct)

    @property
    def growth_only(self) -> bool:
        """Stated as growth alone: its band is derived from the prior year's actual."""
        return self.band() is None and self.growth() is not None

    def stated_range(self) -> StatedRange | None:
        """What a revision compares: the amount band, else the growth band; None if withdrawn."""
        if is_withdrawn(self):
            return None
        if (bounds := self.band()) is not None:
            return StatedRange("amount", Band(low=float(bounds[0]), high=float(bounds[1])))
        if (growth := self.growth()) is not None:
            low, high = (None if g is None else float(g) for g in growth)
            return StatedRange("growth", Band(low=low, high=high))
        return None


def _decimal(text: str | None) -> Decimal | None:
    return None if text is None else Decimal(text)


def version_from_event(event: GuidanceIssued) -> GuidanceVersion:
    factor = (event.scale or Scale.UNITS).factor
    return GuidanceVersion(
        event_id=event.event_id,
        metric=event.metric,
        period=event.period,
        basis=event.basis.value,
        status=event.status.value,
        low=_text(event.low * factor if event.low is not None else None),
        high=_text(event.high * factor if event.high is not None else None),
        currency=event.currency,
        yoy_low_pct=_text(event.yoy_low_pct),
        yoy_high_pct=_text(event.yoy_high_pct),
        issued_in_period=event.issued_in_period,
        known_at=known_at_text(event.occurred_at),
        source=event.source,
    )


def _text(value: Decimal | None) -> str | None:
    return (
        None if value is None else str(value.normalize() if value == value.to_integral() else value)
    )


class RedisGuidanceStore:
    def __init__(self, redis: aioredis.Redis, streams: Streams) -> None:
        self._redis = redis
        self._streams = streams

    def _key(self, company: str) -> str:
        return self._streams.company_key(company, "guidance")

    def _seen_key(self, company: str, event_id: str) -> str:
        return self._streams.company_key(company, "guidance-seen:" + event_id)

    async def remember(self, company: str, event_id: str, digest: str) -> None:
        """This event id stands for this content (the first content stays)."""
        await self._redis.set(self._seen_key(company, event_id), digest, ex=SEEN_TTL_S, nx=True)

    async def seen_digest(self, company: str, event_id: str) -> str | None:
        """The digest of the statement recorded under this event id, if any."""
        raw = await self._redis.get(self._seen_key(company, event_id))
        return as_text(raw) if raw else None

    async def history(self, company: str, metric: str, period: str) -> list[GuidanceVersion]:
        raw = await self._redis.hget(self._key(company), _field(metric, period))  # type: ignore[misc]
        return [GuidanceVersion(**item) for item in json.loads(raw)] if raw else []

    async def all(self, company: str) -> list[GuidanceVersion]:
        raw = await self._redis.hgetall(self._key(company))  # type: ignore[misc]
        return [GuidanceVersion(**item) for blob in raw.values() for item in json.loads(blob)]

    async def guided(self, companies: set[str]) -> dict[str, set[tuple[str, str]]]:
        """The (metric, period) pairs each company has guidance for, in one round trip."""
        ordered = sorted(companies)
        async with self._redis.pipeline(transaction=False) as pipe:
            for company in ordered:
                pipe.hkeys(self._key(company))
            replies = await pipe.execute()
        return {
            company: {_pair(field) for field in fields}
            for company, fields in zip(ordered, replies, strict=True)
        }

    async def append(self, company: str, version: GuidanceVersion, revision: str) -> bool:
        """Add a version unless this event, or the same statement, is already recorded."""
        key, field = self._key(company), _field(version.metric, version.period)
        seen = self._seen_key(company, version.event_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(key)
                    raw = await pipe.hget(key, field)  # type: ignore[misc]
                    versions = [GuidanceVersion(**v) for v in json.loads(raw)] if raw else []
                    if _already_recorded(versions, version):
                        # the same statement under another id: that id is taken by it too
                        await pipe.set(seen, version.digest, ex=SEEN_TTL_S, nx=True)
                        return False
                    versions.append(_with_revision(version, revision))
                    pipe.multi()  # type: ignore[no-untyped-call]
                    pipe.hset(key, field, json.dumps([asdict(v) for v in versions]))
                    pipe.set(seen, version.digest, ex=SEEN_TTL_S, nx=True)
                    await pipe.execute()
                    return True
                except WatchError:
                    continue


def _already_recorded(versions: list[GuidanceVersion], version: GuidanceVersion) -> bool:
    return any(
        v.event_id == version.event_id or v.same_statement_key == version.same_statement_key
        for v in versions
    )


def _with_revision(version: GuidanceVersion, revision: str) -> GuidanceVersion:
    return GuidanceVersion(**{**asdict(version), "revision": revision})


def _pair(field: bytes | str) -> tuple[str, str]:
    metric, period = as_text(field).split(FIELD_SEPARATOR, 1)
    return metric, period


def _field(metric: str, period: str) -> str:
    return f"{metric}{FIELD_SEPARATOR}{period}"


def is_withdrawn(version: GuidanceVersion) -> bool:
    return version.status == GuidanceStatus.WITHDRAWN.value
