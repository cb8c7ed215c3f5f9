"""The guidance worker: band checks on every forecast, guidance arithmetic, outcomes.

It turns what it sees into `AlertSignal`s; the alerts worker owns the alert lifecycle.
Signal ids derive from their causes, so a replayed input yields the same signals.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import redis.asyncio as aioredis

from schemas.alerts import AlertKind, AlertSignal, Condition, Severity
from schemas.base import Event, utc_now
from schemas.forecasts import ForecastUpdated
from schemas.history import HistoryUpdated
from schemas.money import Scale
from schemas.periods import FISCAL_YEAR_PATTERN, QUARTER_PATTERN, Quarter
from schemas.streams import Streams
from services.common.consumer import apply_each
from services.common.distribution import band_probabilities, combine_fiscal_year
from services.common.guidance_rules import check_yoy_arithmetic, derive_yoy_band
from services.common.histories.facts import RedisHistoryStore
from services.common.histories.guidance import GuidanceVersion, RedisGuidanceStore, is_withdrawn
from services.common.ids import derived_id
from services.common.streams import publish
from services.guidance.core import (
    BandState,
    classify_outcome,
    confidence_word,
    distance_to_nearer_bound,
    next_band_state,
    state_probability,
)

PRODUCER = "guidepost-guidance"
KNOWN_AT_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"  # services.common.fact.known_at_text
BAND_SEVERITY = {
    BandState.LIKELY_BELOW: Severity.WARNING,
    BandState.LIKELY_INSIDE: Severity.INFO,
    BandState.LIKELY_ABOVE: Severity.INFO,
}
STATE_WORDS = {
    BandState.LIKELY_BELOW: "likely below",
    BandState.LIKELY_INSIDE: "likely inside",
    BandState.LIKELY_ABOVE: "likely above",
}


@dataclass(frozen=True)
class GuidedBand:
    """The band a guided figure is checked against, money in whole currency units: as stated,
    or derived from the prior year's recorded actual and a stated growth (either bound may be
    open when only one growth bound was stated)."""

    low: Decimal | None
    high: Decimal | None
    prior_period: str | None = None
    prior_actual: Decimal | None = None
    yoy_low_pct: Decimal | None = None
    yoy_high_pct: Decimal | None = None

    @property
    def derived(self) -> bool:
        return self.prior_period is not None

    def bounds_in(self, factor: Decimal) -> tuple[float | None, float | None]:
        return _scaled(self.low, factor), _scaled(self.high, factor)

    def derivation_parts(self) -> tuple[str, ...]:
        """What a derived band depends on beyond its statement (for idempotent signal ids)."""
        return ("derived", str(self.prior_period), str(self.prior_actual)) if self.derived else ()


def _scaled(value: Decimal | None, factor: Decimal) -> float | None:
    return None if value is None else float(value / factor)


@dataclass(frozen=True)
class BandCheck:
    """What Guidepost said about one guided figure at one time (a scorecard entry)."""

    metric: str
    period: str
    low: float | None
    high: float | None
    point: float
    lo80: float
    hi80: float
    lo95: float
    hi95: float
    p_below: float
    p_inside: float
    p_above: float
    distance_to_band: float
    state: str
    scale: str
    currency: str
    forecast_event_id: str
    guidance_event_id: str
    checked_at: str
    confidence: float | None = None  # the probability of the side the state calls
    confidence_word: str | None = None
    band_source: str = "stated"  # or "derived" from the prior year and a stated growth
    derived_from: str | None = None
    prior_period: str | None = None
    prior_actual: float | None = None
    yoy_low_pct: float | None = None
    yoy_high_pct: float | None = None


@dataclass(frozen=True)
class Distribution:
    """A predictive distribution of one guided figure: a quarter's forecast, or a fiscal year's
    reported quarters plus its remaining quarters' forecasts."""

    metric: str
    period: str
    point: float
    lo80: float
    hi80: float
    lo95: float
    hi95: float
    quantiles: tuple[tuple[float, float], ...]
    scale: Scale
    currency: str
    source_id: str

    @classmethod
    def of_forecast(cls, forecast: ForecastUpdated) -> Distribution:
        return cls(
            metric=forecast.metric,
            period=forecast.period,
            point=float(forecast.point),
            lo80=float(forecast.lo80),
            hi80=float(forecast.hi80),
            lo95=float(forecast.lo95),
            hi95=float(forecast.hi95),
            quantiles=forecast.quantile_pairs(),
            scale=forecast.scale,
            currency=forecast.currency,
            source_id=forecast.event_id,
        )


def fiscal_year_distribution(
    *, period: str, reported: list[Decimal], remaining: list[ForecastUpdated]
) -> Distribution:
    """Sum of reported quarters (whole units) and the remaining quarters' distributions, taken
    as independent (see `combine_fiscal_year`); money in the forecasts' scale."""
    first = remaining[0]
    factor = first.scale.factor
    actual = [float(value / factor) for value in reported]
    grid = combine_fiscal_year(
        reported=actual, remaining_quantiles=[f.quantile_pairs() for f in remaining]
    )

    def at(probability: float) -> float:
        return min(grid, key=lambda pair: abs(pair[0] - probability))[1]

    sources = "/".join([str(v) for v in reported] + [f.event_id for f in remaining])
    return Distribution(
        metric=first.metric,
        period=period,
        point=sum(actual) + sum(float(f.point) for f in remaining),
        lo80=at(0.1),
        hi80=at(0.9),
        lo95=at(0.025),
        hi95=at(0.975),
        quantiles=grid,
        scale=first.scale,
        currency=first.currency,
        source_id=derived_id(period, sources),
    )


class GuidanceService:
    def __init__(
        self,
        *,
        redis: aioredis.Redis,
        streams: Streams,
        history: RedisHistoryStore,
        guidance: RedisGuidanceStore,
        max_length: int,
    ) -> None:
        self._redis = redis
        self._streams = streams
        self._history = history
        self._guidance = guidance
        self._max_length = max_length

    async def apply_forecasts(self, events: Sequence[Event]) -> list[BaseException | None]:
        return await apply_each(events, self._on_forecast)  # type: ignore[arg-type]

    async def apply_history(self, events: Sequence[Event]) -> list[BaseException | None]:
        """What was guided, for every company of the batch in one round trip; most facts are
        of periods nobody guided and need nothing more."""
        guided = await self._guidance.guided({e.company for e in events})

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
            guided = {(v.metric, v.period) for v in await self._guidance.all(update.company)}
        for fact in update.facts:
            if (fact.metric, fact.period) in guided:
                await self._on_actual(update.company, fact.metric, fact.period)
            year = fiscal_year_of(fact.period) if QUARTER_PATTERN.match(fact.period) else None
            if year is not None and (fact.metric, year) in guided:
                await self._on_actual(update.company, fact.metric, year)
                await self.check_band(update.company, fact.metric, year)
            for later in following_year_periods(fact.period):
                if (fact.metric, later) in guided:
                    await self._on_prior_year(update.company, fact.metric, later)

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
        versions = await self._guidance.history(company, metric, period)
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
        previous = await self._load_check(company, metric, period)
        check = band_check(
            distribution, guidance, band=band, previous_state=previous.state if previous else None
        )
        await self._save_check(company, check)
        await self._signal([band_signal(company, check, band)])

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
        if not FISCAL_YEAR_PATTERN.match(period):
            forecast = forecast or await self._stored_forecast(company, metric, period)
            return Distribution.of_forecast(forecast) if forecast else None
        reported: list[Decimal] = []
        remaining: list[ForecastUpdated] = []
        for quarter in (str(q) for q in _fiscal_quarters(period)):
            actual = await self._actual(company, metric, quarter)
            if actual is not None:
                reported.append(actual)
                continue
            stored = await self._stored_forecast(company, metric, quarter)
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
        versions = await self._guidance.history(update.company, metric, period)
        if not versions:
            return
        guidance = versions[-1]
        stated = next((v for v in versions if v.event_id == update.cause_event_id), None)
        # none: the same statement under another id, announced with the one recorded
        signals = [_revision_signal(update.company, stated)] if stated is not None else []
        arithmetic = await self._arithmetic_signal(update.company, guidance)
        if arithmetic is not None:
            signals.append(arithmetic)
        await self._signal(signals)
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
        calls = await self._calls(company, metric, period)
        await self._signal(_outcome_signals(company, guidance, band, actual, calls))

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
        millions = Scale.MILLIONS.factor
        check = check_yoy_arithmetic(
            low=float(bounds[0] / millions),
            high=float(bounds[1] / millions),
            yoy_low_pct=float(guidance.yoy_low_pct),
            yoy_high_pct=float(guidance.yoy_high_pct),
            prior_actual=float(prior / millions),
            band_rounding=_band_rounding(bounds),
        )
        return AlertSignal(
            event_id=derived_id(guidance.event_id, "arithmetic", str(prior)),
            company=company,
            producer=PRODUCER,
            kind=AlertKind.GUIDANCE_ARITHMETIC,
            period=guidance.period,
            subject=guidance.metric,
            condition=Condition.CLEAR if check.consistent else Condition.FIRING,
            severity=Severity.INFO if check.consistent else Severity.WARNING,
            summary=f"{company} {guidance.metric} {guidance.period} guidance: {check.explanation}",
            details={**{k: v for k, v in asdict(check).items()}, "prior_period": prior_period},
        )

    async def _actual(self, company: str, metric: str, period: str) -> Decimal | None:
        if FISCAL_YEAR_PATTERN.match(period):
            quarters = [str(q) for q in _fiscal_quarters(period)]
            values = [await self._actual(company, metric, q) for q in quarters]
            known = [v for v in values if v is not None]
            return sum(known, Decimal(0)) if len(known) == len(values) else None
        return await self._history.latest(company, metric, period)

    async def _stored_forecast(
        self, company: str, metric: str, period: str
    ) -> ForecastUpdated | None:
        key = self._streams.company_key(company, "forecasts")
        raw = await self._redis.hget(key, f"{metric}|{period}")  # type: ignore[misc]
        return ForecastUpdated.model_validate_json(raw) if raw else None

    async def _load_check(self, company: str, metric: str, period: str) -> BandCheck | None:
        raw = await self._redis.hget(
            self._streams.company_key(company, "bands"), f"{metric}|{period}"
        )  # type: ignore[misc]
        return BandCheck(**json.loads(raw)) if raw else None

    async def _save_check(self, company: str, check: BandCheck) -> None:
        field = f"{check.metric}|{check.period}"
        calls = await self._calls(company, check.metric, check.period)
        if not any(
            c.forecast_event_id == check.forecast_event_id
            and c.guidance_event_id == check.guidance_event_id
            for c in calls
        ):
            calls.append(check)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(self._streams.company_key(company, "bands"), field, json.dumps(asdict(check)))
            pipe.hset(
                self._streams.company_key(company, "calls"),
                field,
                json.dumps([asdict(c) for c in calls]),
            )
            await pipe.execute()

    async def _calls(self, company: str, metric: str, period: str) -> list[BandCheck]:
        raw = await self._redis.hget(
            self._streams.company_key(company, "calls"), f"{metric}|{period}"
        )  # type: ignore[misc]
        return [BandCheck(**item) for item in json.loads(raw)] if raw else []

    async def _signal(self, signals: list[AlertSignal]) -> None:
        await publish(
            self._redis,
            self._streams.signals,
            signals,
            max_length=self._max_length,
            streams=self._streams,
        )


def band_check(
    distribution: Distribution,
    guidance: GuidanceVersion,
    *,
    band: GuidedBand | None = None,
    previous_state: str | None,
) -> BandCheck:
    """Probabilities of landing below, inside, above the band (`band_probabilities`, the one
    implementation), the hysteretic call and how confident it is. `band` defaults to the
    guidance's stated amount band."""
    band = band or _stated_band(guidance)
    low, high = band.bounds_in(distribution.scale.factor)
    probabilities = band_probabilities(distribution.quantiles, low=low, high=high)
    p_below, p_inside, p_above = probabilities.as_tuple()
    state = next_band_state(
        _known_state(previous_state), p_below=p_below, p_inside=p_inside, p_above=p_above
    )
    confidence = state_probability(state, p_below=p_below, p_inside=p_inside, p_above=p_above)
    point = distribution.point
    return BandCheck(
        metric=distribution.metric,
        period=distribution.period,
        low=low,
        high=high,
        point=point,
        lo80=distribution.lo80,
        hi80=distribution.hi80,
        lo95=distribution.lo95,
        hi95=distribution.hi95,
        p_below=p_below,
        p_inside=p_inside,
        p_above=p_above,
        distance_to_band=distance_to_nearer_bound(point=point, low=low, high=high),
        state=state.value,
        scale=distribution.scale.value,
        currency=distribution.currency,
        forecast_event_id=distribution.source_id,
        guidance_event_id=guidance.event_id,
        checked_at=utc_now().isoformat(),
        confidence=confidence,
        confidence_word=confidence_word(confidence),
        **_derivation_fields(band, distribution.scale.factor),
    )


def _stated_band(guidance: GuidanceVersion) -> GuidedBand:
    stated = guidance.band()
    if stated is None:
        raise ValueError(
            f"guidance {guidance.event_id} states no amount band: derive it (guided_band)"
        )
    return GuidedBand(low=stated[0], high=stated[1])


def _known_state(text: str | None) -> BandState | None:
    """The previous call; a state name this version no longer uses starts the call afresh."""
    try:
        return BandState(text) if text else None
    except ValueError:
        return None


def _derivation_fields(band: GuidedBand, factor: Decimal) -> dict[str, Any]:
    if not band.derived:
        return {}
    return {
        "band_source": "derived",
        "derived_from": derivation_text(band, factor),
        "prior_period": band.prior_period,
        "prior_actual": _scaled(band.prior_actual, factor),
        "yoy_low_pct": _scaled(band.yoy_low_pct, Decimal(1)),
        "yoy_high_pct": _scaled(band.yoy_high_pct, Decimal(1)),
    }


def derivation_text(band: GuidedBand, factor: Decimal) -> str:
    """'the 2023Q2 actual of 1,093.4 grown +7.0% to +12.5%' (money in `factor` units)."""
    prior = _scaled(band.prior_actual, factor)
    return f"the {band.prior_period} actual of {prior:,.1f} grown {growth_text(band)}"


def growth_text(band: GuidedBand) -> str:
    low, high = band.yoy_low_pct, band.yoy_high_pct
    if low is not None and high is not None:
        return f"{low:+.1f}% to {high:+.1f}%"
    return f"at least {low:+.1f}%" if low is not None else f"at most {high:+.1f}%"


def band_text(low: float | None, high: float | None) -> str:
    """'1,170.0–1,230.0', 'at least 1,170.0' or 'at most 1,230.0'."""
    if low is not None and high is not None:
        return f"{low:,.1f}–{high:,.1f}"
    return f"at least {low:,.1f}" if low is not None else f"at most {high:,.1f}"


def fiscal_year_of(quarter: str) -> str:
    return f"FY{Quarter.parse(quarter).year}"


def following_year_periods(period: str) -> tuple[str, ...]:
    """The periods whose prior year `period` is or is part of: a quarter is the prior of the
    same quarter a year later and part of the prior of the next fiscal year."""
    if FISCAL_YEAR_PATTERN.match(period):
        return (f"FY{int(period[2:]) + 1}",)
    if not QUARTER_PATTERN.match(period):
        return ()
    quarter = Quarter.parse(period)
    return (str(quarter.shift(4)), f"FY{quarter.year + 1}")


def prior_year(period: str) -> str:
    if FISCAL_YEAR_PATTERN.match(period):
        return f"FY{int(period[2:]) - 1}"
    return str(Quarter.parse(period).same_quarter_last_year())


def _fiscal_quarters(period: str) -> list[Quarter]:
    year = int(period[2:])
    return [Quarter(year, q) for q in range(1, 5)]


def _band_rounding(bounds: tuple[Decimal, Decimal]) -> float:
    """Half a unit of the last digit the band was stated to, in millions."""
    steps = [Decimal(1).scaleb(_trailing_zero_digits(b)) for b in bounds]
    return float(min(steps) / Scale.MILLIONS.factor) / 2


def _trailing_zero_digits(value: Decimal) -> int:
    digits = str(abs(value.to_integral()))
    return len(digits) - len(digits.rstrip("0")) if digits != "0" else 0


def band_signal(company: str, check: BandCheck, band: GuidedBand) -> AlertSignal:
    state = BandState(check.state)
    derived = f" (derived from {check.derived_from})" if check.derived_from else ""
    return AlertSignal(
        event_id=derived_id(
            check.forecast_event_id, check.guidance_event_id, "band", *band.derivation_parts()
        ),
        company=company,
        producer=PRODUCER,
        kind=AlertKind.BAND_CHECK,
        period=check.period,
        subject=check.metric,
        severity=BAND_SEVERITY[state],
        state=state.value,
        summary=(
            f"{company} {check.metric} {check.period} is {STATE_WORDS[state]} guidance, "
            f"{check.confidence_word} confidence ({check.confidence:.0%}): "
            f"forecast {check.point:,.1f} (80% {check.lo80:,.1f}–{check.hi80:,.1f}) "
            f"vs guidance {band_text(check.low, check.high)} {check.currency} {check.scale}"
            f"{derived}; P(below) {check.p_below:.0%}, P(inside) {check.p_inside:.0%}, "
            f"P(above) {check.p_above:.0%}."
        ),
        details={
            k: (v if not isinstance(v, float) or math.isfinite(v) else None)
            for k, v in asdict(check).items()
        },
        cause_event_id=check.forecast_event_id,
    )


def _revision_signal(company: str, guidance: GuidanceVersion) -> AlertSignal:
    """Observed when the statement became known: a redelivered older statement is older than
    what its alert already holds, and changes nothing."""
    revision = guidance.revision
    return AlertSignal(
        event_id=derived_id(guidance.event_id, "revision"),
        occurred_at=datetime.strptime(guidance.known_at, KNOWN_AT_FORMAT).replace(tzinfo=UTC),
        company=company,
        producer=PRODUCER,
        kind=AlertKind.GUIDANCE_REVISION,
        period=guidance.period,
        subject=guidance.metric,
        severity=Severity.WARNING if revision in ("lowered", "withdrawn") else Severity.INFO,
        state=revision,
        summary=(
            f"{company} {guidance.metric} guidance for {guidance.period}: {revision} "
            f"({_stated_text(guidance)})."
        ),
        details={"revision": revision, **asdict(guidance)},
    )


def _stated_text(guidance: GuidanceVersion) -> str:
    band, growth = guidance.band(), guidance.growth()
    millions = Scale.MILLIONS.factor
    if band is not None:
        amounts = band_text(float(band[0] / millions), float(band[1] / millions))
        return f"{amounts} million {guidance.currency or ''}".rstrip()
    if growth is not None:
        yoy = GuidedBand(None, None, yoy_low_pct=growth[0], yoy_high_pct=growth[1])
        return f"growth of {growth_text(yoy)} on {prior_year(guidance.period)}"
    return "no range"


def _outcome_signals(
    company: str,
    guidance: GuidanceVersion,
    band: GuidedBand,
    actual: Decimal,
    calls: list[BandCheck],
) -> list[AlertSignal]:
    millions = Scale.MILLIONS.factor
    low, high = band.bounds_in(millions)
    value = float(actual / millions)
    outcome = classify_outcome(actual=value, low=low, high=high)
    words = outcome.verdict.replace("_", " ")
    reference = "bound" if low is None or high is None else "midpoint"
    derived = f" (derived from {derivation_text(band, millions)})" if band.derived else ""
    scorecard = [
        {
            "at": c.checked_at,
            "point": c.point,
            "p_below": c.p_below,
            "p_inside": c.p_inside,
            "p_above": c.p_above,
            "state": c.state,
            "forecast_event_id": c.forecast_event_id,
        }
        for c in calls
    ]
    outcome_signal = AlertSignal(
        event_id=derived_id(guidance.event_id, "outcome", str(actual), *band.derivation_parts()),
        company=company,
        producer=PRODUCER,
        kind=AlertKind.OUTCOME,
        period=guidance.period,
        subject=guidance.metric,
        severity=Severity.WARNING if outcome.verdict == "miss" else Severity.INFO,
        state=outcome.verdict,
        summary=(
            f"{company} {guidance.metric} {guidance.period}: {words} — actual {value:,.1f} "
            f"vs guidance {band_text(low, high)} million{derived} ({outcome.vs_midpoint} "
            f"{reference}, {outcome.surprise_vs_mid_pct:+.1f}%); "
            f"Guidepost made {len(calls)} call(s)."
        ),
        details={
            "actual": value,
            "low": low,
            "high": high,
            "band_source": "derived" if band.derived else "stated",
            "derived_from": derivation_text(band, millions) if band.derived else None,
            "verdict": outcome.verdict,
            "vs_midpoint": outcome.vs_midpoint,
            "surprise_vs_mid_pct": outcome.surprise_vs_mid_pct
            if math.isfinite(outcome.surprise_vs_mid_pct)
            else None,
            "scorecard": scorecard,  # type: ignore[dict-item]
        },
    )
    resolve_band = AlertSignal(
        event_id=derived_id(
            guidance.event_id, "band-settled", str(actual), *band.derivation_parts()
        ),
        company=company,
        producer=PRODUCER,
        kind=AlertKind.BAND_CHECK,
        period=guidance.period,
        subject=guidance.metric,
        condition=Condition.CLEAR,
        summary=(
            f"{company} {guidance.metric} {guidance.period} reported: "
            f"the band check is settled ({words})."
        ),
        details={"actual": value, "verdict": outcome.verdict},
    )
    return [outcome_signal, resolve_band]
