"""Band calls and outcomes: the state a forecast is in against its guidance band, and the verdict.

Pure numerical core: standard library and the service's one distribution module
(`services.common.distribution`, numpy only), which computes every band probability. The shared
rules (bands, revisions, year-on-year checks) live in `services.common.guidance_rules`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

from services.common.distribution import band_outcome
from services.common.guidance_rules import Band

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
