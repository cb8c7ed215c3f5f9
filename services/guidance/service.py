"""The guidance worker: band checks on every forecast, guidance arithmetic, outcomes.

It turns what it sees into `AlertSignal`s (built in `events`); the alerts worker owns the
alert lifecycle. What it reads and writes goes through its store (`store`); the arithmetic of
bands, calls and outcomes is in `core`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

from schemas.alerts import AlertSignal
from schemas.base import Event, utc_now
from schemas.forecasts import ForecastUpdated
from schemas.history import HistoryUpdated
from services.common.consumer import apply_each
from services.common.guidance_rules import derive_yoy_band
from services.common.histories.guidance import GuidanceVersion, is_withdrawn
from services.common.ids import derived_id
from services.guidance.core import (
    BandCheck,
    Distribution,
    GuidedBand,
    call_band,
    fiscal_year_total,
)
from services.guidance.events import (
    arithmetic_signal,
    band_signal,
    outcome_signals,
    revision_signal,
)
from services.guidance.periods import (
    fiscal_quarters,
    fiscal_year_of,
    following_year_periods,
    is_fiscal_year,
    is_quarter,
    prior_year,
)
from services.guidance.store import GuidanceWorkerStore


def forecast_distribution(forecast: ForecastUpdated) -> Distribution:
    return Distribution(
        metric=forecast.metric,
        period=forecast.period,
        point=float(forecast.point),
        lo80=float(forecast.lo80),
        hi80=float(forecast.hi80),
        lo95=float(forecast.lo95),
        hi95=float(forecast.hi95),
        quantiles=forecast.quantile_pairs(),
        scale=forecast.scale.value,
        scale_factor=forecast.scale.factor,
        currency=forecast.currency,
        source_id=forecast.event_id,
        known_at=forecast.as_of.isoformat(),
    )


def fiscal_year_distribution(
    *, period: str, reported: list[Decimal], remaining: list[ForecastUpdated]
) -> Distribution:
    """A fiscal year's reported quarters (whole units) plus its remaining quarters' forecasts
    (`fiscal_year_total`), named after all of them."""
    sources = "/".join([str(v) for v in reported] + [f.event_id for f in remaining])
    return fiscal_year_total(
        period=period,
        reported=reported,
        remaining=[forecast_distribution(f) for f in remaining],
        source_id=derived_id(period, sources),
    )


def band_check(
    distribution: Distribution,
    guidance: GuidanceVersion,
    *,
    band: GuidedBand | None = None,
    previous_state: str | None,
) -> BandCheck:
    """The call on `distribution` against the guidance (`call_band`), made now. `band`
    defaults to the guidance's stated amount band."""
    return call_band(
        distribution,
        band=band or stated_band(guidance),
        guidance_event_id=guidance.event_id,
        previous_state=previous_state,
        checked_at=utc_now().isoformat(),
    )


def stated_band(guidance: GuidanceVersion) -> GuidedBand:
    stated = guidance.band()
    if stated is None:
        raise ValueError(
            f"guidance {guidance.event_id} states no amount band: derive it (guided_band)"
        )
    return GuidedBand(low=stated[0], high=stated[1])


class GuidanceService:
    def __init__(self, *, store: GuidanceWorkerStore) -> None:
        self._store = store

    async def apply_forecasts(self, events: Sequence[Event]) -> list[BaseException | None]:
        return await apply_each(events, self._on_forecast)  # type: ignore[arg-type]

    async def apply_history(self, events: Sequence[Event]) -> list[BaseException | None]:
        """What was guided, for every company of the batch in one round trip; most facts are
        of periods nobody guided and need nothing more."""
        guided = await self._store.guided({e.company for e in events})

        async def handle(update: Event) -> None:
            await self._on_history(update, guided.get(update.company, set()))  # type: ignore[arg-type]

        return await apply_each(events, handle)

    async def _on_forecast(self, forecast: ForecastUpdated) -> None:
        await self.check_band(forecast.company, forecast.metric, forecast.period, forecast)
        await self.check_band(forecast.company, forecast.metric, fiscal_year_of(forecast.period))

    async def _on_history(self, update: HistoryUpdated, guided: set[tuple[str, str]]) -> None:
        for change in update.guidance:
            await self._on_guidance(update, change.metric, change.period)
        if not update.facts:
            return
        if update.guidance:  # this very update may have recorded new guidance
            guided = {(v.metric, v.period) for v in await self._store.all_guidance(update.company)}
        for fact in update.facts:
            await self._on_fact(update.company, fact.metric, fact.period, guided)

    async def _on_fact(
        self, company: str, metric: str, period: str, guided: set[tuple[str, str]]
    ) -> None:
        if (metric, period) in guided:
            await self._on_actual(company, metric, period)
        year = fiscal_year_of(period) if is_quarter(period) else None
        if year is not None and (metric, year) in guided:
            await self._on_actual(company, metric, year)
            await self.check_band(company, metric, year)
        for later in following_year_periods(period):
            if (metric, later) in guided:
                await self._on_prior_year(company, metric, later)

    async def _on_prior_year(self, company: str, metric: str, period: str) -> None:
        """A prior-year figure was recorded or restated: guidance stated as growth on it gets
        its band derived again, then its outcome or band check."""
        guidance = await self.current_guidance(company, metric, period)
        if guidance is None or not guidance.growth_only:
            return
        await self._on_actual(company, metric, period)
        await self.check_band(company, metric, period)

    async def current_guidance(
        self, company: str, metric: str, period: str
    ) -> GuidanceVersion | None:
        versions = await self._store.guidance_history(company, metric, period)
        return versions[-1] if versions else None

    async def check_band(
        self, company: str, metric: str, period: str, forecast: ForecastUpdated | None = None
    ) -> None:
        guidance = await self.current_guidance(company, metric, period)
        if guidance is None or is_withdrawn(guidance):
            return
        if await self._actual(company, metric, period) is not None:
            return  # the outcome is known; no band check for a settled period
        band = await self.guided_band(company, guidance)
        if band is None:
            return  # growth on a prior year not yet recorded: checked when it is
        distribution = await self._distribution(company, metric, period, forecast)
        if distribution is None:
            return
        previous = await self._store.latest_check(company, metric, period)
        check = band_check(
            distribution, guidance, band=band, previous_state=previous.state if previous else None
        )
        await self._store.save_check(company, check)
        await self._publish([band_signal(company, check, band)])

    async def guided_band(self, company: str, guidance: GuidanceVersion) -> GuidedBand | None:
        """The stated amount band, else the band derived from the prior year's actual as now
        recorded (so a restated prior year moves it); None while the prior year is unknown or
        is not positive (growth on a loss names no band)."""
        stated = guidance.band()
        if stated is not None:
            return GuidedBand(low=stated[0], high=stated[1])
        growth = guidance.growth()
        if growth is None:
            return None
        prior_period = prior_year(guidance.period)
        prior = await self._actual(company, guidance.metric, prior_period)
        if prior is None or prior <= 0:
            return None
        low, high = derive_yoy_band(
            prior_actual=prior, yoy_low_pct=growth[0], yoy_high_pct=growth[1]
        )
        return GuidedBand(low, high, prior_period, prior, growth[0], growth[1])

    async def _distribution(
        self, company: str, metric: str, period: str, forecast: ForecastUpdated | None
    ) -> Distribution | None:
        if not is_fiscal_year(period):
            forecast = forecast or await self._store.published_forecast(company, metric, period)
            return forecast_distribution(forecast) if forecast else None
        reported: list[Decimal] = []
        remaining: list[ForecastUpdated] = []
        for quarter in fiscal_quarters(period):
            actual = await self._actual(company, metric, quarter)
            if actual is not None:
                reported.append(actual)
                continue
            stored = await self._store.published_forecast(company, metric, quarter)
            if stored is None:
                return None  # a remaining quarter has no forecast yet
            remaining.append(stored)
        if not remaining:
            return None
        return fiscal_year_distribution(period=period, reported=reported, remaining=remaining)

    async def _on_guidance(self, update: HistoryUpdated, metric: str, period: str) -> None:
        """The revision notice of the statement this update recorded (its own, whatever was
        recorded after it: a fast producer's statements are each announced, in order), the
        arithmetic of the guidance as now recorded, then its outcome if the actual is already
        known (history may arrive in any order), else a band check against it."""
        versions = await self._store.guidance_history(update.company, metric, period)
        if not versions:
            return
        guidance = versions[-1]
        stated = next((v for v in versions if v.event_id == update.cause_event_id), None)
        # none: the same statement under another id, announced with the one recorded
        signals = [revision_signal(update.company, stated)] if stated is not None else []
        arithmetic = await self._arithmetic_signal(update.company, guidance)
        if arithmetic is not None:
            signals.append(arithmetic)
        await self._publish(signals)
        await self._on_actual(update.company, metric, period)
        await self.check_band(update.company, metric, period)

    async def _on_actual(self, company: str, metric: str, period: str) -> None:
        guidance = await self.current_guidance(company, metric, period)
        actual = await self._actual(company, metric, period)
        if guidance is None or is_withdrawn(guidance) or actual is None:
            return
        band = await self.guided_band(company, guidance)
        if band is None:
            return  # growth on a prior year not yet recorded: judged when it is
        calls = await self._store.calls(company, metric, period)
        known_at = await self._actual_known_at(company, metric, period)
        await self._publish(outcome_signals(company, guidance, band, actual, calls, known_at))

    async def _arithmetic_signal(
        self, company: str, guidance: GuidanceVersion
    ) -> AlertSignal | None:
        bounds = guidance.band()
        if bounds is None or guidance.yoy_low_pct is None or guidance.yoy_high_pct is None:
            return None
        prior_period = prior_year(guidance.period)
        prior = await self._actual(company, guidance.metric, prior_period)
        if prior is None:
            return None
        growth = (guidance.yoy_low_pct, guidance.yoy_high_pct)
        return arithmetic_signal(
            company, guidance, bounds=bounds, growth=growth, prior_period=prior_period, prior=prior
        )

    async def _actual_known_at(self, company: str, metric: str, period: str) -> datetime | None:
        """When the reported figure became known; a fiscal year's, when its last quarter did."""
        if not is_fiscal_year(period):
            return await self._store.actual_known_at(company, metric, period)
        times = [await self._actual_known_at(company, metric, q) for q in fiscal_quarters(period)]
        return max((t for t in times if t is not None), default=None)

    async def _actual(self, company: str, metric: str, period: str) -> Decimal | None:
        """A quarter's reported figure; a fiscal year's is the sum of its four, once all are."""
        if not is_fiscal_year(period):
            return await self._store.actual(company, metric, period)
        values = [await self._actual(company, metric, q) for q in fiscal_quarters(period)]
        known = [v for v in values if v is not None]
        return sum(known, Decimal(0)) if len(known) == len(values) else None

    async def _publish(self, signals: list[AlertSignal]) -> None:
        await self._store.publish_signals(signals)
