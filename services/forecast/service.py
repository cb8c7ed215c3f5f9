"""The forecast worker: history changes mark a company for a refit; the scheduler refits it
after a quiet window (`scheduler.py`); a refit reads the company's facts and guidance, runs
the core (`fitting.py`), keeps what it published (`store.py`) and publishes `ForecastUpdated`,
`TrendUpdated` and alert signals (`events.py`). Identical inputs give identical event ids, so
a refit repeated after a crash republishes nothing new.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Sequence

from schemas.base import Event
from schemas.forecasts import ForecastUpdated
from schemas.periods import Quarter
from schemas.streams import Streams
from services.common.histories.facts import latest_as_of
from services.common.metrics import NO_METRICS, FitMetrics
from services.forecast.core import ForecastSpec
from services.forecast.core.company import DEFAULT_EVIDENCE
from services.forecast.core.guided import Evidence, Track, shared_evidence
from services.forecast.events import explain_move, trend_signals
from services.forecast.fitting import (
    DEFAULT_FULL_REFIT_S,
    DEFAULT_MAX_HISTORY_QUARTERS,
    CompanyFitter,
    RefitInputs,
    Refitted,
    refit_inputs,
)
from services.forecast.scheduler import DEFAULT_REFIT_TIMEOUT_S, RefitScheduler
from services.forecast.states import DEFAULT_MAX_STATES, FittedStates
from services.forecast.store import FactHistory, ForecastKey, ForecastStore, GuidanceHistory

EVIDENCE_REFRESH_S = 30.0  # how stale the other companies' tracks may be


class ForecastService:
    def __init__(
        self,
        *,
        store: ForecastStore,
        streams: Streams,
        history: FactHistory,
        guidance: GuidanceHistory,
        coalesce_ms: int,
        spec: ForecastSpec = ForecastSpec(),
        max_failures: int = 3,
        max_states: int = DEFAULT_MAX_STATES,
        full_refit_s: float = DEFAULT_FULL_REFIT_S,
        refit_timeout_s: float = DEFAULT_REFIT_TIMEOUT_S,
        max_history_quarters: int = DEFAULT_MAX_HISTORY_QUARTERS,
        metrics: FitMetrics = NO_METRICS,
        evidence: Evidence = DEFAULT_EVIDENCE,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self._history = history
        self._guidance = guidance
        self._max_history_quarters = max_history_quarters
        self._evidence = EvidenceCache(store, prior=evidence)
        self.fitter = CompanyFitter(
            spec=spec, states=FittedStates(max_states), full_refit_s=full_refit_s, metrics=metrics
        )
        self.scheduler = RefitScheduler(
            store,
            refit=lambda company: self.refit(company),  # late bound: tests may replace `refit`
            history_stream=streams.history,
            coalesce_ms=coalesce_ms,
            max_failures=max_failures,
            refit_timeout_s=refit_timeout_s,
            clock=clock,
        )

    async def mark_all(self, events: Sequence[Event]) -> list[BaseException | None]:
        """A history change's durable effect: its company is marked for a refit."""
        await self.scheduler.mark_all([event.company for event in events])
        return [None] * len(events)

    async def pending(self) -> int:
        return await self.store.pending()

    async def run(self, stop: asyncio.Event, *, poll_s: float = 0.05) -> None:
        await self.scheduler.run(stop, poll_s=poll_s)

    async def refit(self, company: str) -> None:
        inputs = await self._inputs(company)
        previous = await self.store.forecasts(company)
        earlier_trends = await self.store.trends(company)
        # numerical work off the event loop, so the process's other consumers keep flowing
        refitted = await asyncio.to_thread(self.fitter.refit, inputs)
        forecasts = [explain_move(f, previous.get(_key(f))) for f in refitted.forecasts]
        await self._keep(company, refitted, forecasts, settled(forecasts, list(previous)))
        await self.store.publish("forecasts", forecasts)
        await self.store.publish("trends", refitted.trends)
        await self.store.publish("signals", trend_signals(refitted.trends, earlier_trends))

    async def _inputs(self, company: str) -> RefitInputs:
        versions = latest_as_of(await self._history.versions(company), None)
        guidance = await self._guidance.all(company)
        evidence = await self._evidence.for_company(company)
        return refit_inputs(
            company, versions, guidance, evidence, max_quarters=self._max_history_quarters
        )

    async def _keep(
        self,
        company: str,
        refitted: Refitted,
        forecasts: list[ForecastUpdated],
        settled: list[ForecastKey],
    ) -> None:
        await self.store.save(company, forecasts=forecasts, trends=refitted.trends, settled=settled)
        if refitted.track is not None:
            await self.store.save_track(company, refitted.track)


def _key(forecast: ForecastUpdated) -> ForecastKey:
    return forecast.metric, forecast.period


def settled(forecasts: list[ForecastUpdated], stored: list[ForecastKey]) -> list[ForecastKey]:
    """Stored forecasts of quarters before the open target: their actuals are in (the stream
    keeps what was said)."""
    if not forecasts:
        return []
    first_open = min(Quarter.parse(f.period) for f in forecasts)
    return [key for key in stored if Quarter.parse(key[1]) < first_open]


class EvidenceCache:
    """The evidence other companies' tracks give, read at most every `EVIDENCE_REFRESH_S`;
    the published prior while none has a track."""

    def __init__(self, store: ForecastStore, *, prior: Evidence) -> None:
        self._store = store
        self._prior = prior
        self._tracks: dict[str, Track] = {}
        self._read_at = -math.inf

    async def for_company(self, company: str) -> Evidence:
        now = time.monotonic()
        if now - self._read_at > EVIDENCE_REFRESH_S:
            self._tracks = await self._store.tracks()
            self._read_at = now
        if not self._tracks:
            return self._prior
        return shared_evidence(self._tracks, exclude=company)
