"""The forecast worker: history changes mark a company dirty; a refit loop coalesces bursts.

Marking is the durable effect of a `HistoryUpdated` (so it is acknowledged at once); the loop
refits each dirty company after a quiet window, publishes `ForecastUpdated` and `TrendUpdated`,
and clears the mark only if no new change arrived meanwhile. A crash mid-refit leaves the mark,
so another worker refits it: nothing is lost, and identical inputs give identical event ids.

A refit is incremental when it can be: each company's compact fitted state (the core's
`Fitted`, no history) stays in a bounded LRU, and a new observation runs the candidates with
their fixed parameters (`update`). The state is fitted afresh when missing (a new company, an
evicted one, another worker's), when older than `full_refit_s`, or when `update` itself decides
enough new quarters arrived. The state is a cache: losing it costs time, never correctness.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import json
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

import pandas as pd
import redis.asyncio as aioredis

from schemas.alerts import AlertKind, AlertSignal, Condition, Severity
from schemas.base import Event
from schemas.deadletter import DeadLetter, FailureReason
from schemas.forecasts import (
    ChangePointFound,
    DerivedInput,
    DriverEffect,
    ForecastUpdated,
    ModelContribution,
    QuantilePoint,
    TrendUpdated,
    TrendVerdict,
)
from schemas.periods import QUARTER_PATTERN, Quarter
from schemas.registry import DELINQUENCY_METRICS, Unit, metric_spec
from schemas.streams import Streams
from services.common.health import Backoff
from services.common.histories.facts import FactVersion, RedisHistoryStore, latest_as_of
from services.common.histories.guidance import GuidanceVersion, RedisGuidanceStore
from services.common.ids import derived_id
from services.common.metrics import NO_METRICS, FitMetrics
from services.common.streams import dead_letter, publish
from services.common.wire import as_text
from services.forecast.assemble import (
    MODEL_SCALE,
    HistorySpanError,
    QuarterlyHistory,
    assemble,
    observations_of,
)
from services.forecast.core import Fitted, ForecastSpec, MetricForecast, fit, forecast, update
from services.forecast.core.company import (
    DEFAULT_EVIDENCE,
    NET_INCOME,
    NON_GAAP,
    SBC,
    NonGaapFits,
    implied_sbc,
    non_gaap_forecast,
    past_pairs,
)
from services.forecast.core.data import derive_yoy_bands
from services.forecast.core.data import quarter as period_of
from services.forecast.core.guided import Evidence, Track, company_track, guide, shared_evidence
from services.forecast.core.identities import Derivation
from services.forecast.ledger import RefitLedger
from services.forecast.trends import TrendResult, TrendSpec, fit_trend

log = logging.getLogger(__name__)
PRODUCER = "guidepost-forecast"
EVIDENCE_REFRESH_S = 30.0  # how stale the other companies' tracks may be
CLEAR_IF_UNCHANGED = """
if redis.call('HGET', KEYS[2], ARGV[1]) == ARGV[2] then
  redis.call('ZREM', KEYS[1], ARGV[1]); redis.call('HDEL', KEYS[2], ARGV[1]); return 1
end
return 0
"""

DEFAULT_MAX_STATES = 10_000  # companies whose fitted state a worker keeps (≈ 50 kB each)
DEFAULT_FULL_REFIT_S = 6 * 3600.0
DEFAULT_REFIT_TIMEOUT_S = 300.0
DEFAULT_MAX_HISTORY_QUARTERS = 160  # 40 years: a refit's memory and time grow with the span


@dataclass
class CompanyState:
    """What a worker remembers of one company between refits."""

    fits: dict[str, Fitted] = field(default_factory=dict)
    fitted_at: float = field(default_factory=time.monotonic)
    trends: dict[str, tuple[str, TrendUpdated | None]] = field(default_factory=dict)


class FittedStates:
    """A bounded LRU of company states; the least recently refitted company is evicted."""

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._states: OrderedDict[str, CompanyState] = OrderedDict()

    def __len__(self) -> int:
        return len(self._states)

    def take(self, company: str, *, max_age_s: float) -> CompanyState | None:
        """The company's state if fresh enough (a stale one is dropped)."""
        state = self._states.pop(company, None)
        if state is not None and time.monotonic() - state.fitted_at > max_age_s:
            return None
        return state

    def put(self, company: str, state: CompanyState) -> None:
        self._states[company] = state
        self._states.move_to_end(company)
        while len(self._states) > self._capacity:
            self._states.popitem(last=False)


class ForecastService:
    def __init__(
        self,
        *,
        redis: aioredis.Redis,
        streams: Streams,
        history: RedisHistoryStore,
        guidance: RedisGuidanceStore,
        coalesce_ms: int,
        max_length: int,
        spec: ForecastSpec = ForecastSpec(),
        max_failures: int = 3,
        max_states: int = DEFAULT_MAX_STATES,
        full_refit_s: float = DEFAULT_FULL_REFIT_S,
        refit_timeout_s: float = DEFAULT_REFIT_TIMEOUT_S,
        max_history_quarters: int = DEFAULT_MAX_HISTORY_QUARTERS,
        metrics: FitMetrics = NO_METRICS,
        evidence: Evidence = DEFAULT_EVIDENCE,
    ) -> None:
        self._metrics = metrics
        self._evidence = evidence
        self._tracks: dict[str, Track] = {}
        self._tracks_read_at = -math.inf
        self._max_failures = max_failures
        self._refit_timeout_s = refit_timeout_s
        self._max_history_quarters = max_history_quarters
        self.states = FittedStates(max_states)
        self._full_refit_s = full_refit_s
        self.fits = {"full": 0, "incremental": 0}  # metric fits of each kind, for benchmarks
        self._wake = asyncio.Event()
        self._next_check = 0.0  # when the refit loop looks at the dirty set next (epoch s)
        self._redis = redis
        self._streams = streams
        self._history = history
        self._guidance = guidance
        self._coalesce_ms = coalesce_ms
        self._max_length = max_length
        self._spec = spec
        self._clear = redis.register_script(CLEAR_IF_UNCHANGED)
        self.ledger = RefitLedger(redis, streams)
        self.loop_health = Backoff("the refit loop", logger=log)

    @property
    def dirty_key(self) -> str:
        return self.ledger.dirty_key

    @property
    def generation_key(self) -> str:
        return self.ledger.generation_key

    async def mark_all(self, events: Sequence[Event]) -> list[BaseException | None]:
        """Durably note that each event's company needs a refit (first mark sets the clock)."""
        async with self._redis.pipeline(transaction=True) as pipe:
            for event in events:
                pipe.zadd(self.dirty_key, {event.company: time.time()}, nx=True)
                pipe.hincrby(self.generation_key, event.company, 1)
            await pipe.execute()
        if time.time() + self._coalesce_ms / 1000 < self._next_check:
            self._wake.set()  # due before the loop would look again; else waking is wasted work
        return [None] * len(events)

    async def pending(self) -> int:
        return await self.ledger.pending()

    async def run(self, stop: asyncio.Event, *, poll_s: float = 0.05) -> None:
        """Refit due companies until `stop`. Failing (Redis away, say), the loop backs off
        exponentially and logs once when it starts failing and once when it recovers."""
        while not stop.is_set():
            try:
                due = await self.refit_due()
                if not due:
                    await self._sleep_until_due(stop, poll_s)
            except Exception as error:  # the loop must outlive it
                await _wait(stop, self.loop_health.failed(error))
            else:
                self.loop_health.succeeded()

    async def _sleep_until_due(self, stop: asyncio.Event, poll_s: float) -> None:
        """Until the earliest mark is due, a new mark arrives, or `poll_s` (other workers'
        marks, and `stop`, are noticed at least that often)."""
        earliest = await self._redis.zrange(self.dirty_key, 0, 0, withscores=True)
        delay = poll_s
        if earliest:
            due_at = float(earliest[0][1]) + self._coalesce_ms / 1000
            delay = min(poll_s, max(due_at - time.time(), 0.0))
        if stop.is_set() or delay <= 0:
            return
        self._wake.clear()
        self._next_check = time.time() + delay
        await _wait(self._wake, delay)
        self._next_check = 0.0  # checking now: marks arriving meanwhile need no wake

    async def refit_due(self) -> int:
        due_before = time.time() - self._coalesce_ms / 1000
        due = await self._redis.zrangebyscore(self.dirty_key, "-inf", due_before, start=0, num=16)
        companies = [as_text(member) for member in due]
        quarantined = await self.ledger.quarantined(companies)
        for company in companies:
            if company in quarantined:  # new facts wait for the operator's release
                await self.ledger.drop_mark(company)
                continue
            generation = await self._redis.hget(self.generation_key, company)  # type: ignore[misc]
            if not await self._refit_guarded(company):
                continue
            keys = [self.dirty_key, self.generation_key]
            await self._clear(keys=keys, args=[company, as_text(generation or b"")])
        return len(due)

    async def _refit_guarded(self, company: str) -> bool:
        """Refit, the attempt counted before it runs (a crash counts too); after
        `max_failures` attempts the company is quarantined with an alert and a dead letter.
        True when the company's mark may be cleared."""
        attempts = await self.ledger.count_attempt(company)
        if attempts > self._max_failures:  # earlier attempts never came back (killed)
            error = await self.ledger.last_error(company) or "the worker stopped during the refit"
            await self._quarantine(company, attempts - 1, error)
            return True
        try:
            await asyncio.wait_for(self.refit(company), timeout=self._refit_timeout_s)
        except Exception as failure:
            error = _describe(failure, self._refit_timeout_s)
            log.error(
                "refit of %s failed (attempt %d of %d): %s",
                company,
                attempts,
                self._max_failures,
                error,
                extra={"company": company},
            )
            if attempts >= self._max_failures or isinstance(failure, HistorySpanError):
                await self._quarantine(company, attempts, error)  # retrying cannot help
                return True
            await self.ledger.failed(company, error, retry_in_s=min(60.0, 0.5 * 2**attempts))
            return False
        await self.ledger.succeeded(company)
        return True

    async def _quarantine(self, company: str, attempts: int, error: str) -> None:
        if not await self.ledger.quarantine(company, attempts=attempts, error=error):
            return
        log.error(
            "quarantined %s after %d failed refit attempt(s): %s; the other companies go on",
            company,
            attempts,
            error,
            extra={"company": company},
        )
        letter = DeadLetter(
            source_stream=self._streams.history,
            entry_id=f"refit:{company}",
            group="forecast",
            payload={"company": company},
            reason=FailureReason.REFIT_FAILED,
            error=f"refit failed {attempts} times: {error}"[:2_000],
            delivery_count=attempts,
            company=company,
        )
        await dead_letter(
            self._redis, self._streams.dead_letters, letter, max_length=self._max_length
        )
        await publish(
            self._redis,
            self._streams.signals,
            [_quarantine_signal(company, attempts, error, letter.dead_letter_id)],
            max_length=self._max_length,
            streams=self._streams,
        )

    async def refit(self, company: str) -> None:
        versions = latest_as_of(await self._history.versions(company), None)
        guidance = await self._guidance.all(company)
        currency = _currency(versions)
        history = assemble(observations_of(versions), max_quarters=self._max_history_quarters)
        previous = await self._stored_forecasts(company)
        earlier_trends = await self._stored_trends(company)
        evidence = await self._shared_evidence(company)
        # numerical work off the event loop, so the process's other consumers keep flowing
        fresh, trends, track = await asyncio.to_thread(
            self._compute, company, history, guidance, currency, versions, evidence
        )
        forecasts = [explain_move(f, previous.get((f.metric, f.period))) for f in fresh]
        stored = [f"{metric}|{period}" for metric, period in previous]
        await self._save(company, forecasts, trends, stored, track)
        signals = _superseded_trend_signals(trends, earlier_trends)
        signals += [_trend_signal(trend) for trend in trends]
        signals += [signal for trend in trends for signal in _change_point_signals(trend)]
        for stream, events in (
            (self._streams.forecasts, forecasts),
            (self._streams.trends, trends),
            (self._streams.signals, signals),
        ):
            await publish(
                self._redis, stream, events, max_length=self._max_length, streams=self._streams
            )

    async def _stored_trends(self, company: str) -> dict[str, TrendUpdated]:
        raw = await self._redis.hgetall(self._streams.company_key(company, "trends"))  # type: ignore[misc]
        return {
            as_text(metric): TrendUpdated.model_validate_json(blob) for metric, blob in raw.items()
        }

    async def _stored_forecasts(self, company: str) -> dict[tuple[str, str], ForecastUpdated]:
        raw = await self._redis.hgetall(self._streams.company_key(company, "forecasts"))  # type: ignore[misc]
        stored = [ForecastUpdated.model_validate_json(blob) for blob in raw.values()]
        return {(f.metric, f.period): f for f in stored}

    async def _shared_evidence(self, company: str) -> Evidence:
        """The evidence other companies' tracks give (read at most every
        ``EVIDENCE_REFRESH_S``); the published prior while none has a track."""
        now = time.monotonic()
        if now - self._tracks_read_at > EVIDENCE_REFRESH_S:
            raw = await self._redis.hgetall(self._streams.key("{forecast}", "evidence"))
            self._tracks = {as_text(k): Track.from_json(v) for k, v in raw.items()}
            self._tracks_read_at = now
        if not self._tracks:
            return self._evidence
        return shared_evidence(self._tracks, exclude=company)

    def _compute(
        self,
        company: str,
        history: QuarterlyHistory,
        guidance: list[GuidanceVersion],
        currency: str,
        versions: list[FactVersion],
        evidence: Evidence,
    ) -> tuple[list[ForecastUpdated], list[TrendUpdated], Track | None]:
        forecasts, track = self.forecasts(company, history, guidance, currency, versions, evidence)
        trends = [t for t in (self.trend(company, history, m) for m in DELINQUENCY_METRICS) if t]
        return forecasts, trends, track

    def forecasts(
        self,
        company: str,
        history: QuarterlyHistory,
        guidance: list[GuidanceVersion],
        currency: str,
        versions: list[FactVersion],
        evidence: Evidence,
    ) -> tuple[list[ForecastUpdated], Track | None]:
        """The company's forecast events, and its track for the others' evidence (None
        without guidance)."""
        target = next_target(history.frame)
        if target is None:
            return [], None
        guidance_frame = derive_yoy_bands(guidance_table(guidance), history.frame)
        results, track = self.forecast_metrics(
            company, history.frame, target, guidance_frame, evidence
        )
        as_of = max(v.known_at for v in versions)
        digest = _digest(history.frame, guidance_frame)
        events = [
            _forecast_event(
                company,
                result,
                currency=currency,
                as_of=as_of,
                digest=digest,
                derived=derived_inputs(result, history.derived),
            )
            for result in results.values()
            if metric_spec(result.metric).unit is Unit.MONEY
        ]
        return events, track

    @staticmethod
    def settled_fields(forecasts: list[ForecastUpdated], stored: list[str]) -> list[str]:
        """Stored forecasts of quarters before the open target: their actuals are in."""
        targets = [Quarter.parse(f.period) for f in forecasts]
        if not targets:
            return []
        first_open = min(targets)
        return [name for name in stored if Quarter.parse(name.split("|")[1]) < first_open]

    def forecast_metrics(
        self,
        company: str,
        frame: pd.DataFrame,
        target: str,
        guidance: pd.DataFrame,
        evidence: Evidence = DEFAULT_EVIDENCE,
    ) -> tuple[dict[tuple[str, str], MetricForecast], Track | None]:
        """What `core.forecast_company` computes, from the company's kept state when fresh, for
        the target quarter and for the rest of any fiscal year with open guidance."""
        started = time.perf_counter()
        state = self.states.take(company, max_age_s=self._full_refit_s) or CompanyState()
        fits: dict[str, Fitted] = {}
        for metric in _direct_metrics(frame, target, guidance):
            if _enough(frame, metric, self._spec):
                fits[metric] = self._fitted(state, frame, metric, guidance)
        non_gaap = self._non_gaap(state, fits, frame, guidance)
        results: dict[tuple[str, str], MetricForecast] = {}
        for quarter in _open_quarters(target, guidance):
            results.update(_forecasts_for(quarter, fits, non_gaap))
        others = {m: f for m, f in fits.items() if m not in (NET_INCOME, SBC, NON_GAAP)}
        pairs = functools.cache(lambda: past_pairs(non_gaap, others))
        results = guide(results, pairs, frame, guidance, evidence)
        track = None
        if not guidance.empty:
            track = company_track(pairs(), frame, guidance, evidence, before=period_of(target))
        if not state.fits:
            state.fitted_at = time.monotonic()
        state.fits = fits
        self.states.put(company, state)
        self._metrics.observe_fit(time.perf_counter() - started)
        return results, track

    def _non_gaap(
        self,
        state: CompanyState,
        fits: dict[str, Fitted],
        frame: pd.DataFrame,
        guidance: pd.DataFrame,
    ) -> NonGaapFits:
        """The fits the core's non-GAAP choice needs (reconciled vs direct, by past skill)."""
        with_sbc = implied_sbc(frame)
        if _enough(with_sbc, SBC, self._spec):
            fits[SBC] = self._fitted(state, with_sbc, SBC, None)
        if _enough(frame, NON_GAAP, self._spec):
            fits[NON_GAAP] = self._fitted(state, frame, NON_GAAP, guidance)
        return NonGaapFits(fits.get(NET_INCOME), fits.get(SBC), fits.get(NON_GAAP))

    def _fitted(
        self,
        state: CompanyState,
        frame: pd.DataFrame,
        metric: str,
        guidance: pd.DataFrame | None,
    ) -> Fitted:
        previous = state.fits.get(metric)
        if previous is not None:
            try:
                updated = update(previous, frame, guidance=guidance)
            except ValueError:
                log.info("update of %s failed; fitting afresh", metric, exc_info=True)
            else:
                self.fits["incremental"] += 1
                return updated
        self.fits["full"] += 1
        return fit(frame, metric=metric, spec=self._spec, guidance=guidance)

    def trend(self, company: str, history: QuarterlyHistory, metric: str) -> TrendUpdated | None:
        if metric not in history.frame.columns or history.frame[metric].notna().sum() < 2:
            return None
        series = history.frame[metric]
        key = series.to_json(double_precision=10)
        state = self.states.take(company, max_age_s=float("inf")) or CompanyState(fitted_at=0.0)
        cached = state.trends.get(metric)
        if cached is None or cached[0] != key:
            cached = (key, self._fit_trend(company, series, metric))
            state.trends[metric] = cached
        self.states.put(company, state)
        return cached[1]

    def _fit_trend(self, company: str, series: pd.Series, metric: str) -> TrendUpdated | None:
        spec = TrendSpec(higher_is_worse=metric_spec(metric).higher_is_worse)
        result = fit_trend(series, metric=metric, spec=spec)
        if result.verdict == TrendVerdict.INSUFFICIENT_DATA.value:
            return None  # too few points for a trend; nothing to publish yet
        return _trend_event(company, result)

    async def _save(
        self,
        company: str,
        forecasts: list[ForecastUpdated],
        trends: list[TrendUpdated],
        stored: list[str],
        track: Track | None = None,
    ) -> None:
        """`stored`: the fields of the forecasts hash read at the start of this refit;
        `track`: the company's landings and calls, kept for the other companies' evidence."""
        key = self._streams.company_key(company, "forecasts")
        settled = self.settled_fields(forecasts, stored)
        async with self._redis.pipeline(transaction=True) as pipe:
            if settled:
                pipe.hdel(key, *settled)  # the actuals are in; the stream keeps what was said
            for forecast in forecasts:
                pipe.hset(key, f"{forecast.metric}|{forecast.period}", forecast.model_dump_json())
            for trend in trends:
                pipe.hset(
                    self._streams.company_key(company, "trends"),
                    trend.metric,
                    trend.model_dump_json(),
                )
            await pipe.execute()
        if track is not None:  # its own slot: outside the company's transaction
            await self._redis.hset(
                self._streams.key("{forecast}", "evidence"), company, track.to_json()
            )


def _direct_metrics(frame: pd.DataFrame, target: str, guidance: pd.DataFrame) -> list[str]:
    """Net income and every metric guided for the target quarter or its fiscal year
    (non-GAAP comes after)."""
    guided: set[str] = set()
    if not guidance.empty:
        periods = {target, f"FY{Quarter.parse(target).year}"}
        guided = set(guidance.loc[guidance["for_quarter"].isin(periods), "metric"])
    ordered = [NET_INCOME, *sorted(guided - {NET_INCOME, NON_GAAP})]
    return [m for m in ordered if m in frame.columns]


def _open_quarters(target: str, guidance: pd.DataFrame) -> list[str]:
    """The target quarter, and the later quarters of fiscal years with open guidance."""
    quarters = {target}
    first = Quarter.parse(target)
    if not guidance.empty:
        for period in set(guidance["for_quarter"]):
            if str(period).startswith("FY") and int(str(period)[2:]) == first.year:
                quarters |= {str(Quarter(first.year, q)) for q in range(first.quarter, 5)}
    return sorted(quarters)


def _forecasts_for(
    quarter: str, fits: dict[str, Fitted], non_gaap: NonGaapFits
) -> dict[tuple[str, str], MetricForecast]:
    results = {
        (metric, quarter): forecast(fitted, target=quarter)
        for metric, fitted in fits.items()
        if metric not in (SBC, NON_GAAP)
    }
    combined = non_gaap_forecast(non_gaap, quarter, results.get((NET_INCOME, quarter)))
    if combined is not None:
        results[(NON_GAAP, quarter)] = combined
    return results


def _enough(frame: pd.DataFrame, metric: str, spec: ForecastSpec) -> bool:
    return metric in frame.columns and int(frame[metric].notna().sum()) >= spec.min_train


def next_target(frame: pd.DataFrame) -> str | None:
    """The quarter after the last one with reported net income (or any reported quarter)."""
    column = "net_income" if "net_income" in frame.columns else None
    observed = frame[column].dropna() if column else frame.dropna(how="all")
    if observed.empty:
        return None
    return str(Quarter.parse(str(observed.index[-1])).next())


def guidance_table(guidance: list[GuidanceVersion]) -> pd.DataFrame:
    """Guidance in the core's columns, money in millions (withdrawn statements left out; a
    statement of growth alone has NaN low and high until `derive_yoy_bands`)."""
    rows = [
        {
            "issued_in_quarter": v.issued_in_period or v.period,
            "for_quarter": v.period,
            "metric": v.metric,
            "low": _millions(v.low),
            "high": _millions(v.high),
            "yoy_low_pct": float(v.yoy_low_pct) if v.yoy_low_pct else float("nan"),
            "yoy_high_pct": float(v.yoy_high_pct) if v.yoy_high_pct else float("nan"),
        }
        for v in guidance
        if v.status == "issued" and (v.band() is not None or v.growth() is not None)
    ]
    columns = [
        "issued_in_quarter",
        "for_quarter",
        "metric",
        "low",
        "high",
        "yoy_low_pct",
        "yoy_high_pct",
    ]
    return pd.DataFrame(rows, columns=columns)


def _millions(value: str | None) -> float:
    return float(Decimal(value) / MODEL_SCALE.factor) if value is not None else float("nan")


def _currency(versions: list[FactVersion]) -> str:
    currencies = {v.currency for v in versions if v.currency}
    if len(currencies) > 1:
        raise ValueError(f"history mixes currencies {sorted(currencies)}; convert before ingest")
    return currencies.pop() if currencies else "CNY"


def _digest(frame: pd.DataFrame, guidance: pd.DataFrame) -> str:
    payload = frame.to_json(double_precision=10) + guidance.to_json(double_precision=10)
    return hashlib.sha256(payload.encode()).hexdigest()[:24]


def _money(value: float) -> Decimal:
    return Decimal(repr(round(value, 3)))


def derived_inputs(
    result: MetricForecast, derived: Sequence[Derivation]
) -> tuple[DerivedInput, ...]:
    """The identity-filled quarters of the forecast's metric, its components (non-GAAP is net
    income plus SBC) and its drivers, in the model's scale."""
    used = {result.metric, *(d.name for d in result.drivers)}
    if result.metric == NON_GAAP:
        used |= {NET_INCOME, SBC}
    return tuple(
        DerivedInput(
            metric=d.metric, period=d.period, value=_money(d.value), derived_from=d.text[:300]
        )
        for d in derived
        if d.metric in used and QUARTER_PATTERN.match(d.period)
    )


def _forecast_event(
    company: str,
    result: MetricForecast,
    *,
    currency: str,
    as_of: str,
    digest: str,
    derived: tuple[DerivedInput, ...] = (),
) -> ForecastUpdated:
    return ForecastUpdated(
        event_id=derived_id(company, "forecast", result.metric, result.target, digest),
        company=company,
        producer=PRODUCER,
        metric=result.metric,
        period=result.target,
        basis=metric_spec(result.metric).basis,
        currency=currency,
        scale=MODEL_SCALE,
        point=_money(result.point),
        lo80=_money(result.lo80),
        hi80=_money(result.hi80),
        lo95=_money(result.lo95),
        hi95=_money(result.hi95),
        quantiles=tuple(QuantilePoint(probability=p, value=_money(v)) for p, v in result.quantiles),
        models=tuple(
            ModelContribution(
                name=m.name,
                weight=min(max(m.weight, 0.0), 1.0),
                mape=_finite(m.mape),
                mase=_finite(m.mase),
                n_backtest=m.n,
            )
            for m in result.models
        ),
        drivers=tuple(
            DriverEffect(name=d.name, value=d.value, effect=d.effect) for d in result.drivers
        ),
        derived_inputs=derived,
        n_obs=result.n_obs,
        method=result.method[:200],
        as_of=datetime.strptime(as_of, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC),
        inputs_digest=digest,
    )


MOVE_THRESHOLD = 0.0005  # a driver whose effect moved by less than 0.05% of the point is noise


def explain_move(forecast: ForecastUpdated, previous: ForecastUpdated | None) -> ForecastUpdated:
    """The forecast with what moved it since `previous` (the same forecast if inputs are equal,
    so a replayed refit republishes an identical event)."""
    if previous is None:
        return forecast
    if previous.inputs_digest == forecast.inputs_digest:
        return previous
    before = {d.name: d.effect for d in previous.drivers}
    moved = [
        DriverEffect(name=d.name, value=d.value, effect=d.effect - before.get(d.name, 0.0))
        for d in forecast.drivers
    ]
    moved += [DriverEffect(name=name, value=None, effect=-effect) for name, effect in before.items()
              if name not in {d.name for d in forecast.drivers}]  # fmt: skip
    change = float(forecast.point - previous.point)
    floor = MOVE_THRESHOLD * abs(float(forecast.point))
    significant = [m for m in moved if abs(m.effect) > floor]
    other = change - sum(m.effect for m in moved)
    if abs(other) > floor:
        significant.append(DriverEffect(name="other", value=None, effect=other))
    return forecast.model_copy(
        update={"previous_point": previous.point, "moved_by": tuple(significant)}
    )


def _finite(value: float | None) -> float | None:
    if value is None or value != value or value in (float("inf"), float("-inf")):
        return None
    return max(value, 0.0)


def _trend_event(company: str, result: TrendResult) -> TrendUpdated:
    payload = json.dumps([result.last_period, result.level, result.slope, result.n_obs])
    return TrendUpdated(
        event_id=derived_id(company, "trend", result.metric, payload),
        company=company,
        producer=PRODUCER,
        metric=result.metric,
        last_period=result.last_period,
        n_obs=result.n_obs,
        level_pct=result.level,
        slope_pct_points=result.slope,
        slope_lo=result.slope_lo,
        slope_hi=result.slope_hi,
        mann_kendall_tau=result.mann_kendall_tau,
        mann_kendall_p=result.mann_kendall_p,
        change_points=tuple(
            ChangePointFound(period=c.period, direction=c.direction, shift_pct_points=c.shift)
            for c in result.change_points
        ),
        verdict=TrendVerdict(result.verdict),
        confidence=result.confidence,
        next_period=result.next_period,
        next_forecast_pct=result.next_forecast,
        next_lo_pct=result.next_lo,
        next_hi_pct=result.next_hi,
    )


def _trend_signal(trend: TrendUpdated) -> AlertSignal:
    deteriorating = trend.verdict is TrendVerdict.DETERIORATING
    return AlertSignal(
        event_id=derived_id(trend.event_id, "signal"),
        company=trend.company,
        producer=PRODUCER,
        kind=AlertKind.DELINQUENCY_TREND,
        period=trend.last_period,
        subject=trend.metric,
        condition=Condition.FIRING if deteriorating else Condition.CLEAR,
        severity=Severity.WARNING if deteriorating else Severity.INFO,
        state=trend.verdict.value,
        summary=(
            f"{trend.company} {trend.metric} is {trend.verdict.value} "
            f"(level {trend.level_pct:.2f}%, slope {trend.slope_pct_points:+.2f} pp per period, "
            f"Mann-Kendall p={trend.mann_kendall_p:.3f}, confidence {trend.confidence:.0%}); "
            f"next period {trend.next_forecast_pct:.2f}% "
            f"[{trend.next_lo_pct:.2f}, {trend.next_hi_pct:.2f}]."
        ),
        details={
            "level_pct": trend.level_pct,
            "slope_pct_points": trend.slope_pct_points,
            "slope_ci": [trend.slope_lo, trend.slope_hi],
            "mann_kendall_p": trend.mann_kendall_p,
            "confidence": trend.confidence,
            "change_points": [c.period for c in trend.change_points],
        },
        cause_event_id=trend.event_id,
    )


def _superseded_trend_signals(
    trends: list[TrendUpdated], earlier: dict[str, TrendUpdated]
) -> list[AlertSignal]:
    """A trend verdict is an alert as of its last period; when a later period's verdict
    arrives, the earlier one is resolved (the new one fires again if it still holds)."""
    cleared = []
    for trend in trends:
        before = earlier.get(trend.metric)
        if before is None or before.last_period == trend.last_period:
            continue
        cleared.append(
            AlertSignal(
                event_id=derived_id(before.event_id, "superseded", trend.last_period),
                company=trend.company,
                producer=PRODUCER,
                kind=AlertKind.DELINQUENCY_TREND,
                period=before.last_period,
                subject=trend.metric,
                condition=Condition.CLEAR,
                summary=(
                    f"{trend.company} {trend.metric} as of {before.last_period} is superseded "
                    f"by the trend as of {trend.last_period} ({trend.verdict.value})."
                ),
                cause_event_id=trend.event_id,
            )
        )
    return cleared


def _change_point_signals(trend: TrendUpdated) -> list[AlertSignal]:
    """One alert per detected shift in the level of a rate (its identity is the shift's period)."""
    worse_up = metric_spec(trend.metric).higher_is_worse
    return [
        AlertSignal(
            event_id=derived_id(trend.company, "change-point", trend.metric, point.period),
            company=trend.company,
            producer=PRODUCER,
            kind=AlertKind.CHANGE_POINT,
            period=point.period,
            subject=trend.metric,
            severity=Severity.WARNING if (point.direction == "up") == worse_up else Severity.INFO,
            state=point.direction,
            summary=(
                f"{trend.company} {trend.metric} shifted {point.direction} by "
                f"{abs(point.shift_pct_points):.2f} pp at {point.period} (CUSUM change point)."
            ),
            details={"shift_pct_points": point.shift_pct_points, "direction": point.direction},
            cause_event_id=trend.event_id,
        )
        for point in trend.change_points
    ]


def _describe(failure: BaseException, timeout_s: float) -> str:
    if isinstance(failure, TimeoutError):
        return f"TimeoutError: the refit took longer than {timeout_s:g}s"
    return f"{type(failure).__name__}: {failure}"


def _quarantine_signal(company: str, attempts: int, error: str, letter_id: str) -> AlertSignal:
    return AlertSignal(
        event_id=derived_id(company, "quarantined", letter_id),
        company=company,
        producer=PRODUCER,
        kind=AlertKind.DATA_QUALITY,
        period=str(Quarter.containing(datetime.now(UTC).date())),
        subject="refit",
        severity=Severity.CRITICAL,
        state="quarantined",
        summary=(
            f"{company}'s forecasts are quarantined: the refit failed {attempts} time(s) "
            f"({error[:300]}). Fix or retract the offending fact (guidepost history retract), "
            "then replay the refit letter (guidepost dlq replay)."
        ),
        details={"attempts": attempts, "error": error[:2_000], "dead_letter_id": letter_id},
    )


async def _wait(event: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), timeout=seconds)
