"""`GuidanceIssued`: the range a company told the market for a fiscal period."""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar

from pydantic import Field, ValidationInfo, field_validator, model_validator

from schemas.base import Event, FiscalPeriod, check_known_at, schema_version_field
from schemas.metrics import check_money_bounds, check_unit, validate_metric_name
from schemas.money import Currency, FiniteDecimal, Scale
from schemas.plausibility import plausibility_of
from schemas.registry import Basis, Unit, metric_spec


class GuidanceStatus(StrEnum):
    ISSUED = "issued"
    WITHDRAWN = "withdrawn"


class GuidanceIssued(Event):
    """Guidance as stated: an amount band ('net income between RMB1.17 and 1.23 billion for
    2024Q2'), a growth band on the prior year ('net income to grow 10% to 15% year over year'),
    or both. Growth alone may state one bound ('at least 10%'); the band is then derived from
    the prior year's recorded actual."""

    EVENT_TYPE: ClassVar[str] = "guidance_issued"
    SCHEMA_VERSION: ClassVar[int] = 2

    schema_version: int = schema_version_field(
        2, "guidance may be stated as year-on-year growth alone (no amount band)."
    )
    metric: str = Field(examples=["net_income", "non_gaap_net_income"])
    period: FiscalPeriod
    basis: Basis
    status: GuidanceStatus = GuidanceStatus.ISSUED
    low: FiniteDecimal | None = Field(default=None, examples=["1170"])
    high: FiniteDecimal | None = Field(default=None, examples=["1230"])
    unit: Unit = Unit.MONEY
    currency: Currency | None = Field(
        default=None, description="Required with an amount band of money; not needed for growth."
    )
    scale: Scale | None = None
    yoy_low_pct: FiniteDecimal | None = Field(
        default=None,
        ge=-100,
        le=10_000,
        description="Low bound of the stated growth on the same period a year earlier, percent.",
        examples=["10"],
    )
    yoy_high_pct: FiniteDecimal | None = Field(
        default=None,
        ge=-100,
        le=10_000,
        description="High bound of the stated growth on the same period a year earlier, percent.",
        examples=["15"],
    )
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
            self._check_stated_range()
        self._check_units()
        low, high = self.yoy_low_pct, self.yoy_high_pct
        if low is not None and high is not None and low > high:
            raise ValueError(f"yoy_low_pct: {low} exceeds yoy_high_pct {high}")
        return self

    @property
    def states_amounts(self) -> bool:
        return self.low is not None or self.high is not None

    @property
    def states_growth(self) -> bool:
        return self.yoy_low_pct is not None or self.yoy_high_pct is not None

    def _check_stated_range(self) -> None:
        if not (self.states_amounts or self.states_growth):
            raise ValueError(
                "low and high, or yoy_low_pct and/or yoy_high_pct: issued guidance states an "
                "amount band or a year-on-year growth (at least one)"
            )
        if not self.states_amounts:
            return
        if self.low is None or self.high is None:
            missing = "low" if self.low is None else "high"
            raise ValueError(
                f"{missing}: an amount band states both low and high (a one-sided statement is "
                "given as growth, yoy_low_pct or yoy_high_pct)"
            )
        if self.low > self.high:
            raise ValueError(f"low: {self.low} exceeds high {self.high}")
        factor = self.scale.factor if self.scale is not None else Scale.UNITS.factor
        check_money_bounds(self.metric, self.low, factor, field="low")
        check_money_bounds(self.metric, self.high, factor, field="high")

    def _check_units(self) -> None:
        names_no_amount = not self.states_amounts and self.currency is None and self.scale is None
        if names_no_amount:  # growth alone, or a withdrawal: the unit is all there is to check
            check_unit(self.metric, unit=self.unit, currency=None, scale=None, amounts=False)
            return
        check_unit(self.metric, unit=self.unit, currency=self.currency, scale=self.scale)
