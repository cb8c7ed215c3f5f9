"""An in-memory `ForecastStore` for the worker's unit tests: the same contract as the Redis
adapter (tests/integration/test_forecast_store_contract.py runs one suite against both)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from schemas.alerts import AlertSignal
from schemas.base import Event
from schemas.deadletter import DeadLetter
from schemas.forecasts import ForecastUpdated, TrendUpdated
from services.common.histories.facts import FactVersion
from services.common.histories.guidance import GuidanceVersion
from services.forecast.store import (
    ERROR_LIMIT,
    FactHistory,
    ForecastKey,
    ForecastStore,
    GuidanceHistory,
    Output,
    Quarantine,
)

if TYPE_CHECKING:
    from services.forecast.core.guided import Track


@dataclass
class InMemoryHistories:
    """The fact and guidance histories a refit reads, as lists per company."""

    facts: dict[str, list[FactVersion]] = field(default_factory=dict)
    statements: dict[str, list[GuidanceVersion]] = field(default_factory=dict)

    async def versions(self, company: str) -> list[FactVersion]:
        return list(self.facts.get(company, []))

    async def all(self, company: str) -> list[GuidanceVersion]:
        return list(self.statements.get(company, []))


@dataclass
class InMemoryForecastStore:
    """Assert on its state: `published`, `letters`, `marks`, `quarantined_records`."""

    forecast_records: dict[str, dict[ForecastKey, ForecastUpdated]] = field(default_factory=dict)
    trend_records: dict[str, dict[str, TrendUpdated]] = field(default_factory=dict)
    track_records: dict[str, str] = field(default_factory=dict)  # as JSON, as Redis keeps them
    marks: dict[str, float] = field(default_factory=dict)
    generations: dict[str, int] = field(default_factory=dict)
    attempts: dict[str, int] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    quarantined_records: dict[str, Quarantine] = field(default_factory=dict)
    published: dict[str, list[Event]] = field(default_factory=dict)
    letters: list[DeadLetter] = field(default_factory=list)

    async def forecasts(self, company: str) -> dict[ForecastKey, ForecastUpdated]:
        return dict(self.forecast_records.get(company, {}))

    async def trends(self, company: str) -> dict[str, TrendUpdated]:
        return dict(self.trend_records.get(company, {}))

    async def save(
        self,
        company: str,
        *,
        forecasts: Sequence[ForecastUpdated],
        trends: Sequence[TrendUpdated],
        settled: Sequence[ForecastKey] = (),
    ) -> None:
        kept = self.forecast_records.setdefault(company, {})
        for key in settled:
            kept.pop(key, None)
        kept.update({(f.metric, f.period): f for f in forecasts})
        self.trend_records.setdefault(company, {}).update({t.metric: t for t in trends})

    async def tracks(self) -> dict[str, Track]:
        from services.forecast.core.guided import Track

        return {company: Track.from_json(text) for company, text in self.track_records.items()}

    async def save_track(self, company: str, track: Track) -> None:
        self.track_records[company] = track.to_json()

    async def mark_all(self, companies: Sequence[str], *, at: float) -> None:
        for company in companies:
            self.marks.setdefault(company, at)
            self.generations[company] = self.generations.get(company, 0) + 1

    async def earliest_mark(self) -> float | None:
        return min(self.marks.values(), default=None)

    async def due(self, *, before: float, limit: int) -> list[str]:
        ordered = sorted(self.marks.items(), key=lambda item: (item[1], item[0]))
        return [company for company, at in ordered if at <= before][:limit]

    async def generation(self, company: str) -> str | None:
        count = self.generations.get(company)
        return None if count is None else str(count)

    async def clear_if_unchanged(self, company: str, generation: str | None) -> bool:
        if generation is None or await self.generation(company) != generation:
            return False
        await self.drop_mark(company)
        return True

    async def drop_mark(self, company: str) -> None:
        self.marks.pop(company, None)
        self.generations.pop(company, None)

    async def pending(self) -> int:
        return len(self.marks)

    async def count_attempt(self, company: str) -> int:
        self.attempts[company] = self.attempts.get(company, 0) + 1
        return self.attempts[company]

    async def failed(self, company: str, error: str, *, retry_at: float) -> None:
        self.errors[company] = error[:ERROR_LIMIT]
        if company in self.marks:
            self.marks[company] = retry_at

    async def succeeded(self, company: str) -> None:
        self.attempts.pop(company, None)
        self.errors.pop(company, None)

    async def last_error(self, company: str) -> str | None:
        return self.errors.get(company) or None

    async def quarantine(self, company: str, *, attempts: int, error: str, since: float) -> bool:
        await self.drop_mark(company)
        if company in self.quarantined_records:
            return False
        record = Quarantine(company, attempts, error[:ERROR_LIMIT], since)
        self.quarantined_records[company] = record
        return True

    async def quarantined(self, companies: Sequence[str]) -> set[str]:
        return {company for company in companies if company in self.quarantined_records}

    async def quarantines(self) -> list[Quarantine]:
        return sorted(self.quarantined_records.values(), key=lambda q: q.company)

    async def release(self, company: str, *, at: float) -> bool:
        released = self.quarantined_records.pop(company, None) is not None
        self.attempts.pop(company, None)
        self.errors.pop(company, None)
        self.marks[company] = at
        self.generations[company] = self.generations.get(company, 0) + 1
        return released

    async def publish(self, output: Output, events: Sequence[Event]) -> None:
        # a round trip through JSON, as the stream's subscribers would see them
        copies = [type(e).model_validate_json(e.model_dump_json()) for e in events]
        self.published.setdefault(output, []).extend(copies)

    async def dead_letter(self, letter: DeadLetter) -> None:
        self.letters.append(DeadLetter.model_validate_json(letter.model_dump_json()))

    def signals(self) -> list[AlertSignal]:
        return [e for e in self.published.get("signals", []) if isinstance(e, AlertSignal)]


def _honours_the_port(store: InMemoryForecastStore, found: InMemoryHistories) -> None:
    """mypy checks the fakes against the ports here (never called)."""
    _store: ForecastStore = store
    _facts: FactHistory = found
    _guidance: GuidanceHistory = found
