"""Guidance rules every worker shares: bands, stated ranges, revisions and year-on-year checks.

Ingest classifies a revision when it records guidance, forecast derives a band from a stated
growth range, and the guidance worker checks forecasts against the band; the rules live here so
none of them imports another. Pure: standard library only. Amounts are in the currency units the
guidance is stated in (e.g. RMB million); percentages are in percent (7.0 means +7.0 %).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
from typing import TypeVar

REVISIONS = (
    "initial",
    "raised",
    "lowered",
    "maintained",
    "narrowed",
    "widened",
    "rebased",
    "withdrawn",
)


# --------------------------------------------------------------------------- bands and revisions


@dataclass(frozen=True)
class Band:
    """A guidance range in the guided figure's units: [low, high], or one-sided when a bound is
    None ('at least low', 'at most high'); low == high is point guidance."""

    low: float | None
    high: float | None

    def __post_init__(self) -> None:
        if self.low is None and self.high is None:
            raise ValueError("a band needs at least one bound, got low=None, high=None")
        if not all(math.isfinite(b) for b in (self.low, self.high) if b is not None):
            raise ValueError(f"band bounds must be finite, got low={self.low}, high={self.high}")
        if self.low is not None and self.high is not None and self.low > self.high:
            raise ValueError(f"band low must be <= high, got low={self.low}, high={self.high}")

    @property
    def midpoint(self) -> float:
        """(low + high) / 2; a one-sided band's only bound."""
        if self.low is None or self.high is None:
            return self.low if self.high is None else self.high  # type: ignore[return-value]
        return (self.low + self.high) / 2.0

    @property
    def width(self) -> float:
        """high - low (infinite for a one-sided band)."""
        if self.low is None or self.high is None:
            return math.inf
        return self.high - self.low

    @property
    def one_sided(self) -> bool:
        return self.low is None or self.high is None


@dataclass(frozen=True)
class StatedRange:
    """A guided range as stated: an amount band, or a growth band in percent on the prior year.
    Revisions compare ranges of one kind; a change of kind is a 'rebased' statement."""

    kind: str  # "amount" or "growth"
    band: Band


def classify_statement_revision(previous: StatedRange | None, new: StatedRange | None) -> str:
    """`classify_revision` of two statements of one kind; 'rebased' when the kind changed (an
    amount band replaced by a growth rate, or back: the bounds are in different units)."""
    if previous is not None and new is not None and previous.kind != new.kind:
        return "rebased"
    return classify_revision(previous.band if previous else None, new.band if new else None)


def classify_revision(previous: Band | None, new: Band | None, *, tolerance: float = 1e-9) -> str:
    """Name the change from the previous band to the new one.

    Each bound moves up, down or not at all (a move of at most `tolerance`, in the band's units,
    counts as no move; an open bound sits at -inf below or +inf above, so opening the high side
    moves it up):
      withdrawn   new is None (previous was a band);
      initial     previous is None, new is a band;
      maintained  neither bound moved;
      raised      no bound moved down and at least one moved up (the midpoint rises);
      lowered     no bound moved up and at least one moved down (the midpoint falls);
      narrowed    low moved up and high moved down: the new band lies inside the old one;
      widened     low moved down and high moved up: the new band contains the old one.
    Mixed moves are classified by what happened to the width, whatever the midpoint did: a band
    that narrows while its midpoint drifts up is 'narrowed', because the company has said something
    about its uncertainty first; compare midpoints for the direction.
    """
    if new is None:
        if previous is None:
            raise ValueError("both bands are None: there is no guidance to classify")
        return "withdrawn"
    if previous is None:
        return "initial"
    low_move = _move(_low(previous), _low(new), tolerance)
    high_move = _move(_high(previous), _high(new), tolerance)
    return _REVISION_BY_MOVES[(low_move, high_move)]


def _low(band: Band) -> float:
    return -math.inf if band.low is None else band.low


def _high(band: Band) -> float:
    return math.inf if band.high is None else band.high


def _move(before: float, after: float, tolerance: float) -> int:
    """+1 up, -1 down, 0 when |after - before| <= tolerance (or both are the same open end)."""
    if after == before or abs(after - before) <= tolerance:
        return 0
    return 1 if after > before else -1


_REVISION_BY_MOVES = {
    (0, 0): "maintained",
    (1, 1): "raised",
    (1, 0): "raised",
    (0, 1): "raised",
    (-1, -1): "lowered",
    (-1, 0): "lowered",
    (0, -1): "lowered",
    (1, -1): "narrowed",
    (-1, 1): "widened",
}


# --------------------------------------------------------------------------- YoY arithmetic


@dataclass(frozen=True)
class ArithmeticCheck:
    """Whether a band, its stated YoY growth range and the recorded prior actual agree.

    implied_prior_low/high: prior-year figure implied by each bound, bound / (1 + yoy / 100).
    tolerance: the larger half-width of the two intervals the stated rounding allows around the
    implied priors, in the band's units.
    """

    consistent: bool
    implied_prior_low: float
    implied_prior_high: float
    prior_actual: float
    tolerance: float
    explanation: str


EDGE_SLACK = 1e-12  # relative


def check_yoy_arithmetic(
    *,
    low: float,
    high: float,
    yoy_low_pct: float,
    yoy_high_pct: float,
    prior_actual: float,
    pct_decimals: int = 1,
    band_rounding: float = 0.0,
) -> ArithmeticCheck:
    """Check that low/high and the stated growth range imply the recorded prior-year actual.

    Each bound B with stated growth g % implies prior = B / (1 + g/100). The percentages are rounded
    to `pct_decimals` decimals (half-unit h = 0.5 * 10^-pct_decimals points) and the bounds to
    `band_rounding` units (0 when the bounds are exact targets), so bound B allows a prior in
    [(B - r/2) / (1 + (g + h)/100), (B + r/2) / (1 + (g - h)/100)].
    The check is consistent when the recorded prior lies in both intervals.
    """
    Band(low=low, high=high)  # validates the bounds
    if prior_actual <= 0.0:
        raise ValueError(f"prior_actual must be positive for a growth rate, got {prior_actual}")
    half_pct = 0.5 * 10.0 ** (-pct_decimals)
    intervals = [
        _allowed_prior(bound, pct, half_pct=half_pct, band_rounding=band_rounding)
        for bound, pct in ((low, yoy_low_pct), (high, yoy_high_pct))
    ]
    implied = [low / _growth_factor(yoy_low_pct), high / _growth_factor(yoy_high_pct)]
    # a prior exactly on an edge (a growth rate that was itself a half unit, 0.75 % stated as
    # 0.8 %) must not fail on the last bit of a float division
    slack = prior_actual * EDGE_SLACK
    consistent = all(lo - slack <= prior_actual <= hi + slack for lo, hi in intervals)
    tolerance = max(max(hi - v, v - lo) for (lo, hi), v in zip(intervals, implied, strict=True))
    explanation = _explain(
        (low, high), yoy_low_pct, yoy_high_pct, prior_actual, implied, tolerance, consistent
    )
    return ArithmeticCheck(
        consistent=consistent,
        implied_prior_low=implied[0],
        implied_prior_high=implied[1],
        prior_actual=prior_actual,
        tolerance=tolerance,
        explanation=explanation,
    )


Number = TypeVar("Number", float, Decimal)


def derive_yoy_band(
    *, prior_actual: Number, yoy_low_pct: Number | None, yoy_high_pct: Number | None
) -> tuple[Number | None, Number | None]:
    """The band of guidance stated as growth on the prior year: each stated bound is
    prior_actual x (1 + g / 100); an unstated bound stays open (None).

    Growth on a prior year that is zero or a loss names no amount, so a non-positive prior is
    refused, as is a growth below -100 % and a low growth above the high one.
    """
    if yoy_low_pct is None and yoy_high_pct is None:
        raise ValueError("a growth band needs yoy_low_pct or yoy_high_pct")
    if prior_actual <= 0:
        raise ValueError(
            f"prior-year actual {prior_actual} is not positive: growth on it names no band"
        )
    if yoy_low_pct is not None and yoy_high_pct is not None and yoy_low_pct > yoy_high_pct:
        raise ValueError(f"yoy_low_pct {yoy_low_pct} exceeds yoy_high_pct {yoy_high_pct}")
    return _grown(prior_actual, yoy_low_pct), _grown(prior_actual, yoy_high_pct)


def _grown(prior: Number, pct: Number | None) -> Number | None:
    if pct is None:
        return None
    if pct < -100:
        raise ValueError(f"a growth rate of {pct} % is below -100 %: nothing is left to shrink")
    return prior * (1 + pct / 100)


def _growth_factor(pct: float) -> float:
    factor = 1.0 + pct / 100.0
    if factor <= 0.0:
        raise ValueError(f"a growth rate of {pct} % leaves no prior year; expected > -100")
    return factor


def _allowed_prior(
    bound: float, pct: float, *, half_pct: float, band_rounding: float
) -> tuple[float, float]:
    half_band = band_rounding / 2.0
    return (
        (bound - half_band) / _growth_factor(pct + half_pct),
        (bound + half_band) / _growth_factor(pct - half_pct),
    )


def _explain(
    band: tuple[float, float],
    yoy_low_pct: float,
    yoy_high_pct: float,
    prior: float,
    implied: list[float],
    tolerance: float,
    consistent: bool,
) -> str:
    low, high = band
    growth_low = (low / prior - 1.0) * 100.0
    growth_high = (high / prior - 1.0) * 100.0
    head = "Consistent" if consistent else "Inconsistent"
    return (
        f"{head}: {low:,.1f}–{high:,.1f} at {yoy_low_pct:+.1f}% to {yoy_high_pct:+.1f}% "
        f"implies a prior-year figure of {implied[0]:,.1f} (low end) and {implied[1]:,.1f} "
        f"(high end), ±{tolerance:,.1f} for rounding; the recorded prior of {prior:,.1f} "
        f"gives {growth_low:+.2f}% to {growth_high:+.2f}%."
    )
