"""What the forecast worker says: its forecast and trend events, the alert signals it raises
(every one built by `signal`), and the dead letter of a quarantined refit."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from schemas.alerts import AlertKind, AlertSignal, Condition, Severity
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
from schemas.registry import metric_spec
from services.common.ids import derived_id
from services.forecast.assemble import MODEL_SCALE
from services.forecast.core.company import NET_INCOME, NON_GAAP, SBC

if TYPE_CHECKING:
    from pydantic import JsonValue

    from services.forecast.core import MetricForecast
    from services.forecast.core.identities import Derivation
    from services.forecast.trends import TrendResult

PRODUCER = "guidepost-forecast"
MOVE_THRESHOLD = 0.0005  # a driver whose effect moved by less than 0.05% of the point is noise


def signal(
    *,
    event_id: str,
    company: str,
    kind: AlertKind,
    period: str,
    subject: str,
    summary: str,
    condition: Condition = Condition.FIRING,
    severity: Severity = Severity.INFO,
    state: str | None = None,
    details: dict[str, JsonValue] | None = None,
    cause_event_id: str | None = None,
) -> AlertSignal:
    """Every alert signal of the forecast worker (its producer named once)."""
    return AlertSignal(
        event_id=event_id,
        company=company,
        producer=PRODUCER,
        kind=kind,
        period=period,
        subject=subject,
        condition=condition,
        severity=severity,
        state=state,
        summary=summary,
        details=details or {},
        cause_event_id=cause_event_id,
    )


# --------------------------------------------------------------------------- forecasts


def forecast_event(
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


def _money(value: float) -> Decimal:
    return Decimal(repr(round(value, 3)))


def _finite(value: float | None) -> float | None:
    if value is None or value != value or value in (float("inf"), float("-inf")):
        return None
    return max(value, 0.0)


# --------------------------------------------------------------------------- trends


def trend_event(company: str, result: TrendResult) -> TrendUpdated:
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


def trend_signals(
    trends: Sequence[TrendUpdated], earlier: dict[str, TrendUpdated]
) -> list[AlertSignal]:
    """What a refit's trends signal: earlier verdicts superseded, each verdict, each shift."""
    signals = superseded_trend_signals(trends, earlier)
    signals += [trend_signal(trend) for trend in trends]
    return signals + [s for trend in trends for s in change_point_signals(trend)]


def trend_signal(trend: TrendUpdated) -> AlertSignal:
    deteriorating = trend.verdict is TrendVerdict.DETERIORATING
    return signal(
        event_id=derived_id(trend.event_id, "signal"),
        company=trend.company,
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


def superseded_trend_signals(
    trends: Sequence[TrendUpdated], earlier: dict[str, TrendUpdated]
) -> list[AlertSignal]:
    """A trend verdict is an alert as of its last period; when a later period's verdict
    arrives, the earlier one is resolved (the new one fires again if it still holds)."""
    return [
        _superseded(trend, before)
        for trend in trends
        if (before := earlier.get(trend.metric)) is not None
        and before.last_period != trend.last_period
    ]


def _superseded(trend: TrendUpdated, before: TrendUpdated) -> AlertSignal:
    return signal(
        event_id=derived_id(before.event_id, "superseded", trend.last_period),
        company=trend.company,
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


def change_point_signals(trend: TrendUpdated) -> list[AlertSignal]:
    """One alert per detected shift in the level of a rate (its identity is the shift's period)."""
    worse_up = metric_spec(trend.metric).higher_is_worse
    return [
        signal(
            event_id=derived_id(trend.company, "change-point", trend.metric, point.period),
            company=trend.company,
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


# --------------------------------------------------------------------------- quarantine


def refit_letter(company: str, attempts: int, error: str, *, history_stream: str) -> DeadLetter:
    """The dead letter of a quarantined company's refit (`dlq replay` releases it)."""
    return DeadLetter(
        source_stream=history_stream,
        entry_id=f"refit:{company}",
        group="forecast",
        payload={"company": company},
        reason=FailureReason.REFIT_FAILED,
        error=f"refit failed {attempts} times: {error}"[:2_000],
        delivery_count=attempts,
        company=company,
    )


# The identity of a quarantine alert (with the quarter it was raised in): the operator's
# release resolves the alert it finds under it.
QUARANTINE_KIND = AlertKind.DATA_QUALITY
QUARANTINE_SUBJECT = "refit"


def quarantine_signal(company: str, attempts: int, error: str, letter_id: str) -> AlertSignal:
    return signal(
        event_id=derived_id(company, "quarantined", letter_id),
        company=company,
        kind=QUARANTINE_KIND,
        period=str(Quarter.containing(datetime.now(UTC).date())),
        subject=QUARANTINE_SUBJECT,
        severity=Severity.CRITICAL,
        state="quarantined",
        summary=(
            f"{company}'s forecasts are quarantined: the refit failed {attempts} time(s) "
            f"({error[:300]}). Fix or retract the offending fact (guidepost history retract), "
            "then replay the refit letter (guidepost dlq replay)."
        ),
        details={"attempts": attempts, "error": error[:2_000], "dead_letter_id": letter_id},
    )
