"""Guidance arithmetic and band logic: revisions, year-on-year checks, band states, outcomes.

Pure numerical core: standard library, numpy, scipy and the service's one distribution module
(`services.common.distribution`, numpy only), which computes every band probability. Amounts are
in the currency units the guidance is stated in (e.g. RMB million); percentages are in percent
(7.0 means +7.0 %).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import TypeVar

from services.common.distribution import (
    band_outcome,
)

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
    consistent = all(lo <= prior_actual <= hi for lo, hi in intervals)
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


# --------------------------------------------------------------------------- band state


class BandState(StrEnum):
    """The most likely outcome against the guidance band, as a call."""

    LIKELY_BELOW = "likely_below"
    LIKELY_INSIDE = "likely_inside"
    LIKELY_ABOVE = "likely_above"


# ties go to the costlier news to miss: falling short, then beating, then landing inside
STATE_ORDER = (BandState.LIKELY_BELOW, BandState.LIKELY_ABOVE, BandState.LIKELY_INSIDE)


@dataclass(frozen=True)
class HysteresisSpec:
    """A call moves to another side only when that side's probability leads the called side's
    by at least `margin`.

    Without a previous call the state is the most likely side. With one, it stays until another
    side leads it by `margin`, and then moves to the most likely side. So the called side is never
    more than `margin` behind the most likely one, and probabilities that each stay within
    `margin / 4` of some point (their differences then move by less than `margin`) never
    change the first call.
    """

    margin: float = 0.1

    def __post_init__(self) -> None:
        if not 0.0 <= self.margin < 1.0:
            raise ValueError(f"margin must lie in [0, 1), got {self.margin}")


def next_band_state(
    previous: BandState | None,
    *,
    p_below: float,
    p_inside: float,
    p_above: float,
    spec: HysteresisSpec = HysteresisSpec(),
) -> BandState:
    """The next call from P(below), P(inside), P(above) of the band, with hysteresis (see
    `HysteresisSpec`)."""
    probability = _by_state(p_below, p_inside, p_above)
    leader = max(STATE_ORDER, key=lambda state: probability[state])
    if previous is None or probability[leader] - probability[previous] >= spec.margin:
        return leader
    return previous


def state_probability(
    state: BandState, *, p_below: float, p_inside: float, p_above: float
) -> float:
    """The probability of the side a state calls."""
    return _by_state(p_below, p_inside, p_above)[state]


CONFIDENCE_WORDS = ((0.9, "very high"), (0.7, "high"), (0.5, "moderate"), (0.0, "low"))


def confidence_word(probability: float) -> str:
    """How sure a call on three sides is: low below 0.5 (the side is only the likeliest of three),
    moderate from 0.5 (more likely than not), high from 0.7, very high from 0.9."""
    return next(word for floor, word in CONFIDENCE_WORDS if probability >= floor)


def _by_state(p_below: float, p_inside: float, p_above: float) -> dict[BandState, float]:
    triple = (p_below, p_inside, p_above)
    if not (all(-1e-9 <= p <= 1.0 + 1e-9 for p in triple) and abs(sum(triple) - 1.0) <= 1e-6):
        raise ValueError(
            "need probabilities in 0..1 with p_below + p_inside + p_above = 1, got "
            f"p_below={p_below}, p_inside={p_inside}, p_above={p_above}"
        )
    return {
        BandState.LIKELY_BELOW: p_below,
        BandState.LIKELY_INSIDE: p_inside,
        BandState.LIKELY_ABOVE: p_above,
    }


# --------------------------------------------------------------------------- outcomes


@dataclass(frozen=True)
class Outcome:
    """A reported actual against its band.

    verdict: 'beat' (above high), 'in_line' (inside, bounds included) or 'miss' (below low).
    vs_midpoint: 'above' | 'at' | 'below' the midpoint (a one-sided band's bound), within the
    midpoint tolerance.
    surprise_vs_mid_pct: (actual - midpoint) / |midpoint| * 100, NaN for a zero midpoint.
    distance_to_band: `distance_to_nearer_bound` of the actual, in the band's units.
    """

    verdict: str
    vs_midpoint: str
    surprise_vs_mid_pct: float
    distance_to_band: float


VERDICTS = {"below": "miss", "inside": "in_line", "above": "beat"}


def classify_outcome(
    *, actual: float, low: float | None, high: float | None, midpoint_tolerance: float = 0.005
) -> Outcome:
    """Classify an actual against [low, high] (either bound may be open).

    `midpoint_tolerance` is relative to the midpoint's size: the actual is 'at' the midpoint when
    |actual - midpoint| <= midpoint_tolerance * |midpoint| (default 0.5 %).
    """
    band = Band(low=low, high=high)
    mid = band.midpoint
    return Outcome(
        verdict=VERDICTS[band_outcome(actual, low=low, high=high)],
        vs_midpoint=_vs_midpoint(actual, mid, midpoint_tolerance * abs(mid)),
        surprise_vs_mid_pct=(actual - mid) / abs(mid) * 100.0 if mid != 0.0 else math.nan,
        distance_to_band=distance_to_nearer_bound(point=actual, low=low, high=high),
    )


def _vs_midpoint(actual: float, mid: float, tolerance: float) -> str:
    if abs(actual - mid) <= tolerance:
        return "at"
    return "above" if actual > mid else "below"


def distance_to_nearer_bound(*, point: float, low: float | None, high: float | None) -> float:
    """Signed distance from the band, in the band's units.

    point - low (negative) below the band, point - high (positive) above it, and 0 inside
    (bounds included; an open side has no distance): how far a figure must move to land in
    the band.
    """
    Band(low=low, high=high)  # validates the bounds
    if low is not None and point < low:
        return point - low
    if high is not None and point > high:
        return point - high
    return 0.0


# --------------------------------------------------------------------------- fiscal years
