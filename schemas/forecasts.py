"""Events the forecast worker publishes: forecasts and delinquency trends."""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar

from pydantic import AwareDatetime, Field, model_validator

from schemas.base import Event, FiscalPeriod, Period, StrictModel, schema_version_field
from schemas.money import Currency, FiniteDecimal, Scale
from schemas.registry import Basis


class ModelContribution(StrictModel):
    name: str = Field(examples=["local_linear_trend"])
    weight: float = Field(ge=0, le=1)
    mape: float | None = Field(default=None, ge=0, description="Out-of-sample, percent.")
    mase: float | None = Field(default=None, ge=0)
    n_backtest: int = Field(default=0, ge=0)


class DriverEffect(StrictModel):
    name: str = Field(examples=["loan_volume"])
    value: float | None = None
    effect: float = Field(description="Effect on the point forecast, in the forecast's scale.")


class DerivedInput(StrictModel):
    """A figure of the history the forecast used that no source reported: an accounting
    identity derived it from reported ones."""

    metric: str = Field(examples=["net_income"])
    period: Period
    value: FiniteDecimal = Field(description="In the forecast's currency and scale.")
    derived_from: str = Field(
        max_length=300,
        description="The identity and the periods it used.",
        examples=["net_income = non_gaap_net_income - share_based_comp (2024Q1)"],
    )


class QuantilePoint(StrictModel):
    probability: float = Field(gt=0, lt=1)
    value: FiniteDecimal


class ForecastUpdated(Event):
    """A calibrated predictive distribution for one metric of one period."""

    EVENT_TYPE: ClassVar[str] = "forecast_updated"
    SCHEMA_VERSION: ClassVar[int] = 2

    schema_version: int = schema_version_field(
        2, "derived_inputs lists the figures accounting identities filled in its history."
    )
    metric: str
    period: FiscalPeriod
    basis: Basis
    currency: Currency
    scale: Scale
    point: FiniteDecimal
    lo80: FiniteDecimal
    hi80: FiniteDecimal
    lo95: FiniteDecimal
    hi95: FiniteDecimal
    quantiles: tuple[QuantilePoint, ...] = Field(min_length=3)
    models: tuple[ModelContribution, ...] = ()
    drivers: tuple[DriverEffect, ...] = ()
    previous_point: FiniteDecimal | None = Field(
        default=None, description="The point of the last forecast of this metric and period."
    )
    moved_by: tuple[DriverEffect, ...] = Field(
        default=(),
        description="Why the point moved since the last forecast: each driver's change in effect "
        "(value is its value now), and 'other' for new actuals and re-weighted models.",
    )
    derived_inputs: tuple[DerivedInput, ...] = Field(
        default=(),
        description="Figures of this metric, its components and drivers that no source "
        "reported but an accounting identity derived (e.g. net income from non-GAAP net "
        "income less share-based compensation).",
    )
    n_obs: int = Field(ge=0)
    method: str = Field(max_length=200)
    as_of: AwareDatetime = Field(description="The latest knowledge time of the inputs used.")
    inputs_digest: str = Field(description="Digest of the inputs; equal digests, equal forecast.")

    @model_validator(mode="after")
    def _intervals_nest(self) -> ForecastUpdated:
        if not (self.lo95 <= self.lo80 <= self.point <= self.hi80 <= self.hi95):
            raise ValueError("lo95 <= lo80 <= point <= hi80 <= hi95 must hold")
        probabilities = [q.probability for q in self.quantiles]
        if probabilities != sorted(probabilities):
            raise ValueError("quantiles: probabilities must increase")
        return self

    def quantile_pairs(self) -> tuple[tuple[float, float], ...]:
        return tuple((q.probability, float(q.value)) for q in self.quantiles)


class TrendVerdict(StrEnum):
    IMPROVING = "improving"
    STABLE = "stable"
    DETERIORATING = "deteriorating"
    INSUFFICIENT_DATA = "insufficient_data"


class ChangePointFound(StrictModel):
    period: Period
    direction: str = Field(pattern=r"^(up|down)$")
    shift_pct_points: float


class TrendUpdated(Event):
    """The trend of one delinquency or collection rate (percent, in percentage points)."""

    EVENT_TYPE: ClassVar[str] = "trend_updated"

    metric: str
    last_period: Period
    n_obs: int = Field(ge=0)
    level_pct: float
    slope_pct_points: float = Field(description="Per period of the series' frequency.")
    slope_lo: float
    slope_hi: float
    mann_kendall_tau: float = Field(ge=-1, le=1)
    mann_kendall_p: float = Field(ge=0, le=1)
    change_points: tuple[ChangePointFound, ...] = ()
    verdict: TrendVerdict
    confidence: float = Field(ge=0, le=1)
    next_period: Period
    next_forecast_pct: float
    next_lo_pct: float
    next_hi_pct: float
