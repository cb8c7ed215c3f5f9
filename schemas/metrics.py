"""`MetricReported`: one operational or financial metric value for one period."""

from __future__ import annotations

from datetime import UTC, datetime, time
from decimal import Decimal
from functools import lru_cache
from typing import ClassVar

from pydantic import Field, ValidationInfo, field_validator, model_validator

from schemas.base import Event, Period, check_known_at
from schemas.money import Currency, FiniteDecimal, Scale
from schemas.periods import period_start
from schemas.plausibility import Plausibility, check_whole_units, plausibility_of
from schemas.registry import METRICS, Unit, UnknownMetricError, metric_spec


def validate_metric_name(name: str) -> str:
    try:
        metric_spec(name)
    except UnknownMetricError as error:
        raise ValueError(error.args[0]) from None
    return name


class MetricReported(Event):
    """A metric value at its native frequency (day, month or quarter)."""

    EVENT_TYPE: ClassVar[str] = "metric_reported"

    metric: str = Field(description="A name from the metric registry.", examples=sorted(METRICS))
    period: Period
    value: FiniteDecimal = Field(description="In `unit`; money also names currency and scale.")
    unit: Unit
    currency: Currency | None = None
    scale: Scale | None = None
    source: str | None = Field(default=None, max_length=500)

    _check_metric = field_validator("metric")(validate_metric_name)

    @model_validator(mode="after")
    def _unit_matches_registry(self, info: ValidationInfo) -> MetricReported:
        check_unit(self.metric, unit=self.unit, currency=self.currency, scale=self.scale)
        check_plausible(self.metric, float(self.value))
        if self.scale is not None:
            check_whole_units(self.value, self.scale.factor, field="value")
        bounds = plausibility_of(info)
        check_known_at(self, bounds)
        check_period_begun(self.period, self.occurred_at, bounds)
        return self


def check_unit(
    metric: str,
    *,
    unit: Unit,
    currency: str | None,
    scale: Scale | None,
    amounts: bool = True,
) -> None:
    """The unit is the registry's; money amounts name currency and scale (`amounts=False`: the
    statement names no amount, so none is needed)."""
    spec = metric_spec(metric)
    if unit != spec.unit:
        raise ValueError(f"unit: {metric} is measured in {spec.unit.value}, not {unit.value}")
    if unit is Unit.MONEY and amounts and (currency is None or scale is None):
        raise ValueError("currency and scale: required for a money metric")
    if unit is not Unit.MONEY and (currency is not None or scale is not None):
        raise ValueError(f"currency and scale: not allowed for a {unit.value} metric")


def check_plausible(metric: str, value: float, *, field: str = "value") -> None:
    spec = metric_spec(metric)
    if spec.plausible_min is not None and value < spec.plausible_min:
        raise ValueError(
            f"{field}: {metric} must be at least {spec.plausible_min:g}, got {value:g}"
        )
    if spec.plausible_max is not None and value > spec.plausible_max:
        raise ValueError(f"{field}: {metric} must be at most {spec.plausible_max:g}, got {value:g}")


def check_period_begun(
    period: str, occurred_at: datetime, bounds: Plausibility, *, field: str = "period"
) -> None:
    """A figure of a period cannot be known before the period begins (a results release or a
    metric for a later period would quietly move every forecast's target there)."""
    if occurred_at + bounds.occurred_at_tolerance < period_start_utc(period):
        raise ValueError(
            f"{field}: {period} had not begun when the event says it was known "
            f"({occurred_at.date().isoformat()})"
        )


@lru_cache(maxsize=8192)  # validated on every event; busy streams repeat a few periods
def period_start_utc(period: str) -> datetime:
    return datetime.combine(period_start(period), time(), tzinfo=UTC)


def check_money_bounds(metric: str, amount: Decimal, factor: Decimal, *, field: str) -> None:
    """A registry metric's amount: not negative where it cannot be, within 1e18 whole units."""
    check_whole_units(amount, factor, field=field)
    if metric in METRICS:
        check_plausible(metric, float(amount), field=field)
