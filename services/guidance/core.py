"""Guidance arithmetic and band logic: revisions, year-on-year checks, band states, outcomes.

Pure numerical core: standard library, numpy and scipy only. Amounts are in the currency units the
guidance is stated in (e.g. RMB million); percentages are in percent (7.0 means +7.0 %).
A quantile grid is a sequence of (probability, value) pairs with probabilities strictly increasing
in (0, 1) and values strictly increasing (or all equal: a point mass).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import numpy.typing as npt
from scipy import stats

FloatArray = npt.NDArray[np.float64]
QuantileGrid = Sequence[tuple[float, float]]

REVISIONS = ("initial", "raised", "lowered", "maintained", "narrowed", "widened", "withdrawn")


# --------------------------------------------------------------------------- bands and revisions


@dataclass(frozen=True)
class Band:
    """A guidance range [low, high] in the guided figure's units; low == high is point guidance."""

    low: float
    high: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.low) and math.isfinite(self.high)):
            raise ValueError(f"band bounds must be finite, got low={self.low}, high={self.high}")
        if self.low > self.high:
            raise ValueError(f"band low must be <= high, got low={self.low}, high={self.high}")

    @property
    def midpoint(self) -> float:
        """(low + high) / 2."""
        return (self.low + self.high) / 2.0

    @property
    def width(self) -> float:
        """high - low."""
        return self.high - self.low


def classify_revision(previous: Band | None, new: Band | None, *, tolerance: float = 1e-9) -> str:
    """Name the change from the previous band to the new one.

    Each bound moves up, down or not at all (a move of at most `tolerance`, in the band's units,
    counts as no move):
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
    low_move = _move(previous.low, new.low, tolerance)
    high_move = _move(previous.high, new.high, tolerance)
    return _REVISION_BY_MOVES[(low_move, high_move)]


def _move(before: float, after: float, tolerance: float) -> int:
    """+1 up, -1 down, 0 when |after - before| <= tolerance."""
    if abs(after - before) <= tolerance:
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
    band = Band(low=low, high=high)
    if prior_actual <= 0.0:
        raise ValueError(f"prior_actual must be positive for a growth rate, got {prior_actual}")
    half_pct = 0.5 * 10.0 ** (-pct_decimals)
    intervals = [
        _allowed_prior(bound, pct, half_pct=half_pct, band_rounding=band_rounding)
        for bound, pct in ((band.low, yoy_low_pct), (band.high, yoy_high_pct))
    ]
    implied = [band.low / _growth_factor(yoy_low_pct), band.high / _growth_factor(yoy_high_pct)]
    consistent = all(lo <= prior_actual <= hi for lo, hi in intervals)
    tolerance = max(max(hi - v, v - lo) for (lo, hi), v in zip(intervals, implied, strict=True))
    explanation = _explain(
        band, yoy_low_pct, yoy_high_pct, prior_actual, implied, tolerance, consistent
    )
    return ArithmeticCheck(
        consistent=consistent,
        implied_prior_low=implied[0],
        implied_prior_high=implied[1],
        prior_actual=prior_actual,
        tolerance=tolerance,
        explanation=explanation,
    )


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
    band: Band,
    yoy_low_pct: float,
    yoy_high_pct: float,
    prior: float,
    implied: list[float],
    tolerance: float,
    consistent: bool,
) -> str:
    growth_low = (band.low / prior - 1.0) * 100.0
    growth_high = (band.high / prior - 1.0) * 100.0
    head = "Consistent" if consistent else "Inconsistent"
    return (
        f"{head}: {band.low:,.1f}–{band.high:,.1f} at {yoy_low_pct:+.1f}% to {yoy_high_pct:+.1f}% "
        f"implies a prior-year figure of {implied[0]:,.1f} (low end) and {implied[1]:,.1f} "
        f"(high end), ±{tolerance:,.1f} for rounding; the recorded prior of {prior:,.1f} "
        f"gives {growth_low:+.2f}% to {growth_high:+.2f}%."
    )


# --------------------------------------------------------------------------- band state


class BandState(StrEnum):
    """Where the forecast stands against the guidance band."""

    ON_TRACK = "on_track"
    AT_RISK = "at_risk_of_missing"
    LIKELY_BEAT = "likely_to_beat"


@dataclass(frozen=True)
class HysteresisSpec:
    """Enter a state when its probability reaches `enter_*`; leave only when it falls to `exit_*`.

    The gap between enter and exit keeps a probability wandering around one threshold from
    toggling alerts. `switch_margin` is how far the opposite side's probability must lead before
    the state jumps straight across the band (at-risk to likely-to-beat or back) while the current
    side is still above its exit threshold; it keeps a split, two-sided forecast from flapping.
    """

    enter_at_risk: float = 0.5
    exit_at_risk: float = 0.35
    enter_beat: float = 0.5
    exit_beat: float = 0.35
    switch_margin: float = 0.15

    def __post_init__(self) -> None:
        for name, enter, leave in (
            ("at_risk", self.enter_at_risk, self.exit_at_risk),
            ("beat", self.enter_beat, self.exit_beat),
        ):
            if not 0.0 <= leave < enter <= 1.0:
                raise ValueError(
                    f"{name}: need 0 <= exit < enter <= 1, got exit={leave}, enter={enter}"
                )
        if not 0.0 < self.switch_margin <= 1.0:
            raise ValueError(f"switch_margin must lie in (0, 1], got {self.switch_margin}")


def next_band_state(
    previous: BandState | None,
    *,
    p_below: float,
    p_above: float,
    spec: HysteresisSpec = HysteresisSpec(),
) -> BandState:
    """Next state from P(result below band) and P(result above band), with hysteresis.

    A state is entered when its probability >= its enter threshold and kept while that
    probability stays > its exit threshold; after leaving, the state is chosen afresh. The one
    shortcut: at-risk jumps to likely-to-beat (and back) when the opposite side reaches its enter
    threshold and leads the current side by at least `switch_margin`. So an oscillation around any
    single threshold, or between two near-equal split forecasts, changes the state at most once.
    When both entry conditions hold on a fresh choice (only at 0.5/0.5 with the defaults),
    at-risk wins, missing being the costlier news to suppress.
    """
    _check_probabilities(p_below, p_above)
    if previous is BandState.AT_RISK and p_below > spec.exit_at_risk:
        jump = _enters_beat(p_above, spec) and p_above - p_below >= spec.switch_margin
        return BandState.LIKELY_BEAT if jump else BandState.AT_RISK
    if previous is BandState.LIKELY_BEAT and p_above > spec.exit_beat:
        jump = _enters_at_risk(p_below, spec) and p_below - p_above >= spec.switch_margin
        return BandState.AT_RISK if jump else BandState.LIKELY_BEAT
    return _fresh_state(p_below=p_below, p_above=p_above, spec=spec)


def _fresh_state(*, p_below: float, p_above: float, spec: HysteresisSpec) -> BandState:
    if _enters_at_risk(p_below, spec):
        return BandState.AT_RISK
    if _enters_beat(p_above, spec):
        return BandState.LIKELY_BEAT
    return BandState.ON_TRACK


def _enters_at_risk(p_below: float, spec: HysteresisSpec) -> bool:
    return p_below >= spec.enter_at_risk


def _enters_beat(p_above: float, spec: HysteresisSpec) -> bool:
    return p_above >= spec.enter_beat


def _check_probabilities(p_below: float, p_above: float) -> None:
    if not (0.0 <= p_below <= 1.0 and 0.0 <= p_above <= 1.0 and p_below + p_above <= 1.0 + 1e-9):
        raise ValueError(
            f"need probabilities in 0..1 with p_below + p_above <= 1, "
            f"got p_below={p_below}, p_above={p_above}"
        )


# --------------------------------------------------------------------------- outcomes


@dataclass(frozen=True)
class Outcome:
    """A reported actual against its band.

    verdict: 'beat' (above high), 'in_line' (inside, bounds included) or 'miss' (below low).
    vs_midpoint: 'above' | 'at' | 'below' the midpoint, within the midpoint tolerance.
    surprise_vs_mid_pct: (actual - midpoint) / |midpoint| * 100, NaN for a zero midpoint.
    distance_to_band: `distance_to_nearer_bound` of the actual, in the band's units.
    """

    verdict: str
    vs_midpoint: str
    surprise_vs_mid_pct: float
    distance_to_band: float


def classify_outcome(
    *, actual: float, low: float, high: float, midpoint_tolerance: float = 0.005
) -> Outcome:
    """Classify an actual against [low, high].

    `midpoint_tolerance` is relative to the midpoint's size: the actual is 'at' the midpoint when
    |actual - midpoint| <= midpoint_tolerance * |midpoint| (default 0.5 %).
    """
    band = Band(low=low, high=high)
    mid = band.midpoint
    return Outcome(
        verdict="beat" if actual > high else "miss" if actual < low else "in_line",
        vs_midpoint=_vs_midpoint(actual, mid, midpoint_tolerance * abs(mid)),
        surprise_vs_mid_pct=(actual - mid) / abs(mid) * 100.0 if mid != 0.0 else math.nan,
        distance_to_band=distance_to_nearer_bound(point=actual, low=low, high=high),
    )


def _vs_midpoint(actual: float, mid: float, tolerance: float) -> str:
    if abs(actual - mid) <= tolerance:
        return "at"
    return "above" if actual > mid else "below"


def distance_to_nearer_bound(*, point: float, low: float, high: float) -> float:
    """Signed distance from the band, in the band's units.

    point - low (negative) below the band, point - high (positive) above it, and 0 inside
    (bounds included): how far a figure must move to land in the band.
    """
    band = Band(low=low, high=high)
    if point < band.low:
        return point - band.low
    if point > band.high:
        return point - band.high
    return 0.0


# --------------------------------------------------------------------------- quantile grids


@dataclass(frozen=True)
class _Grid:
    p: FloatArray
    v: FloatArray
    z: FloatArray  # standard normal scores of p
    lower_scale: float  # value units per normal-score unit, below the grid
    upper_scale: float  # ... and above it


def _grid(quantiles: QuantileGrid) -> _Grid:
    """Validate a quantile grid and fit its normal tails.

    Beyond the outermost points the distribution continues as a normal tail matched to the two
    outermost points: v = v_1 + (z - z_1) * (v_2 - v_1) / (z_2 - z_1), and likewise at the top.
    A grid of normal quantiles is then exact in both tails.
    """
    arr = np.asarray(quantiles, dtype=float)
    if arr.ndim != 2 or arr.shape[1] != 2 or len(arr) < 1:
        raise ValueError(f"expected a grid of (probability, value) pairs, got {quantiles}")
    p, v = arr[:, 0], arr[:, 1]
    if np.any(np.diff(p) <= 0) or p[0] <= 0.0 or p[-1] >= 1.0:
        raise ValueError(f"grid probabilities must be strictly increasing in (0, 1), got {p}")
    point_mass = bool(np.all(v == v[0]))
    if not point_mass and (len(v) < 2 or np.any(np.diff(v) <= 0)):
        raise ValueError(f"grid values must be strictly increasing (or all equal), got {v}")
    z = stats.norm.ppf(p)
    if point_mass:
        return _Grid(p=p, v=v, z=z, lower_scale=0.0, upper_scale=0.0)
    lower = (v[1] - v[0]) / (z[1] - z[0])
    upper = (v[-1] - v[-2]) / (z[-1] - z[-2])
    return _Grid(p=p, v=v, z=z, lower_scale=float(lower), upper_scale=float(upper))


def _cdf(grid: _Grid, x: float) -> float:
    """F(x): linear between grid points, normal tails outside; a step for a point mass."""
    if grid.lower_scale == 0.0:
        return 1.0 if x >= grid.v[0] else 0.0
    if x < grid.v[0]:
        return float(stats.norm.cdf(grid.z[0] + (x - grid.v[0]) / grid.lower_scale))
    if x > grid.v[-1]:
        return float(stats.norm.cdf(grid.z[-1] + (x - grid.v[-1]) / grid.upper_scale))
    return float(np.interp(x, grid.v, grid.p))


def _quantile(grid: _Grid, z: FloatArray) -> FloatArray:
    """Inverse of `_cdf` at u = Phi(z), vectorised; z avoids rounding u to 0 or 1 in the tails."""
    u = stats.norm.cdf(z)
    inside = np.interp(u, grid.p, grid.v)
    below = grid.v[0] + (z - grid.z[0]) * grid.lower_scale
    above = grid.v[-1] + (z - grid.z[-1]) * grid.upper_scale
    out: FloatArray = np.where(u < grid.p[0], below, np.where(u > grid.p[-1], above, inside))
    return out


def probabilities_from_quantiles(
    quantiles: QuantileGrid, *, low: float, high: float
) -> tuple[float, float, float]:
    """(P(below), P(inside), P(above)) of the band [low, high] under a quantile grid.

    P(below) = F(low), P(above) = 1 - F(high), P(inside) = F(high) - F(low), with F linear between
    grid points and normal tails beyond them (see `_grid`). The three sum to 1.
    """
    band = Band(low=low, high=high)
    grid = _grid(quantiles)
    below = _cdf(grid, band.low)
    at_or_below_high = _cdf(grid, band.high)
    return below, at_or_below_high - below, 1.0 - at_or_below_high


def combine_fiscal_year(
    *,
    reported: Sequence[float],
    remaining_quantiles: Sequence[QuantileGrid],
    n_samples: int = 20000,
    seed: int = 0,
    rho: float = 0.0,
    probabilities: Sequence[float] | None = None,
) -> tuple[tuple[float, float], ...]:
    """Quantile grid of a fiscal-year total: reported quarters plus the remaining quarters.

    total = sum(reported) + sum_q X_q, X_q = Q_q(Phi(Z_q)) by inverse-CDF sampling, where Q_q is
    quarter q's quantile function (linear in probability between grid points, normal tails).
    Z is standard normal with equal correlation `rho` between quarters (a Gaussian copula);
    rho = 0, the default, assumes the quarters independent, which understates the spread when a
    common shock drives them all. Returns quantiles of the total at `probabilities`, by default
    the first remaining quarter's grid probabilities.
    """
    grids = [_grid(q) for q in remaining_quantiles]
    probs = _output_probabilities(grids, probabilities)
    known = float(np.sum(reported))
    if not grids:
        return tuple((p, known) for p in probs)
    z = _copula_normals(len(grids), n_samples=n_samples, seed=seed, rho=rho)
    totals = known + sum(_quantile(grid, z[:, i]) for i, grid in enumerate(grids))
    values = np.quantile(totals, probs)
    return tuple((float(p), float(v)) for p, v in zip(probs, values, strict=True))


def _output_probabilities(grids: list[_Grid], requested: Sequence[float] | None) -> list[float]:
    if requested is not None:
        return [float(p) for p in requested]
    if not grids:
        raise ValueError("no remaining quarters: pass `probabilities` for the output grid")
    return [float(p) for p in grids[0].p]


def _copula_normals(k: int, *, n_samples: int, seed: int, rho: float) -> FloatArray:
    """n_samples x k standard normals with corr(Z_i, Z_j) = rho for i != j.

    Z_i = sqrt(rho) W + sqrt(1 - rho) E_i, for rho in [0, 1].
    """
    if not 0.0 <= rho <= 1.0:
        raise ValueError(f"rho must lie in [0, 1], got {rho}")
    if n_samples < 1:
        raise ValueError(f"n_samples must be positive, got {n_samples}")
    rng = np.random.default_rng(seed)
    common = rng.standard_normal((n_samples, 1))
    own = rng.standard_normal((n_samples, k))
    z: FloatArray = math.sqrt(rho) * common + math.sqrt(1.0 - rho) * own
    return z
