"""Band calls and outcomes: the state a forecast is in against its guidance band, and the verdict.

Pure numerical core: standard library and the service's one distribution module
(`services.common.distribution`, numpy only), which computes every band probability. The shared
rules (bands, revisions, year-on-year checks) live in `services.common.guidance_rules`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from services.common.distribution import band_outcome, band_probabilities, combine_fiscal_year
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


# --------------------------------------------------------------------------- band checks


@dataclass(frozen=True)
class GuidedBand:
    """The band a guided figure is checked against, money in whole currency units: as stated,
    or derived from the prior year's recorded actual and a stated growth (either bound may be
    open when only one growth bound was stated)."""

    low: Decimal | None
    high: Decimal | None
    prior_period: str | None = None
    prior_actual: Decimal | None = None
    yoy_low_pct: Decimal | None = None
    yoy_high_pct: Decimal | None = None

    @property
    def derived(self) -> bool:
        return self.prior_period is not None

    def bounds_in(self, factor: Decimal) -> tuple[float | None, float | None]:
        return scaled(self.low, factor), scaled(self.high, factor)

    def derivation_parts(self) -> tuple[str, ...]:
        """What a derived band depends on beyond its statement (for idempotent signal ids)."""
        return ("derived", str(self.prior_period), str(self.prior_actual)) if self.derived else ()


def scaled(value: Decimal | None, factor: Decimal) -> float | None:
    return None if value is None else float(value / factor)


@dataclass(frozen=True)
class BandCheck:
    """What Guidepost said about one guided figure at one time (a scorecard entry)."""

    metric: str
    period: str
    low: float | None
    high: float | None
    point: float
    lo80: float
    hi80: float
    lo95: float
    hi95: float
    p_below: float
    p_inside: float
    p_above: float
    distance_to_band: float
    state: str
    scale: str
    currency: str
    forecast_event_id: str
    guidance_event_id: str
    checked_at: str
    confidence: float | None = None  # the probability of the side the state calls
    confidence_word: str | None = None
    band_source: str = "stated"  # or "derived" from the prior year and a stated growth
    derived_from: str | None = None
    prior_period: str | None = None
    prior_actual: float | None = None
    yoy_low_pct: float | None = None
    yoy_high_pct: float | None = None
    # ISO time: what the call knew, the latest knowledge time of the forecasts it judged (the
    # alert timeline places the call there, not at `checked_at`, when it was processed)
    known_at: str | None = None

    def same_call(self, other: BandCheck) -> bool:
        """Made from the same forecast against the same guidance (one scorecard entry)."""
        return (self.forecast_event_id, self.guidance_event_id) == (
            other.forecast_event_id,
            other.guidance_event_id,
        )


@dataclass(frozen=True)
class Distribution:
    """A predictive distribution of one guided figure: a quarter's forecast, or a fiscal year's
    reported quarters plus its remaining quarters' forecasts. Money in `scale` units, one of
    which is `scale_factor` whole currency units."""

    metric: str
    period: str
    point: float
    lo80: float
    hi80: float
    lo95: float
    hi95: float
    quantiles: tuple[tuple[float, float], ...]
    scale: str
    scale_factor: Decimal
    currency: str
    source_id: str
    known_at: str | None = None  # ISO time: the latest knowledge time of the forecasts in it


def fiscal_year_total(
    *, period: str, reported: Sequence[Decimal], remaining: Sequence[Distribution], source_id: str
) -> Distribution:
    """Sum of reported quarters (whole units) and the remaining quarters' distributions, taken
    as independent (see `combine_fiscal_year`); money in the first remaining quarter's scale."""
    first = remaining[0]
    actual = [float(value / first.scale_factor) for value in reported]
    grid = combine_fiscal_year(
        reported=actual, remaining_quantiles=[d.quantiles for d in remaining]
    )

    def at(probability: float) -> float:
        return min(grid, key=lambda pair: abs(pair[0] - probability))[1]

    return Distribution(
        metric=first.metric,
        period=period,
        point=sum(actual) + sum(d.point for d in remaining),
        lo80=at(0.1),
        hi80=at(0.9),
        lo95=at(0.025),
        hi95=at(0.975),
        quantiles=grid,
        scale=first.scale,
        scale_factor=first.scale_factor,
        currency=first.currency,
        source_id=source_id,
        known_at=_latest(d.known_at for d in remaining),
    )


def _latest(times: Iterable[str | None]) -> str | None:
    known = [t for t in times if t]
    return max(known, key=datetime.fromisoformat) if known else None


def call_band(
    distribution: Distribution,
    *,
    band: GuidedBand,
    guidance_event_id: str,
    previous_state: str | None,
    checked_at: str,
) -> BandCheck:
    """Probabilities of landing below, inside, above the band (`band_probabilities`, the one
    implementation), the hysteretic call and how confident it is."""
    low, high = band.bounds_in(distribution.scale_factor)
    probabilities = band_probabilities(distribution.quantiles, low=low, high=high)
    p_below, p_inside, p_above = probabilities.as_tuple()
    state = next_band_state(
        known_state(previous_state), p_below=p_below, p_inside=p_inside, p_above=p_above
    )
    confidence = state_probability(state, p_below=p_below, p_inside=p_inside, p_above=p_above)
    point = distribution.point
    return BandCheck(
        metric=distribution.metric,
        period=distribution.period,
        low=low,
        high=high,
        point=point,
        lo80=distribution.lo80,
        hi80=distribution.hi80,
        lo95=distribution.lo95,
        hi95=distribution.hi95,
        p_below=p_below,
        p_inside=p_inside,
        p_above=p_above,
        distance_to_band=distance_to_nearer_bound(point=point, low=low, high=high),
        state=state.value,
        scale=distribution.scale,
        currency=distribution.currency,
        forecast_event_id=distribution.source_id,
        guidance_event_id=guidance_event_id,
        checked_at=checked_at,
        known_at=distribution.known_at,
        confidence=confidence,
        confidence_word=confidence_word(confidence),
        **_derivation_fields(band, distribution.scale_factor),
    )


def known_state(text: str | None) -> BandState | None:
    """The previous call; a state name this version no longer uses starts the call afresh."""
    try:
        return BandState(text) if text else None
    except ValueError:
        return None


def _derivation_fields(band: GuidedBand, factor: Decimal) -> dict[str, Any]:
    if not band.derived:
        return {}
    return {
        "band_source": "derived",
        "derived_from": derivation_text(band, factor),
        "prior_period": band.prior_period,
        "prior_actual": scaled(band.prior_actual, factor),
        "yoy_low_pct": scaled(band.yoy_low_pct, Decimal(1)),
        "yoy_high_pct": scaled(band.yoy_high_pct, Decimal(1)),
    }


def record_call(calls: Sequence[BandCheck], check: BandCheck) -> list[BandCheck]:
    """The scorecard with `check` added, unless a call from the same forecast and guidance is
    already on it (a redelivered forecast is one call, kept as first made)."""
    if any(c.same_call(check) for c in calls):
        return list(calls)
    return [*calls, check]


# --------------------------------------------------------------------------- wording


def derivation_text(band: GuidedBand, factor: Decimal) -> str:
    """'the 2023Q2 actual of 1,093.4 grown +7.0% to +12.5%' (money in `factor` units)."""
    prior = scaled(band.prior_actual, factor)
    return f"the {band.prior_period} actual of {prior:,.1f} grown {growth_text(band)}"


def growth_text(band: GuidedBand) -> str:
    low, high = band.yoy_low_pct, band.yoy_high_pct
    if low is not None and high is not None:
        return f"{low:+.1f}% to {high:+.1f}%"
    return f"at least {low:+.1f}%" if low is not None else f"at most {high:+.1f}%"


def band_text(low: float | None, high: float | None) -> str:
    """'1,170.0–1,230.0', 'at least 1,170.0' or 'at most 1,230.0'."""
    if low is not None and high is not None:
        return f"{low:,.1f}–{high:,.1f}"
    return f"at least {low:,.1f}" if low is not None else f"at most {high:,.1f}"


def band_rounding(bounds: tuple[Decimal, Decimal], factor: Decimal) -> float:
    """Half a unit of the last digit the band was stated to, in `factor` units."""
    steps = [Decimal(1).scaleb(_trailing_zero_digits(b)) for b in bounds]
    return float(min(steps) / factor) / 2


def _trailing_zero_digits(value: Decimal) -> int:
    digits = str(abs(value.to_integral()))
    return len(digits) - len(digits.rstrip("0")) if digits != "0" else 0
