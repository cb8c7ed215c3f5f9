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
import numpy.typing as npt
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
    table = _Table.of(frame)
    years = {key: value for key, value in (fiscal_years or {}).items() if np.isfinite(value)}
    derived: list[Derivation] = []
    while True:  # each pass fills at least one of finitely many cells, or stops
        found = [d for identity in identities for d in _solve(table, identity)]
        found = found or _quarters_from_years(table, years)
        found = found or _years_from_quarters(table, years)
        if not found:
            break
        for derivation in _first_per_cell(found):
            _place(table, years, derivation)
            derived.append(derivation)
    return Filled(table.frame(frame) if derived else frame.astype(float), tuple(derived))


@dataclass
class _Table:
    """The frame's columns as float arrays over consecutive quarters from `first` (an
    ordinal): cell arithmetic without pandas' per-cell cost."""

    first: int
    length: int
    columns: dict[str, npt.NDArray[np.float64]]

    @classmethod
    def of(cls, frame: pd.DataFrame) -> _Table:
        if not isinstance(frame.index, pd.PeriodIndex):
            raise ValueError("history needs a quarterly PeriodIndex")
        first = int(frame.index[0].ordinal) if len(frame.index) else 0
        if len(frame.index) and int(frame.index[-1].ordinal) - first + 1 != len(frame.index):
            raise ValueError("history needs a contiguous quarterly index")
        columns = {str(c): frame[c].to_numpy(dtype=float).copy() for c in frame.columns}
        return cls(first, len(frame.index), columns)

    def period(self, position: int) -> str:
        return str(pd.Period(ordinal=self.first + position, freq=FREQ))

    def position(self, period: pd.Period) -> int:
        return int(period.ordinal) - self.first

    def cell(self, metric: str, period: pd.Period) -> float:
        position = self.position(period)
        column = self.columns.get(metric)
        if column is None or not 0 <= position < self.length:
            return float("nan")
        return float(column[position])

    def set(self, metric: str, period: pd.Period, value: float) -> None:
        self._cover(self.position(period))
        column = self.columns.setdefault(metric, np.full(self.length, np.nan))
        column[self.position(period)] = value

    def _cover(self, position: int) -> None:
        """Grow the span to include `position` (a year's quarter beyond the reported ones)."""
        before, after = max(0, -position), max(0, position - self.length + 1)
        if before or after:
            self.columns = {
                name: np.concatenate((np.full(before, np.nan), column, np.full(after, np.nan)))
                for name, column in self.columns.items()
            }
            self.first -= before
            self.length += before + after

    def frame(self, like: pd.DataFrame) -> pd.DataFrame:
        index = pd.period_range(
            pd.Period(ordinal=self.first, freq=FREQ), periods=self.length, name=like.index.name
        )
        return pd.DataFrame(self.columns, index=index)


def _solve(table: _Table, identity: Identity) -> list[Derivation]:
    """Every cell one member of the identity is missing in while the others are known."""
    coefficients = identity.coefficients
    found = []
    for target in coefficients:
        others = [o for o in coefficients if o != target]
        if not all(o in table.columns for o in others):
            continue
        known = np.all([np.isfinite(table.columns[o]) for o in others], axis=0)
        present = table.columns.get(target)
        missing = np.isnan(present) if present is not None else np.ones(table.length, bool)
        cells = np.flatnonzero(known & missing)
        if cells.size == 0:
            continue
        weights = {o: -coefficients[o] / coefficients[target] for o in others}
        computed = sum(w * table.columns[o][cells] for o, w in weights.items())
        rule = f"{target} = {_equation(weights)}"
        for position, value in zip(cells.tolist(), np.asarray(computed).tolist(), strict=True):
            period = table.period(position)
            sources = tuple((o, period) for o in others)
            found.append(Derivation(target, period, float(value), rule, sources))
    return found


def _equation(weights: Mapping[str, float]) -> str:
    parts = [("- " if w < 0 else "+ ") + name for name, w in weights.items()]
    text = " ".join(parts)
    return text[2:] if text.startswith("+ ") else "-" + text[1:]


def _quarters_from_years(table: _Table, years: dict[tuple[str, int], float]) -> list[Derivation]:
    found = []
    for (metric, year), total in sorted(years.items()):
        quarters = _quarters(year)
        known = {q: table.cell(metric, q) for q in quarters}
        missing = [q for q, v in known.items() if not np.isfinite(v)]
        if len(missing) != 1:
            continue
        others = [q for q in quarters if q != missing[0]]
        value = total - sum(known[q] for q in others)
        rule = f"{metric} of a quarter = {metric} FY{year} - its other three quarters"
        sources = ((metric, f"FY{year}"), *((metric, str(q)) for q in others))
        found.append(Derivation(metric, str(missing[0]), value, rule, sources))
    return found


def _years_from_quarters(table: _Table, years: dict[tuple[str, int], float]) -> list[Derivation]:
    """Only for metrics the company reports by year (some year of it is in ``years``)."""
    found = []
    for metric in sorted({metric for metric, _ in years} & set(table.columns)):
        observed = np.flatnonzero(np.isfinite(table.columns[metric]))
        for year in sorted({pd.Period(ordinal=table.first + int(i), freq=FREQ).year
                            for i in observed}):  # fmt: skip
            figures = [table.cell(metric, q) for q in _quarters(year)]
            if (metric, year) in years or not all(np.isfinite(f) for f in figures):
                continue
            rule = f"{metric} FY{year} = the sum of its four quarters"
            sources = tuple((metric, str(q)) for q in _quarters(year))
            found.append(Derivation(metric, f"FY{year}", float(sum(figures)), rule, sources))
    return found


def _first_per_cell(found: list[Derivation]) -> list[Derivation]:
    chosen: dict[tuple[str, str], Derivation] = {}
    for derivation in found:
        chosen.setdefault((derivation.metric, derivation.period), derivation)
    return list(chosen.values())


def _place(table: _Table, years: dict[tuple[str, int], float], derivation: Derivation) -> None:
    if derivation.period.startswith("FY"):
        years[(derivation.metric, int(derivation.period[2:]))] = derivation.value
    else:
        table.set(derivation.metric, pd.Period(derivation.period, freq=FREQ), derivation.value)


def _quarters(year: int) -> list[pd.Period]:
    return [pd.Period(f"{year}Q{q}", freq=FREQ) for q in range(1, 5)]
