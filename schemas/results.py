"""`ResultsPublished`: one company's income statement for one fiscal period."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated, ClassVar

from pydantic import Field, ValidationInfo, model_validator

from schemas.base import Event, FiscalPeriod, StrictModel, check_known_at
from schemas.metrics import check_money_bounds, check_period_begun
from schemas.money import Currency, FiniteDecimal, Scale
from schemas.plausibility import check_whole_units, plausibility_of

LineName = Annotated[
    str,
    Field(
        pattern=r"^[a-z][a-z0-9_]{0,79}$",
        description="snake_case line name",
        examples=["financing_income"],
    ),
]
OptionalAmount = Annotated[
    FiniteDecimal | None,
    Field(default=None, description="In the statement's currency and scale."),
]

HEADLINE_FIELDS = (
    "total_net_revenue",
    "total_operating_costs",
    "income_from_operations",
    "income_before_tax",
    "income_tax_expense",
    "net_income",
    "net_loss_attributable_to_noncontrolling_interests",
    "net_income_attributable",
    "share_based_comp",
    "non_gaap_net_income",
    "non_gaap_income_from_operations",
    "non_gaap_net_income_attributable",
)


class StatementLine(StrictModel):
    """A breakdown line as printed; `parent` names the subtotal line it belongs to."""

    name: LineName
    amount: FiniteDecimal
    parent: LineName | None = None
    label: str | None = Field(default=None, max_length=200, description="The text as printed.")


class PerShareFigure(StrictModel):
    """A per-share or per-ADS figure, always in whole currency units."""

    name: LineName = Field(examples=["net_income_per_ads_diluted"])
    amount: FiniteDecimal
    currency: Currency


class ShareCount(StrictModel):
    name: LineName = Field(examples=["weighted_average_ads_diluted"])
    value: int = Field(ge=0)


class StatedRatio(StrictModel):
    """A ratio the release states, kept to check it against the figures."""

    name: LineName = Field(examples=["net_income_margin", "operating_margin"])
    percent: FiniteDecimal = Field(ge=-1000, le=1000)


class ConvenienceTranslation(StrictModel):
    """The release's convenience columns in another currency at one stated rate."""

    currency: Currency
    rate: FiniteDecimal = Field(gt=0, description="Units of the statement currency per unit.")
    figures: dict[LineName, FiniteDecimal] = Field(
        description="Headline or line names to amounts, same scale as the statement."
    )


class IncomeStatement(StrictModel):
    """Statement of operations for one period. Expenses are positive numbers; income tax
    expense too, so that income_before_tax - income_tax_expense = net_income."""

    period: FiscalPeriod
    period_end: date | None = None
    currency: Currency
    scale: Scale = Field(description="Scale of every amount except per-share figures.")
    revenue_lines: tuple[StatementLine, ...] = ()
    cost_lines: tuple[StatementLine, ...] = ()
    other_lines: tuple[StatementLine, ...] = Field(
        default=(), description="Non-operating lines between operations and pre-tax income."
    )
    total_net_revenue: OptionalAmount
    total_operating_costs: OptionalAmount
    income_from_operations: OptionalAmount
    income_before_tax: OptionalAmount
    income_tax_expense: OptionalAmount
    net_income: FiniteDecimal = Field(description="Consolidated net income (GAAP).")
    net_loss_attributable_to_noncontrolling_interests: OptionalAmount
    net_income_attributable: OptionalAmount
    share_based_comp: OptionalAmount
    non_gaap_net_income: OptionalAmount
    non_gaap_income_from_operations: OptionalAmount
    non_gaap_net_income_attributable: OptionalAmount
    per_share: tuple[PerShareFigure, ...] = ()
    share_counts: tuple[ShareCount, ...] = ()
    stated_ratios: tuple[StatedRatio, ...] = ()
    convenience: ConvenienceTranslation | None = None

    @model_validator(mode="after")
    def _lines_are_unique(self) -> IncomeStatement:
        for group in ("revenue_lines", "cost_lines", "other_lines"):
            keys = [(line.parent, line.name) for line in getattr(self, group)]
            if len(keys) != len(set(keys)):
                raise ValueError(f"{group}: a (parent, name) pair appears twice")
        return self

    @model_validator(mode="after")
    def _amounts_plausible(self) -> IncomeStatement:
        """Every amount within 1e18 whole units once scaled; registry metrics not negative
        where they cannot be (revenue)."""
        factor = self.scale.factor
        for name, amount in self.headlines().items():
            check_money_bounds(name, amount, factor, field=name)
        for group in ("revenue_lines", "cost_lines", "other_lines"):
            for index, line in enumerate(getattr(self, group)):
                check_whole_units(line.amount, factor, field=f"{group}.{index}.amount")
        if self.convenience is not None:
            for name, amount in self.convenience.figures.items():
                check_whole_units(amount, factor, field=f"convenience.figures.{name}")
        return self

    def headline(self, name: str) -> Decimal | None:
        value = getattr(self, name)
        return value if isinstance(value, Decimal) else None

    def headlines(self) -> dict[str, Decimal]:
        """Every headline figure present, by name."""
        return {
            name: value for name in HEADLINE_FIELDS if (value := self.headline(name)) is not None
        }


class ResultsPublished(Event):
    """A company published its results for a period (with comparatives when given)."""

    EVENT_TYPE: ClassVar[str] = "results_published"

    statement: IncomeStatement
    comparatives: tuple[IncomeStatement, ...] = Field(
        default=(), description="Prior periods as printed in the same release."
    )
    source: str | None = Field(default=None, max_length=500, examples=["Q1 2024 results release"])

    @model_validator(mode="after")
    def _comparatives_are_other_periods(self, info: ValidationInfo) -> ResultsPublished:
        periods = [self.statement.period, *(c.period for c in self.comparatives)]
        if len(periods) != len(set(periods)):
            raise ValueError("comparatives: each period may appear once, and not the current one")
        bounds = plausibility_of(info)
        check_known_at(self, bounds)
        check_period_begun(
            self.statement.period, self.occurred_at, bounds, field="statement.period"
        )
        for index, comparative in enumerate(self.comparatives):
            field = f"comparatives.{index}.period"
            check_period_begun(comparative.period, self.occurred_at, bounds, field=field)
        return self
