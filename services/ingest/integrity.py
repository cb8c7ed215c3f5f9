"""Do a statement's published figures add up? Pure checks with rounding tolerances.

A figure printed to a unit of its scale may be off by half a unit; a sum of n printed figures
by n halves. Each rule allows exactly that, so a real break (say net income altered by one
million when the table is in thousands) is caught while honest rounding is not.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from schemas.results import IncomeStatement, StatementLine

HALF = Decimal("0.5")
MARGIN_RULES = {
    "operating_margin": ("income_from_operations", "total_net_revenue"),
    "net_income_margin": ("net_income", "total_net_revenue"),
    "non_gaap_operating_margin": ("non_gaap_income_from_operations", "total_net_revenue"),
    "non_gaap_net_income_margin": ("non_gaap_net_income", "total_net_revenue"),
}


@dataclass(frozen=True)
class Finding:
    """One identity that does not hold, with the arithmetic that shows it."""

    period: str
    rule: str
    subject: str
    expected: Decimal
    found: Decimal
    tolerance: Decimal
    unit: str | None = None  # when not the statement's own (a margin in %, a converted figure)

    @property
    def difference(self) -> Decimal:
        return self.found - self.expected

    def sentence(self, statement_unit: str) -> str:
        unit = self.unit or statement_unit
        return (
            f"{self.period}: {self.rule} does not hold: {self.subject} is {self.found:,} {unit} "
            f"but the other figures give {self.expected:,} {unit} "
            f"(off by {self.difference:,}; rounding allows {self.tolerance:,})"
        )


def check_statement(statement: IncomeStatement) -> list[Finding]:
    """Every identity the statement's figures let us check."""
    checks = _line_checks(statement) + _headline_checks(statement) + _ratio_checks(statement)
    return [finding for finding in checks if finding is not None] + _convenience_checks(statement)


def _sum_rule(
    statement: IncomeStatement, rule: str, subject: str, terms: Iterable[Decimal | None]
) -> Finding | None:
    found = statement.headline(subject) if hasattr(statement, subject) else None
    return _compare(statement.period, rule, subject, found, list(terms))


def _compare(
    period: str, rule: str, subject: str, found: Decimal | None, terms: list[Decimal | None]
) -> Finding | None:
    if found is None or not terms or any(term is None for term in terms):
        return None
    expected = sum((term for term in terms if term is not None), Decimal(0))
    tolerance = HALF * (len(terms) + 1)
    if abs(found - expected) <= tolerance:
        return None
    return Finding(period, rule, subject, expected, found, tolerance)


def _children(lines: tuple[StatementLine, ...], parent: str | None) -> list[StatementLine]:
    return [line for line in lines if line.parent == parent]


def _line_checks(statement: IncomeStatement) -> list[Finding | None]:
    checks: list[Finding | None] = []
    for group, total in (
        ("revenue_lines", "total_net_revenue"),
        ("cost_lines", "total_operating_costs"),
    ):
        lines: tuple[StatementLine, ...] = getattr(statement, group)
        top = _children(lines, None)
        if top:
            rule = f"{group.replace('_', ' ')} sum to {total}"
            checks.append(_sum_rule(statement, rule, total, (line.amount for line in top)))
        for parent in top:
            parts = _children(lines, parent.name)
            if parts:
                rule = f"lines under {parent.name} sum to it"
                found = parent.amount
                checks.append(
                    _compare(statement.period, rule, parent.name, found, [p.amount for p in parts])
                )
    return checks


def _headline_checks(statement: IncomeStatement) -> list[Finding | None]:
    s = statement
    negate = _negate
    other = [line.amount for line in s.other_lines]
    return [
        _sum_rule(
            s,
            "revenue - operating costs = income from operations",
            "income_from_operations",
            (s.total_net_revenue, negate(s.total_operating_costs)),
        ),
        _sum_rule(
            s,
            "income from operations + other items = income before tax",
            "income_before_tax",
            (s.income_from_operations, *other),
        )
        if other
        else None,
        _sum_rule(
            s,
            "income before tax - income tax = net income",
            "net_income",
            (s.income_before_tax, negate(s.income_tax_expense)),
        ),
        _sum_rule(
            s,
            "net income + noncontrolling interests' loss = attributable net income",
            "net_income_attributable",
            (s.net_income, s.net_loss_attributable_to_noncontrolling_interests),
        ),
        _sum_rule(
            s,
            "net income + share-based compensation = non-GAAP net income",
            "non_gaap_net_income",
            (s.net_income, s.share_based_comp),
        ),
        _sum_rule(
            s,
            "income from operations + share-based compensation = non-GAAP income from operations",
            "non_gaap_income_from_operations",
            (s.income_from_operations, s.share_based_comp),
        ),
        _sum_rule(
            s,
            "attributable net income + share-based compensation = non-GAAP attributable net income",
            "non_gaap_net_income_attributable",
            (s.net_income_attributable, s.share_based_comp),
        ),
    ]


def _negate(value: Decimal | None) -> Decimal | None:
    return None if value is None else -value


def _ratio_checks(statement: IncomeStatement) -> list[Finding | None]:
    checks: list[Finding | None] = []
    for ratio in statement.stated_ratios:
        if ratio.name not in MARGIN_RULES:
            continue
        numerator, denominator = (statement.headline(n) for n in MARGIN_RULES[ratio.name])
        if numerator is None or not denominator:
            continue
        computed = (numerator / denominator * 100).quantize(Decimal("0.0001"))
        step = Decimal(1).scaleb(_exponent(ratio.percent))
        if abs(computed - ratio.percent) > step * HALF + Decimal("0.0001"):
            rule = f"stated {ratio.name.replace('_', ' ')} matches the figures"
            checks.append(
                Finding(
                    statement.period, rule, ratio.name, computed, ratio.percent, step * HALF, "%"
                )
            )
    return checks


def _convenience_checks(statement: IncomeStatement) -> list[Finding]:
    translation = statement.convenience
    if translation is None:
        return []
    local = {**statement.headlines(), **_all_lines(statement)}
    findings = []
    for name, converted in translation.figures.items():
        if name not in local:
            continue
        expected = local[name] / translation.rate
        # half a printed unit, plus what a rate rounded to its stated digits can move
        rate_step = Decimal(1).scaleb(_exponent(translation.rate)) * HALF
        tolerance = HALF + abs(expected) * rate_step / translation.rate + HALF / translation.rate
        if abs(converted - expected) > tolerance:
            rule = (
                f"{translation.currency} figure = {statement.currency} figure / {translation.rate}"
            )
            findings.append(
                Finding(
                    statement.period,
                    rule,
                    name,
                    expected.quantize(Decimal("0.01")),
                    converted,
                    tolerance.quantize(Decimal("0.01")),
                    f"{translation.currency} {statement.scale.value}",
                )
            )
    return findings


def _all_lines(statement: IncomeStatement) -> dict[str, Decimal]:
    lines = (*statement.revenue_lines, *statement.cost_lines, *statement.other_lines)
    return {line.name: line.amount for line in lines if line.parent is None} | {
        f"{line.parent}.{line.name}": line.amount for line in lines if line.parent is not None
    }


def _exponent(value: Decimal) -> int:
    exponent = value.as_tuple().exponent
    return exponent if isinstance(exponent, int) else 0


SLIP_FACTORS = (Decimal(1_000), Decimal(1_000_000), Decimal(1_000_000_000))


def unit_slip(value: Decimal, previous: Decimal) -> Decimal | None:
    """The factor (1,000, a million, a billion) a value seems off by against the previous
    period's, when their ratio is within 30% of one: the mark of a figure sent in the wrong
    scale (thousands as units, millions as thousands). None when it looks like a real move."""
    if value == 0 or previous == 0:
        return None
    ratio = abs(value / previous)
    for factor in SLIP_FACTORS:
        for candidate in (factor, 1 / factor):
            if abs(ratio / candidate - 1) <= Decimal("0.3"):
                return factor if candidate == factor else -factor
    return None
