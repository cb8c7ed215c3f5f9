"""An in-memory `IngestStore` for the ingest service's unit tests.

It honours the Redis adapter's contract on one Redis (tests/integration/test_ingest_store_contract
runs the same assertions on both): dedupe and conflicts by content digest, the change kinds of
record_facts.lua (recorded, restated, refined, a late version, retraction), each event's
HistoryUpdated written with its facts, and the bookkeeping of updates a caller appends.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from schemas.alerts import AlertSignal
from schemas.history import ChangeKind, FactChange, HistoryUpdated
from services.common.fact import FIELD_SEPARATOR, known_at_text
from services.common.histories.facts import (
    ConflictingDuplicate,
    FactVersion,
    Recording,
    RecordOutcome,
)
from services.common.histories.guidance import GuidanceVersion
from services.common.streams import Acknowledgement
from services.ingest.store import RecentKey

Version = dict[str, Any]  # the store's shape: f, v, p, t, e, c and x for a retraction


@dataclass
class InMemoryIngestStore:
    """What the worker wrote, kept in lists a test can read: `history_updates` and `signals`
    as published, `acknowledged` the acknowledgements sent. `atomic=False` behaves as the
    adapter on a cluster: the outcomes carry the history updates for the caller to append."""

    atomic: bool = True
    history_updates: list[HistoryUpdated] = field(default_factory=list)
    signals: list[AlertSignal] = field(default_factory=list)
    acknowledged: list[Acknowledgement] = field(default_factory=list)
    _seen: dict[tuple[str, str], tuple[str, list[Version]]] = field(default_factory=dict)
    _versions: dict[tuple[str, str], list[Version]] = field(default_factory=dict)
    _guidance: dict[tuple[str, str, str], list[GuidanceVersion]] = field(default_factory=dict)
    _guidance_seen: dict[tuple[str, str], str] = field(default_factory=dict)
    _published: set[tuple[str, str]] = field(default_factory=set)

    @property
    def writes_history_updates_atomically(self) -> bool:
        return self.atomic

    async def record_facts(
        self, batch: list[Recording], envelope: dict[str, str | int]
    ) -> list[RecordOutcome | BaseException]:
        return [self._record(item, envelope) for item in batch]

    def _record(
        self, item: Recording, envelope: dict[str, str | int]
    ) -> RecordOutcome | ConflictingDuplicate:
        digest = item.script_args()[3]
        seen = self._seen.get((item.company, item.event_id))
        if seen is not None and seen[0] != digest:
            return ConflictingDuplicate(item.event_id, seen[0], digest)
        if seen is not None:
            owed = self._owed(item, envelope, seen[1]) if not self.atomic else None
            return _outcome(seen[1], duplicate=True, owed=owed, atomic=self.atomic)
        changes = [c for fact in item.facts for c in self._apply(item.company, _version(fact))]
        self._seen[(item.company, item.event_id)] = (digest, changes)
        update = self._owed(item, envelope, changes)
        if update is not None and self.atomic:
            self.history_updates.append(update)
        return _outcome(changes, duplicate=False, owed=update, atomic=self.atomic)

    def _owed(
        self, item: Recording, envelope: dict[str, str | int], changes: list[Version]
    ) -> HistoryUpdated | None:
        return _history_update(item, envelope, changes) if changes and item.update_id else None

    def _apply(self, company: str, fact: Version) -> list[Version]:
        versions = self._versions.setdefault((company, fact["f"]), [])
        kind, latest = _change_kind(versions, fact)
        if kind is None:
            return []
        position = _insert_in_time_order(versions, fact)
        if kind != "late":
            previous = latest["v"] if latest else False
            return [{"f": fact["f"], "k": kind, "v": fact["v"], "prev": previous, "c": fact["c"]}]
        assert latest is not None  # a late version has a later one
        if position == len(versions) - 2 and not latest.get("x") and not _same(fact, latest):
            # learned late, just before the current one: the current value now restates it
            return [{"f": fact["f"], "k": "restated", "v": latest["v"], "prev": fact["v"],
                     "c": latest["c"]}]  # fmt: skip
        return []

    async def history_updates_published(self, items: list[tuple[str, str]]) -> set[str]:
        return {event_id for company, event_id in items if (company, event_id) in self._published}

    async def append_history_updates(self, entries: list[tuple[str, bytes]]) -> None:
        self.history_updates += [HistoryUpdated.model_validate_json(e) for _, e in entries]

    async def mark_history_updates_published(self, items: list[tuple[str, str]]) -> None:
        self._published.update(items)

    async def recent_values(self, keys: list[RecentKey]) -> list[list[Decimal]]:
        return [
            [Decimal(latest["v"]) for period in periods if (latest := self._latest(c, m, period))]
            for c, m, periods in keys
        ]

    def _latest(self, company: str, metric: str, period: str) -> Version | None:
        versions = self._versions.get((company, f"{metric}{FIELD_SEPARATOR}{period}"), [])
        latest = _latest_of(versions)
        return None if latest is None or latest.get("x") else latest

    async def retract(
        self, company: str, metric: str, period: str, *, at: datetime, retraction_id: str
    ) -> FactVersion | None:
        name = f"{metric}{FIELD_SEPARATOR}{period}"
        latest = self._latest(company, metric, period)
        if latest is None:
            return None
        known_at = max(known_at_text(at), latest["t"])  # never before what it retracts
        retraction = {**latest, "t": known_at, "e": retraction_id, "x": 1}
        self._versions[(company, name)].append(retraction)
        return _fact_version(latest)

    async def guidance_digest(self, company: str, event_id: str) -> str | None:
        return self._guidance_seen.get((company, event_id))

    async def remember_guidance(self, company: str, event_id: str, digest: str) -> None:
        self._guidance_seen.setdefault((company, event_id), digest)

    async def guidance_history(
        self, company: str, metric: str, period: str
    ) -> list[GuidanceVersion]:
        return list(self._guidance.get((company, metric, period), []))

    async def append_guidance(self, company: str, version: GuidanceVersion, revision: str) -> bool:
        versions = self._guidance.setdefault((company, version.metric, version.period), [])
        self._guidance_seen.setdefault((company, version.event_id), version.digest)
        if any(
            v.event_id == version.event_id or v.same_statement_key == version.same_statement_key
            for v in versions
        ):
            return False
        versions.append(GuidanceVersion(**{**asdict(version), "revision": revision}))
        return True

    async def publish_history_updates(self, updates: Sequence[HistoryUpdated]) -> None:
        self.history_updates += updates

    async def publish_signals(
        self, signals: Sequence[AlertSignal], *, acknowledging: Acknowledgement | None = None
    ) -> None:
        self.signals += signals
        if acknowledging is not None:
            self.acknowledged.append(acknowledging)

    async def acknowledge(self, acknowledgement: Acknowledgement) -> None:
        self.acknowledged.append(acknowledgement)


def _version(fact: Any) -> Version:
    return {
        "f": fact.field,
        "v": str(fact.value),
        "p": str(fact.precision),
        "t": known_at_text(fact.known_at),
        "e": fact.event_id,
        "c": fact.currency or "",
    }


def _same(a: Version, b: Version) -> bool:
    """As the script compares: within half the coarser precision (in doubles, as Lua does)."""
    tolerance = max(float(a["p"]), float(b["p"])) / 2 + 1e-9 * abs(float(a["v"]))
    return abs(float(a["v"]) - float(b["v"])) <= tolerance


def _latest_of(versions: list[Version]) -> Version | None:
    latest = None
    for version in versions:
        if latest is None or version["t"] >= latest["t"]:
            latest = version
    return latest


def _insert_in_time_order(versions: list[Version], fact: Version) -> int:
    position = next((i for i, v in enumerate(versions) if fact["t"] < v["t"]), len(versions))
    versions.insert(position, fact)
    return position


def _change_kind(versions: list[Version], fact: Version) -> tuple[str | None, Version | None]:
    latest = _latest_of(versions)
    if latest is None:
        return "recorded", None
    if latest.get("x") and fact["t"] >= latest["t"]:
        return "recorded", None
    if fact["t"] >= latest["t"]:
        if not _same(fact, latest):
            return "restated", latest
        if float(fact["p"]) < float(latest["p"]):
            return "refined", latest
        return None, latest
    if any(not v.get("x") and _same(fact, v) for v in versions):
        return None, latest
    return "late", latest


def _outcome(
    changes: list[Version], *, duplicate: bool, owed: HistoryUpdated | None, atomic: bool
) -> RecordOutcome:
    encoded = json.dumps(changes).encode() if changes else b"[]"
    kinds = ",".join(change["k"] for change in changes).encode()
    entry = owed.model_dump_json().encode() if owed is not None and not atomic else b""
    return RecordOutcome(duplicate, encoded, kinds, atomic, entry)


def _history_update(
    item: Recording, envelope: dict[str, str | int], changes: list[Version]
) -> HistoryUpdated:
    return HistoryUpdated.model_validate(
        {
            **envelope,
            "event_id": item.update_id,
            "company": item.company,
            "cause_event_id": item.event_id,
            "facts": [_fact_change(change) for change in changes],
        }
    )


def _fact_change(change: Version) -> FactChange:
    metric, period = change["f"].split(FIELD_SEPARATOR, 1)
    kind = ChangeKind.RESTATED if change["k"] == "restated" else ChangeKind.RECORDED
    previous = change["prev"] or None
    return FactChange(
        metric=metric,
        period=period,
        kind=kind,
        value=Decimal(change["v"]),
        previous=Decimal(previous) if previous else None,
        currency=change["c"] or None,
    )


def _fact_version(version: Version) -> FactVersion:
    metric, period = version["f"].split(FIELD_SEPARATOR, 1)
    return FactVersion(
        metric=metric,
        period=period,
        value=Decimal(version["v"]),
        precision=Decimal(version["p"]),
        known_at=version["t"],
        event_id=version["e"],
        currency=version["c"] or None,
    )
