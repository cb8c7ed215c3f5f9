"""Cross-checks run before anything is published: the statement's identities, stated margins
and changes, the convenience translation, and prose against the tables.

Tolerances come from the printed precision: every printed figure may carry half a unit of its
last digit, so a sum of n printed terms may miss its printed total by (n + 1) half units.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, fields
from decimal import ROUND_CEILING, Decimal

from schemas.money import Scale
from services.extract.model import (
    ExchangeRate,
    Extraction,
    Figure,
    Kind,
    Origin,
    Role,
    Target,
)

STATEMENT_KINDS = frozenset(Kind) - {Kind.METRIC, Kind.GUIDANCE}
SheetKey = tuple[Origin, str, str | None]

# (rule, total, terms): total = sum(sign * term)
HEADLINE_IDENTITIES: tuple[tuple[str, str, tuple[tuple[int, str], ...]], ...] = (
    (
        "net revenue less operating costs is income from operations",
        "income_from_operations",
        ((1, "total_net_revenue"), (-1, "total_operating_costs")),
    ),
    (
        "pre-tax income less income tax is net income",
        "net_income",
        ((1, "income_before_tax"), (-1, "income_tax_expense")),
    ),
    (
        "net income plus the noncontrolling interests' loss is attributable net income",
        "net_income_attributable",
        ((1, "net_income"), (1, "net_loss_attributable_to_noncontrolling_interests")),
    ),
    (
        "net income plus share-based compensation is non-GAAP net income",
        "non_gaap_net_income",
        ((1, "net_income"), (1, "share_based_comp")),
    ),
    (
        "income from operations plus share-based compensation is its non-GAAP measure",
        "non_gaap_income_from_operations",
        ((1, "income_from_operations"), (1, "share_based_comp")),
    ),
    (
        "attributable net income plus share-based compensation is its non-GAAP measure",
        "non_gaap_net_income_attributable",
        ((1, "net_income_attributable"), (1, "share_based_comp")),
    ),
)
MARGINS = {
    "net_income_margin": "net_income",
    "non_gaap_net_income_margin": "non_gaap_net_income",
    "operating_margin": "income_from_operations",
    "non_gaap_operating_margin": "non_gaap_income_from_operations",
}


@dataclass(frozen=True)
class Comparison:
    """One check: `found` should be `expected` within `tolerance`."""

    rule: str
    figure: str
    period: str
    column: str
    expected: Decimal | None
    found: Decimal | None
    tolerance: Decimal
    lines: tuple[int, ...]

    def __post_init__(self) -> None:
        # Printed with a few more places than the figure, rounded up so nothing tightens.
        object.__setattr__(self, "tolerance", ceiling(self.tolerance, self.places))

    @property
    def places(self) -> int:
        exponents = [v.as_tuple().exponent for v in (self.expected, self.found) if v is not None]
        return max(0, -min((e for e in exponents if isinstance(e, int)), default=0)) + 3

    @property
    def holds(self) -> bool:
        if self.expected is None or self.found is None:
            return False
        return abs(self.found - self.expected) <= self.tolerance

    def describe(self) -> str:
        lines = ", ".join(str(line) for line in self.lines)
        return (
            f"{self.figure} {self.period} ({self.column}): expected {self.expected}, "
            f"found {self.found} (tolerance {self.tolerance}); rule: {self.rule}; lines {lines}"
        )


def ceiling(value: Decimal, places: int) -> Decimal:
    return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_CEILING)


class Discrepancy(Comparison):
    """A comparison that does not hold."""


def cross_check(extraction: Extraction) -> list[Discrepancy]:
    """Every disagreement between the figures; an empty list means publishable."""
    return [
        Discrepancy(**{field.name: getattr(c, field.name) for field in fields(c)})
        for c in compare_all(extraction)
        if not c.holds
    ]


def compare_all(extraction: Extraction) -> list[Comparison]:
    sheets = build_sheets(extraction.figures)
    return [
        *duplicates(extraction.figures),
        *identities(sheets),
        *margins(sheets, extraction.currency),
        *convenience(sheets, extraction),
        *prose_against_tables(extraction.figures, sheets),
        *stated_changes(extraction.figures),
        *guided_ranges(extraction.figures),
    ]


@dataclass
class Sheet:
    """The first figure printed for each name, for one origin, period and currency."""

    key: SheetKey
    figures: dict[Target, Figure]

    def headline(self, name: str) -> Figure | None:
        return self.figures.get(Target(Kind.HEADLINE, name))

    def of_kind(self, kind: Kind) -> list[Figure]:
        return [figure for target, figure in self.figures.items() if target.kind is kind]

    @property
    def column(self) -> str:
        origin, _, currency = self.key
        return f"{origin.value} {currency or ''}".strip()


def build_sheets(figures: Sequence[Figure]) -> dict[SheetKey, Sheet]:
    sheets: dict[SheetKey, Sheet] = {}
    for figure in figures:
        if figure.role is Role.VALUE and figure.target.kind in STATEMENT_KINDS:
            key = (figure.origin, figure.period, figure.currency)
            sheet = sheets.setdefault(key, Sheet(key, {}))
            sheet.figures.setdefault(figure.target, figure)
    return sheets


def duplicates(figures: Sequence[Figure]) -> Iterator[Comparison]:
    """A figure printed twice (net income in two tables, a metric in two paragraphs) agrees."""
    groups: dict[tuple[Origin, Target, str, str | None], list[Figure]] = defaultdict(list)
    for figure in figures:
        if figure.role is Role.VALUE and (figure.origin is Origin.TABLE or is_metric(figure)):
            groups[(figure.origin, figure.target, figure.period, figure.currency)].append(figure)
    for first, *others in groups.values():
        for other in others:
            tolerance = first.half_unit_in(scale(first)) + other.half_unit_in(scale(first))
            if first.origin is Origin.TABLE and first.decimals == other.decimals:
                tolerance = Decimal(0)
            yield comparison("a figure printed twice agrees", first, other, tolerance)


def is_metric(figure: Figure) -> bool:
    return figure.target.kind is Kind.METRIC


def scale(figure: Figure) -> Scale:
    return figure.scale or Scale.UNITS


def comparison(rule: str, expected: Figure, found: Figure, tolerance: Decimal) -> Comparison:
    return Comparison(
        rule=rule,
        figure=found.target.label,
        period=found.period,
        column=f"{found.origin.value} {found.currency or ''}".strip(),
        expected=expected.value_in(scale(found)),
        found=found.value,
        tolerance=tolerance,
        lines=tuple(sorted({expected.provenance.line, found.provenance.line})),
    )


def identities(sheets: dict[SheetKey, Sheet]) -> Iterator[Comparison]:
    """Sums within one statement column; prose columns only where no table prints the period."""
    table_periods = {period for origin, period, _ in sheets if origin is Origin.TABLE}
    for (origin, period, _), sheet in sheets.items():
        if origin is Origin.TABLE or period not in table_periods:
            yield from line_sums(sheet)
            yield from headline_sums(sheet)


def line_sums(sheet: Sheet) -> Iterator[Comparison]:
    revenue = sheet.of_kind(Kind.REVENUE_LINE)
    top = [line for line in revenue if line.target.parent is None]
    for subtotal in top:
        children = [line for line in revenue if line.target.parent == subtotal.target.name]
        if children:
            yield summed("revenue lines sum to their subtotal", sheet, subtotal, plus(children))
    yield from total_of("revenue lines sum to total net revenue", sheet, "total_net_revenue", top)
    costs = [line for line in sheet.of_kind(Kind.COST_LINE) if line.target.parent is None]
    yield from total_of("cost lines sum to total costs", sheet, "total_operating_costs", costs)
    other = sheet.of_kind(Kind.OTHER_LINE)
    operations = sheet.headline("income_from_operations")
    if other and operations is not None:
        rule = "income from operations plus other lines is pre-tax income"
        yield from total_of(rule, sheet, "income_before_tax", [operations, *other])


def plus(figures: Sequence[Figure]) -> list[tuple[int, Figure]]:
    return [(1, figure) for figure in figures]


def total_of(rule: str, sheet: Sheet, name: str, terms: Sequence[Figure]) -> Iterator[Comparison]:
    total = sheet.headline(name)
    if total is not None and terms:
        yield summed(rule, sheet, total, plus(terms))


def headline_sums(sheet: Sheet) -> Iterator[Comparison]:
    for rule, name, signed_names in HEADLINE_IDENTITIES:
        total = sheet.headline(name)
        terms = [(sign, sheet.headline(term)) for sign, term in signed_names]
        present = [(sign, term) for sign, term in terms if term is not None]
        if total is not None and len(present) == len(terms):
            yield summed(rule, sheet, total, present)


def summed(
    rule: str, sheet: Sheet, total: Figure, terms: Sequence[tuple[int, Figure]]
) -> Comparison:
    unit = scale(total)
    expected = sum((sign * term.value_in(unit) for sign, term in terms), Decimal(0))
    coarsest = max(figure.half_unit_in(unit) for figure in [total, *(t for _, t in terms)])
    lines = sorted({total.provenance.line, *(term.provenance.line for _, term in terms)})
    return Comparison(
        rule=rule,
        figure=total.target.label,
        period=total.period,
        column=sheet.column,
        expected=expected,
        found=total.value,
        tolerance=coarsest * (len(terms) + 1),
        lines=tuple(lines),
    )


def margins(sheets: dict[SheetKey, Sheet], currency: str) -> Iterator[Comparison]:
    """Stated margins against the figures they divide, to the stated rounding."""
    for (origin, period, _), sheet in sheets.items():
        money = sheets.get((Origin.TABLE, period, currency)) or sheets.get(
            (origin, period, currency)
        )
        for ratio in sheet.of_kind(Kind.RATIO):
            numerator = money.headline(MARGINS[ratio.target.name]) if money else None
            revenue = money.headline("total_net_revenue") if money else None
            if numerator is not None and revenue is not None and revenue.value:
                yield margin(ratio, numerator, revenue)


def margin(ratio: Figure, numerator: Figure, revenue: Figure) -> Comparison:
    unit = scale(revenue)
    low, high = quotient_bounds(numerator, revenue, unit)
    return Comparison(
        rule="stated margin matches its figures",
        figure=ratio.target.label,
        period=ratio.period,
        column=ratio.origin.value,
        expected=round((low + high) / 2, ratio.decimals + 2),
        found=ratio.value,
        tolerance=(high - low) / 2 + ratio.half_unit,
        lines=tuple(sorted({ratio.provenance.line, numerator.provenance.line})),
    )


def quotient_bounds(numerator: Figure, denominator: Figure, unit: Scale) -> tuple[Decimal, Decimal]:
    """100 * numerator / denominator over the rounding intervals of both printed figures."""
    n, dn = numerator.value_in(unit), numerator.half_unit_in(unit)
    d, dd = denominator.value_in(unit), denominator.half_unit_in(unit)
    candidates = [100 * a / b for a in (n - dn, n + dn) for b in (d - dd, d + dd) if b]
    return min(candidates), max(candidates)


def convenience(sheets: dict[SheetKey, Sheet], extraction: Extraction) -> Iterator[Comparison]:
    """Each convenience-column figure is the statement figure at the stated rate."""
    rate = extraction.exchange_rate
    for (origin, period, currency), sheet in sheets.items():
        if origin is not Origin.TABLE or currency in (None, extraction.currency):
            continue
        if rate is None or rate.currency != currency or rate.base != extraction.currency:
            yield missing_rate(period, currency, sheet)
            continue
        base = sheets.get((Origin.TABLE, period, extraction.currency))
        for target, figure in sheet.figures.items():
            if base is not None and (original := base.figures.get(target)) is not None:
                yield translated(figure, original, rate)


def missing_rate(period: str, currency: str | None, sheet: Sheet) -> Comparison:
    lines = tuple(sorted({figure.provenance.line for figure in sheet.figures.values()}))
    return Comparison(
        "convenience columns need a stated exchange rate",
        f"exchange_rate_{(currency or '').lower()}",
        period,
        sheet.column,
        None,
        None,
        Decimal(0),
        lines[:1],
    )


def translated(figure: Figure, original: Figure, rate: ExchangeRate) -> Comparison:
    rate_half = Decimal(5).scaleb(-rate.decimals - 1)
    amount = original.value_in(scale(figure))
    tolerance = (
        2 * figure.half_unit
        + original.half_unit_in(scale(figure)) / rate.rate
        + abs(amount) * rate_half / rate.rate**2
    )
    return Comparison(
        rule="convenience figure is the statement figure at the stated rate",
        figure=figure.target.label,
        period=figure.period,
        column=f"table {figure.currency}",
        expected=round(amount / rate.rate, figure.decimals + 2),
        found=figure.value,
        tolerance=tolerance,
        lines=(figure.provenance.line, rate.provenance.line),
    )


def prose_against_tables(
    figures: Sequence[Figure], sheets: dict[SheetKey, Sheet]
) -> Iterator[Comparison]:
    """'RMB1,234.6 million' in the prose is the table's 1,234,567 thousand, rounded."""
    for figure in figures:
        if figure.origin is not Origin.PROSE or figure.role is not Role.VALUE:
            continue
        sheet = sheets.get((Origin.TABLE, figure.period, figure.currency))
        printed = sheet.figures.get(figure.target) if sheet else None
        if printed is not None:
            yield comparison(
                "prose figure matches the table", printed, figure, prose_tolerance(printed, figure)
            )


def prose_tolerance(printed: Figure, prose: Figure) -> Decimal:
    """The prose's own rounding, plus the table's when the table is the coarser."""
    table_half = printed.half_unit_in(scale(prose))
    return prose.half_unit + (table_half if table_half > prose.half_unit else Decimal(0))


def stated_changes(figures: Sequence[Figure]) -> Iterator[Comparison]:
    """'a decrease of 5.0% from RMB100 million': the change between the two figures."""
    values_by_line: dict[tuple[Target, int], list[Figure]] = defaultdict(list)
    for figure in figures:  # indexed once: a scan per change made long documents quadratic
        if figure.role is Role.VALUE:
            values_by_line[(figure.target, figure.provenance.line)].append(figure)
    for change in figures:
        if change.role is not Role.CHANGE:
            continue
        same_line = values_by_line.get((change.target, change.provenance.line), [])
        current, base = change_operands(change, same_line)
        if current is not None and base is not None and base.value:
            low, high = quotient_bounds(current, base, scale(current))
            yield Comparison(
                rule="stated change matches its figures",
                figure=change.target.label,
                period=f"{base.period}..{current.period}",
                column=change.origin.value,
                expected=round((low + high) / 2 - 100, change.decimals + 2),
                found=change.value,
                tolerance=(high - low) / 2 + change.half_unit,
                lines=(change.provenance.line,),
            )


def change_operands(
    change: Figure, same_line: Sequence[Figure]
) -> tuple[Figure | None, Figure | None]:
    """Among the values of the change's target in its line (in document order): the value
    printed before it for its period, and the first value printed after it (the base it is
    measured from), in the same currency."""
    before = [f for f in same_line if f.provenance.end <= change.provenance.start]
    current = next((f for f in reversed(before) if f.period == change.period), None)
    after = [
        f
        for f in same_line
        if f.provenance.start >= change.provenance.end
        and current is not None
        and f.currency == current.currency
    ]
    return current, (after[0] if after else None)


def guided_ranges(figures: Sequence[Figure]) -> Iterator[Comparison]:
    """A guided amount band has both bounds, low first; a guided growth range stated with both
    bounds has the low one first (growth alone may state one bound: 'at least 10%')."""
    ranges: dict[tuple[str, str], dict[Role, Figure]] = defaultdict(dict)
    for figure in figures:
        if figure.target.kind is Kind.GUIDANCE:
            ranges[(figure.target.name, figure.period)].setdefault(figure.role, figure)
    for bounds in ranges.values():
        amounts = set(bounds) & {Role.LOW, Role.HIGH}
        growth = set(bounds) & {Role.YOY_LOW, Role.YOY_HIGH}
        if amounts:
            yield from ordered(bounds, Role.LOW, Role.HIGH)
        if growth and (amounts or len(growth) == 2):
            yield from ordered(bounds, Role.YOY_LOW, Role.YOY_HIGH)


def ordered(bounds: dict[Role, Figure], low_role: Role, high_role: Role) -> Iterator[Comparison]:
    low, high = bounds.get(low_role), bounds.get(high_role)
    some = low or high
    assert some is not None
    values = (
        None
        if low is None or high is None
        else (low.value_in(scale(low)), high.value_in(scale(low)))
    )
    yield Comparison(
        rule=f"guidance states both {low_role.value} and {high_role.value}, low first",
        figure=f"guidance.{some.target.name}",
        period=some.period,
        column=some.origin.value,
        expected=None if values is None else min(values),
        found=None if values is None else values[0],
        tolerance=Decimal(0),
        lines=tuple(sorted({f.provenance.line for f in (low, high) if f is not None})),
    )
