"""`GuidanceIssued`: the range a company told the market for a fiscal period."""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar

from pydantic import Field, ValidationInfo, field_validator, model_validator

from schemas.base import Event, FiscalPeriod, check_known_at
from schemas.metrics import check_money_bounds, check_unit, validate_metric_name
from schemas.money import Currency, FiniteDecimal, Scale
from schemas.plausibility import plausibility_of
from schemas.registry import Basis, Unit, metric_spec


class GuidanceStatus(StrEnum):
    ISSUED = "issued"
    WITHDRAWN = "withdrawn"


class GuidanceIssued(Event):
    """Guidance as stated: 'net income between RMB1.17 and 1.23 billion for 2024Q2'."""

    EVENT_TYPE: ClassVar[str] = "guidance_issued"

    metric: str = Field(examples=["net_income", "non_gaap_net_income"])
    period: FiscalPeriod
    basis: Basis
    status: GuidanceStatus = GuidanceStatus.ISSUED
    low: FiniteDecimal | None = Field(default=None, examples=["1170"])
    high: FiniteDecimal | None = Field(default=None, examples=["1230"])
    unit: Unit = Unit.MONEY
    currency: Currency | None = None
    scale: Scale | None = None
    yoy_low_pct: FiniteDecimal | None = Field(default=None, ge=-100, le=10_000)
    yoy_high_pct: FiniteDecimal | None = Field(default=None, ge=-100, le=10_000)
    issued_in_period: FiscalPeriod | None = Field(
        default=None, description="The period whose results release stated this guidance."
    )
    source: str | None = Field(default=None, max_length=500)

    _check_metric = field_validator("metric")(validate_metric_name)

    @model_validator(mode="after")
    def _consistent(self, info: ValidationInfo) -> GuidanceIssued:
        check_known_at(self, plausibility_of(info))
        spec = metric_spec(self.metric)
        if spec.basis is not Basis.OPERATIONAL and self.basis is not spec.basis:
            raise ValueError(
                f"basis: {self.metric} is a {spec.basis.value} metric, not {self.basis.value}"
            )
        if self.status is GuidanceStatus.ISSUED:
            self._check_band()
        check_unit(self.metric, unit=self.unit, currency=self.currency, scale=self.scale)
        if (self.yoy_low_pct is None) != (self.yoy_high_pct is None):
            raise ValueError("yoy_low_pct and yoy_high_pct: give both or neither")
        low, high = self.yoy_low_pct, self.yoy_high_pct
        if low is not None and high is not None and low > high:
            raise ValueError("yoy_low_pct: must not exceed yoy_high_pct")
        return self

    def _check_band(self) -> None:
        if self.low is None or self.high is None:
            raise ValueError("low and high: required when status is 'issued'")
        if self.low > self.high:
            raise ValueError(f"low: {self.low} exceeds high {self.high}")
        factor = self.scale.factor if self.scale is not None else Scale.UNITS.factor
        check_money_bounds(self.metric, self.low, factor, field="low")
        check_money_bounds(self.metric, self.high, factor, field="high")
