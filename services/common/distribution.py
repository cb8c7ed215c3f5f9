"""A predictive distribution given as a quantile grid: the one home of its CDF, density, band
probabilities, linear pools and scores.

Pure: numpy and scipy only. A grid is a sequence of (probability, value) pairs, probabilities
strictly increasing in (0, 1) and values non-decreasing. Between grid points the CDF is linear (the
density is constant on each step); beyond the outermost points each tail is exponential,
P(X < v₁ − d) = p₁·exp(−d/b₁), with b₁ matched to the first step so that the density is
continuous there, and likewise above. Exponential tails are heavier than normal ones: an actual
far beyond the grid costs a finite, honest log score. Every band probability the service shows
(the backtest, the live band check, fiscal-year bands, the demo, the API) comes from
`band_probabilities` here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import stats

FloatArray = npt.NDArray[np.float64]
QuantileGrid = Sequence[tuple[float, float]]
_MIN_STEP = 1e-9  # relative spread given to tied grid values so the CDF stays invertible


@dataclass(frozen=True)
class BandProbabilities:
    """P(below low), P(inside [low, high]), P(above high); they sum to 1."""

    p_below: float
    p_inside: float
    p_above: float

    def as_tuple(self) -> tuple[float, float, float]:
        return self.p_below, self.p_inside, self.p_above


@dataclass(frozen=True)
class Grid:
    """A validated quantile grid with its tail scales (value units)."""

    p: FloatArray
    v: FloatArray
    lower_scale: float
    upper_scale: float

    @classmethod
    def of(cls, quantiles: QuantileGrid) -> Grid:
        arr = np.asarray(quantiles, dtype=float)
        if arr.ndim != 2 or arr.shape[1] != 2 or len(arr) < 2:
            raise ValueError(f"expected at least two (probability, value) pairs, got {quantiles}")
        p, v = arr[:, 0], arr[:, 1]
        if not (np.all(np.isfinite(arr)) and p[0] > 0.0 and p[-1] < 1.0):
            raise ValueError(f"grid probabilities must lie in (0, 1) and be finite, got {p}")
        if np.any(np.diff(p) <= 0):
            raise ValueError(f"grid probabilities must be strictly increasing, got {p}")
        if np.any(np.diff(v) < 0):
            raise ValueError(f"grid values must be non-decreasing, got {v}")
        v = _untie(v)
        lower = _tail_scale(v[1] - v[0], p[0], p[1])
        upper = _tail_scale(v[-1] - v[-2], 1.0 - p[-1], 1.0 - p[-2])
        return cls(p=p, v=v, lower_scale=lower, upper_scale=upper)

    def cdf(self, x: npt.ArrayLike) -> FloatArray:
        """F(x), vectorised."""
        xs = np.asarray(x, dtype=float)
        inside = np.interp(xs, self.v, self.p)
        with np.errstate(over="ignore"):
            below = self.p[0] * np.exp(-(self.v[0] - xs) / self.lower_scale)
            above = 1.0 - (1.0 - self.p[-1]) * np.exp(-(xs - self.v[-1]) / self.upper_scale)
        out: FloatArray = np.where(xs < self.v[0], below, np.where(xs > self.v[-1], above, inside))
        return out

    def log_density(self, x: npt.ArrayLike) -> FloatArray:
        """log f(x), vectorised: constant on each grid step, exponential in the tails."""
        xs = np.asarray(x, dtype=float)
        steps = np.diff(self.p) / np.diff(self.v)
        index = np.clip(np.searchsorted(self.v, xs, side="right") - 1, 0, steps.size - 1)
        inside = np.log(steps[index])
        below = math.log(self.p[0] / self.lower_scale) - (self.v[0] - xs) / self.lower_scale
        above = math.log((1 - self.p[-1]) / self.upper_scale) - (xs - self.v[-1]) / self.upper_scale
        out: FloatArray = np.where(xs < self.v[0], below, np.where(xs > self.v[-1], above, inside))
        return out

    def quantile(self, probability: npt.ArrayLike) -> FloatArray:
        """F⁻¹(u), vectorised, for u in (0, 1)."""
        u = np.asarray(probability, dtype=float)
        inside = np.interp(u, self.p, self.v)
        with np.errstate(divide="ignore"):
            below = self.v[0] + self.lower_scale * np.log(u / self.p[0])
            above = self.v[-1] - self.upper_scale * np.log((1 - u) / (1 - self.p[-1]))
        out: FloatArray = np.where(u < self.p[0], below, np.where(u > self.p[-1], above, inside))
        return out


def _untie(values: FloatArray) -> FloatArray:
    """Spread tied values by a negligible relative step (a point mass becomes a narrow box)."""
    spread = _MIN_STEP * max(1.0, float(np.max(np.abs(values))))
    steps = np.maximum(np.diff(values), spread)
    return np.concatenate(([values[0]], values[0] + np.cumsum(steps)))


def _tail_scale(step: float, p_end: float, p_inner: float) -> float:
    """b with density p_end/b at the end equal to the first step's (p_inner − p_end)/step."""
    return float(step * p_end / (p_inner - p_end))


def cdf(quantiles: QuantileGrid, x: float) -> float:
    return float(Grid.of(quantiles).cdf(x))


def band_probabilities(
    quantiles: QuantileGrid, *, low: float | None, high: float | None
) -> BandProbabilities:
    """P(below low), P(inside), P(above high) of a band; either bound may be absent (a band
    stated as "at least" or "at most"), in which case that side's probability is 0."""
    if low is None and high is None:
        raise ValueError("a band needs at least one bound")
    if low is not None and high is not None and high < low:
        raise ValueError(f"band needs low <= high, got low={low}, high={high}")
    grid = Grid.of(quantiles)
    below = 0.0 if low is None else float(grid.cdf(low))
    above = 0.0 if high is None else 1.0 - float(grid.cdf(high))
    return BandProbabilities(below, max(0.0, 1.0 - below - above), above)


def linear_pool(
    grids: Sequence[QuantileGrid], weights: Sequence[float], probabilities: Sequence[float]
) -> tuple[tuple[float, float], ...]:
    """Quantiles at ``probabilities`` of the mixture Σ wₖ Fₖ (weights normalised to 1).

    Each quantile is found by bisection on the mixture CDF between the smallest and largest
    component quantile at that probability (the mixture's quantile lies between them).
    """
    parts = [Grid.of(g) for g, w in zip(grids, weights, strict=True) if w > 0]
    share = np.array([w for w in weights if w > 0], dtype=float)
    if not parts:
        raise ValueError("a linear pool needs a component with positive weight")
    share = share / share.sum()
    probs = np.asarray(probabilities, dtype=float)
    ends = np.array([g.quantile(probs) for g in parts])
    lo, hi = ends.min(axis=0), ends.max(axis=0)
    for _ in range(60):
        mid = (lo + hi) / 2
        below = sum(w * g.cdf(mid) for w, g in zip(share, parts, strict=True)) < probs
        lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
    values = np.maximum.accumulate((lo + hi) / 2)
    return tuple((float(p), float(v)) for p, v in zip(probs, values, strict=True))


def pool_log_density(grids: Sequence[QuantileGrid], weights: Sequence[float], x: float) -> float:
    """log Σ wₖ fₖ(x) (weights normalised to 1)."""
    share = np.asarray(weights, dtype=float)
    share = share / share.sum()
    logs = np.array([float(Grid.of(g).log_density(x)) for g in grids])
    keep = share > 0
    top = float(np.max(logs[keep]))
    return top + math.log(float(np.sum(share[keep] * np.exp(logs[keep] - top))))


# --------------------------------------------------------------------------- fiscal years


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
    quarter q's quantile function (`Grid.quantile`: linear between grid points, exponential
    tails, the same distribution every band probability is computed from).
    Z is standard normal with equal correlation `rho` between quarters (a Gaussian copula);
    rho = 0, the default, assumes the quarters independent, which understates the spread when a
    common shock drives them all. Returns quantiles of the total at `probabilities`, by default
    the first remaining quarter's grid probabilities.
    """
    grids = [Grid.of(q) for q in remaining_quantiles]
    probs = _output_probabilities(grids, probabilities)
    known = float(np.sum(reported))
    if not grids:
        return tuple((p, known) for p in probs)
    z = _copula_normals(len(grids), n_samples=n_samples, seed=seed, rho=rho)
    u = np.clip(stats.norm.cdf(z), _U_FLOOR, 1.0 - _U_FLOOR)
    totals = known + sum(grid.quantile(u[:, i]) for i, grid in enumerate(grids))
    values = np.quantile(totals, probs)
    return tuple((float(p), float(v)) for p, v in zip(probs, values, strict=True))


_U_FLOOR = 1e-12  # keeps Phi(z) off 0 and 1, where a tail quantile would be infinite


def _output_probabilities(grids: list[Grid], requested: Sequence[float] | None) -> list[float]:
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


# --------------------------------------------------------------------------- proper scores

OUTCOMES = ("below", "inside", "above")


def band_outcome(actual: float, *, low: float | None, high: float | None) -> str:
    """Where an actual landed: 'below' low, 'inside' (bounds included) or 'above' high."""
    if low is not None and actual < low:
        return "below"
    if high is not None and actual > high:
        return "above"
    return "inside"


def brier(probabilities: BandProbabilities, outcome: str) -> float:
    """Σ over the three classes of (pₖ − oₖ)²: 0 for a sure right call, 2 for a sure wrong one,
    2/3 for the uniform call whatever happens."""
    hit = np.array([outcome == name for name in OUTCOMES], dtype=float)
    return float(np.sum((np.array(probabilities.as_tuple()) - hit) ** 2))


def ranked_probability_score(probabilities: BandProbabilities, outcome: str) -> float:
    """Σ over the two class boundaries of (Pₖ − Oₖ)², P and O cumulative over below < inside <
    above: a call one class off costs less than one two classes off."""
    hit = np.array([outcome == name for name in OUTCOMES], dtype=float)
    cumulative = np.cumsum(probabilities.as_tuple())[:-1] - np.cumsum(hit)[:-1]
    return float(np.sum(cumulative**2))


def log_score(probabilities: BandProbabilities, outcome: str, *, floor: float = 1e-6) -> float:
    """−log P(outcome), the probability floored so a sure wrong call costs a finite amount."""
    chosen = dict(zip(OUTCOMES, probabilities.as_tuple(), strict=True))[outcome]
    return -math.log(max(chosen, floor))


@dataclass(frozen=True)
class ScoredCall:
    """A band call against where the actual landed: the band, P(below / inside / above), the
    outcome and the call's proper scores."""

    low: float | None
    high: float | None
    p_below: float
    p_inside: float
    p_above: float
    outcome: str
    brier: float
    rps: float
    log_score: float


def score_call(
    quantiles: QuantileGrid, *, low: float | None, high: float | None, actual: float
) -> ScoredCall:
    probs = band_probabilities(quantiles, low=low, high=high)
    outcome = band_outcome(actual, low=low, high=high)
    return ScoredCall(
        low,
        high,
        *probs.as_tuple(),
        outcome,
        brier(probs, outcome),
        ranked_probability_score(probs, outcome),
        log_score(probs, outcome),
    )


def pit(quantiles: QuantileGrid, actual: float) -> float:
    """The probability integral transform F(actual): uniform when the forecasts are calibrated."""
    return cdf(quantiles, actual)
