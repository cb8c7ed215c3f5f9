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

import redis.asyncio as aioredis

from schemas.alerts import AlertKind, AlertSignal, Condition, Severity
from schemas.base import Event, utc_now
from schemas.forecasts import ForecastUpdated
from schemas.history import HistoryUpdated
from schemas.money import Scale
from schemas.periods import FISCAL_YEAR_PATTERN, QUARTER_PATTERN, Quarter
from schemas.streams import Streams
from services.common.consumer import apply_each
from services.common.ids import derived_id
from services.common.streams import publish
from services.guidance.core import (
    BandState,
    check_yoy_arithmetic,
    classify_outcome,
    combine_fiscal_year,
    distance_to_nearer_bound,
    next_band_state,
    probabilities_from_quantiles,
)
from services.ingest.guidance_store import GuidanceVersion, RedisGuidanceStore, is_withdrawn
from services.ingest.store import RedisHistoryStore

PRODUCER = "guidepost-guidance"
KNOWN_AT_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"  # services.ingest.facts.known_at_text
BAND_SEVERITY = {
    BandState.ON_TRACK: Severity.INFO,
    BandState.AT_RISK: Severity.WARNING,
    BandState.LIKELY_BEAT: Severity.INFO,
}


@dataclass(frozen=True)
class BandCheck:
    """What Guidepost said about one guided figure at one time (a scorecard entry)."""

    metric: str
    period: str
    low: float
    high: float
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
        distribution = await self._distribution(company, metric, period, forecast)
        if distribution is None:
            return
        previous = await self._load_check(company, metric, period)
        check = band_check(
            distribution, guidance, previous_state=previous.state if previous else None
        )
        await self._save_check(company, check)
        await self._signal([_band_signal(company, check)])

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
        calls = await self._calls(company, metric, period)
        await self._signal(_outcome_signals(company, guidance, actual, calls))

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
    distribution: Distribution, guidance: GuidanceVersion, *, previous_state: str | None
) -> BandCheck:
    """Probabilities of landing below, inside, above the band, and the hysteretic state."""
    bounds = guidance.band()
    assert bounds is not None
    factor = distribution.scale.factor
    low, high = float(bounds[0] / factor), float(bounds[1] / factor)
    p_below, p_inside, p_above = probabilities_from_quantiles(
        distribution.quantiles, low=low, high=high
    )
    state = next_band_state(
        BandState(previous_state) if previous_state else None, p_below=p_below, p_above=p_above
    )
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
    )


def fiscal_year_of(quarter: str) -> str:
    return f"FY{Quarter.parse(quarter).year}"


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


def _band_signal(company: str, check: BandCheck) -> AlertSignal:
    state = BandState(check.state)
    scale = f"{check.currency} {check.scale}"
    words = state.value.replace("_", " ")
    return AlertSignal(
        event_id=derived_id(check.forecast_event_id, check.guidance_event_id, "band"),
        company=company,
        producer=PRODUCER,
        kind=AlertKind.BAND_CHECK,
        period=check.period,
        subject=check.metric,
        severity=BAND_SEVERITY[state],
        state=state.value,
        summary=(
            f"{company} {check.metric} {check.period} is {words}: forecast {check.point:,.1f} "
            f"(80% {check.lo80:,.1f}–{check.hi80:,.1f}) "
            f"vs guidance {check.low:,.1f}–{check.high:,.1f} "
            f"{scale}; P(below) {check.p_below:.0%}, P(inside) {check.p_inside:.0%}, "
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
    band = guidance.band()
    text = (
        f"{band[0] / Scale.MILLIONS.factor:,.1f}–{band[1] / Scale.MILLIONS.factor:,.1f} million"
        if band
        else "no range"
    )
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
            f"({text} {guidance.currency or ''})."
        ),
        details={"revision": revision, **asdict(guidance)},
    )


def _outcome_signals(
    company: str, guidance: GuidanceVersion, actual: Decimal, calls: list[BandCheck]
) -> list[AlertSignal]:
    bounds = guidance.band()
    assert bounds is not None
    millions = Scale.MILLIONS.factor
    low, high, value = (float(x / millions) for x in (bounds[0], bounds[1], actual))
    outcome = classify_outcome(actual=value, low=low, high=high)
    words = outcome.verdict.replace("_", " ")
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
        event_id=derived_id(guidance.event_id, "outcome", str(actual)),
        company=company,
        producer=PRODUCER,
        kind=AlertKind.OUTCOME,
        period=guidance.period,
        subject=guidance.metric,
        severity=Severity.WARNING if outcome.verdict == "miss" else Severity.INFO,
        state=outcome.verdict,
        summary=(
            f"{company} {guidance.metric} {guidance.period}: {words} — actual {value:,.1f} "
            f"vs guidance "
            f"{low:,.1f}–{high:,.1f} million ({outcome.vs_midpoint} midpoint, "
            f"{outcome.surprise_vs_mid_pct:+.1f}%); Guidepost made {len(calls)} call(s)."
        ),
        details={
            "actual": value,
            "low": low,
            "high": high,
            "verdict": outcome.verdict,
            "vs_midpoint": outcome.vs_midpoint,
            "surprise_vs_mid_pct": outcome.surprise_vs_mid_pct
            if math.isfinite(outcome.surprise_vs_mid_pct)
            else None,
            "scorecard": scorecard,  # type: ignore[dict-item]
        },
    )
    resolve_band = AlertSignal(
        event_id=derived_id(guidance.event_id, "band-settled", str(actual)),
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
