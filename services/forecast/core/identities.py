"""Accounting identities that fill gaps in a quarterly history, each fill marked as derived.

Pure: numpy and pandas. Each identity relates one quarter's figures, total = sum of signed
terms (non-GAAP net income = net income + share-based compensation; attributable net income =
net income + the noncontrolling interests' loss), so whichever member is missing is computed
from the others once they are all known. A fiscal year is the sum of its four quarters: a
missing quarter is the year less its other three, and a missing year of a metric the company
reports by year is the sum of its quarters.

A reported figure is never replaced: only missing cells are filled. Fills repeat until nothing
new follows (a quarter derived from its year may let share-based compensation follow), and each
says which rule and which figures it came from. When two rules could fill one cell, the first
in `IDENTITIES` wins, then the fiscal-year rule.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

NCI_LOSS = "net_loss_attributable_to_noncontrolling_interests"
FREQ = "Q-DEC"
FiscalYears = Mapping[tuple[str, int], float]  # (metric, year) -> the year's figure


@dataclass(frozen=True)
class Identity:
    """total = sum(sign * term) within one quarter."""

    total: str
    terms: tuple[tuple[int, str], ...]

    @property
    def coefficients(self) -> dict[str, int]:
        """The identity as sum(c * member) = 0."""
        return {self.total: 1, **{name: -sign for sign, name in self.terms}}


IDENTITIES = (
    Identity("non_gaap_net_income", ((1, "net_income"), (1, "share_based_comp"))),
    Identity("net_income_attributable", ((1, "net_income"), (1, NCI_LOSS))),
)


@dataclass(frozen=True)
class Derivation:
    """One filled figure: its value, the rule as an equation, and the figures it came from."""

    metric: str
    period: str  # a quarter '2023Q3' or a fiscal year 'FY2023'
    value: float
    rule: str  # e.g. 'net_income = non_gaap_net_income - share_based_comp'
    sources: tuple[tuple[str, str], ...]  # (metric, period) of each figure used

    @property
    def text(self) -> str:
        """'net_income = non_gaap_net_income - share_based_comp (2023Q3)'."""
        periods = sorted({period for _, period in self.sources})
        return f"{self.rule} ({', '.join(periods)})"


@dataclass(frozen=True)
class Filled:
    """The history with its gaps filled, and every fill (quarters in `frame`, and the fiscal
    years derived from their quarters)."""

    frame: pd.DataFrame
    derived: tuple[Derivation, ...]

    def derived_in(self, metric: str) -> tuple[Derivation, ...]:
        return tuple(d for d in self.derived if d.metric == metric)


def fill_identities(
    frame: pd.DataFrame,
    *,
    fiscal_years: FiscalYears | None = None,
    identities: tuple[Identity, ...] = IDENTITIES,
) -> Filled:
    """Fill what the identities determine (see the module docstring). ``frame`` has a
    quarterly PeriodIndex and one float column per metric; ``fiscal_years`` holds the reported
    fiscal-year figures of flow metrics (whose quarters sum to their year)."""
    values = frame.astype(float)
    years = dict(fiscal_years or {})
    derived: list[Derivation] = []
    while True:  # each pass fills at least one of finitely many cells, or stops
        found = [d for identity in identities for d in _solve(values, identity)]
        found = found or _quarters_from_years(values, years)
        found = found or _years_from_quarters(values, years)
        if not found:
            return Filled(values, tuple(derived))
        for derivation in _first_per_cell(found):
            values = _place(values, years, derivation)
            derived.append(derivation)


def _solve(values: pd.DataFrame, identity: Identity) -> list[Derivation]:
    """Every cell one member of the identity is missing in while the others are known."""
    coefficients = identity.coefficients
    found = []
    for target in coefficients:
        others = [o for o in coefficients if o != target]
        if not all(o in values.columns for o in others):
            continue
        known = values[others].notna().all(axis=1).to_numpy()
        missing = values[target].isna().to_numpy() if target in values.columns else known
        weights = {o: -coefficients[o] / coefficients[target] for o in others}
        computed = np.zeros(len(values))
        for other, weight in weights.items():
            computed = computed + weight * values[other].to_numpy(dtype=float)
        rule = f"{target} = {_equation(weights)}"
        for position in np.flatnonzero(known & missing):
            period = str(values.index[int(position)])
            sources = tuple((o, period) for o in others)
            found.append(Derivation(target, period, float(computed[position]), rule, sources))
    return found


def _equation(weights: Mapping[str, float]) -> str:
    parts = [("- " if w < 0 else "+ ") + name for name, w in weights.items()]
    text = " ".join(parts)
    return text[2:] if text.startswith("+ ") else "-" + text[1:]


def _quarters_from_years(
    values: pd.DataFrame, years: dict[tuple[str, int], float]
) -> list[Derivation]:
    found = []
    for (metric, year), total in sorted(years.items()):
        if not np.isfinite(total):
            continue
        quarters = _quarters(year)
        known = {q: _cell(values, metric, q) for q in quarters}
        missing = [q for q, v in known.items() if not np.isfinite(v)]
        if len(missing) != 1:
            continue
        others = [q for q in quarters if q != missing[0]]
        value = total - sum(known[q] for q in others)
        rule = f"{metric} of a quarter = {metric} FY{year} - its other three quarters"
        sources = ((metric, f"FY{year}"), *((metric, str(q)) for q in others))
        found.append(Derivation(metric, str(missing[0]), value, rule, sources))
    return found


def _years_from_quarters(
    values: pd.DataFrame, years: dict[tuple[str, int], float]
) -> list[Derivation]:
    """Only for metrics the company reports by year (some year of it is in ``years``)."""
    by_year = {metric for metric, _ in years}
    found = []
    for metric in sorted(by_year & set(values.columns)):
        series = values[metric]
        for year in sorted({p.year for p in series.index[series.notna()]}):
            quarters = _quarters(year)
            figures = [_cell(values, metric, q) for q in quarters]
            if (metric, year) in years or not all(np.isfinite(f) for f in figures):
                continue
            value = float(sum(figures))
            rule = f"{metric} FY{year} = the sum of its four quarters"
            sources = tuple((metric, str(q)) for q in quarters)
            found.append(Derivation(metric, f"FY{year}", value, rule, sources))
    return found


def _first_per_cell(found: list[Derivation]) -> list[Derivation]:
    chosen: dict[tuple[str, str], Derivation] = {}
    for derivation in found:
        chosen.setdefault((derivation.metric, derivation.period), derivation)
    return list(chosen.values())


def _place(
    values: pd.DataFrame, years: dict[tuple[str, int], float], derivation: Derivation
) -> pd.DataFrame:
    if derivation.period.startswith("FY"):
        years[(derivation.metric, int(derivation.period[2:]))] = derivation.value
        return values
    period = pd.Period(derivation.period, freq=FREQ)
    if period not in values.index:  # a year's missing quarter beyond the reported span
        span = pd.period_range(min(values.index.min(), period), max(values.index.max(), period),
                               freq=FREQ, name=values.index.name)  # fmt: skip
        values = values.reindex(span)
    if derivation.metric not in values.columns:
        values = values.assign(**{derivation.metric: np.nan})
    values.loc[period, derivation.metric] = derivation.value
    return values


def _quarters(year: int) -> list[pd.Period]:
    return [pd.Period(f"{year}Q{q}", freq=FREQ) for q in range(1, 5)]


def _cell(values: pd.DataFrame, metric: str, period: pd.Period) -> float:
    position = int(values.index.get_indexer(pd.PeriodIndex([period]))[0])
    if metric not in values.columns or position < 0:
        return float("nan")
    return float(values[metric].to_numpy(dtype=float)[position])
