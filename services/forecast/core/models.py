"""Candidate models as causal one-step predictors over a quarterly series with gaps.

Every model maps the series ``y`` (NaN where unknown) to ``pred`` of the same length, where
``pred[i]`` is the forecast of ``y[i]`` from values at positions before ``i`` only: parameters
selected on a prefix, drivers nowcast from their own past. One pass therefore yields both the
rolling-origin backtest (expanding window, no look-ahead) and the forecasts beyond the end.

Gaps: the state-space models (damped trend, local linear trend, local level) predict through a
missing quarter without updating, which is how a Kalman filter treats NaN; the naive baselines
use the last observed value; nothing is interpolated into fake observations.

Parameters of the smoothing models are chosen on a small fixed grid by the exact prefix criterion
(sum of squared one-step errors, or the concentrated Gaussian likelihood), vectorised over the
grid: the same recursions statsmodels' ``ExponentialSmoothing`` and ``UnobservedComponents``
run (the unit tests check both against statsmodels), at a small fraction of the cost of a
numerical optimiser per origin.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from services.forecast.core.seasonal import SeasonalFactors, neutral, realtime_factors

DIFFUSE = 1e6
HOLT_ALPHA = (0.1, 0.3, 0.5, 0.7, 0.9, 1.0)
HOLT_BETA = (0.0, 0.1, 0.3)
HOLT_PHI = (0.8, 0.9, 0.98)
LLT_LEVEL_RATIO = (0.01, 0.1, 0.3, 1.0, 3.0, 10.0, 100.0)
LLT_SLOPE_RATIO = (0.0, 0.01, 0.1, 1.0)
LEVEL_GRID_STEP = 0.25
LEVEL_REFINE = 8
GROWTH_WINDOW = 4
GROWTH_PSEUDO_ZEROS = 4.0
HW_ALPHA = (0.1, 0.3, 0.5, 0.8)
HW_BETA = (0.0, 0.1)
HW_PHI = (0.9, 0.98)
HW_GAMMA = (0.05, 0.2, 0.5)
SES_ALPHA = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


@dataclass(frozen=True)
class Series:
    """A metric on a contiguous quarterly grid; positions ``n_hist`` and later are the future.

    ``drivers`` maps a driver name to its values on the same grid (NaN when unknown);
    ``guidance`` maps a position to (position the guidance was issued in, guided midpoint).
    ``y`` is seasonally adjusted by ``season`` (``seasonal.py``); ``raw`` is the series as
    reported. The candidates forecast ``y``; seasonal ones read ``raw``.
    """

    y: np.ndarray
    n_hist: int
    start_ordinal: int
    drivers: dict[str, np.ndarray] = field(default_factory=dict)
    guidance: dict[int, tuple[int, float]] = field(default_factory=dict)
    half_life: float = 8.0
    season: SeasonalFactors | None = None

    @property
    def raw(self) -> np.ndarray:
        return self.y if self.season is None else self.season.to_raw(self.y, self.season.factor)

    @property
    def observed(self) -> np.ndarray:
        return np.asarray(np.isfinite(self.y))


@dataclass(frozen=True)
class ModelRun:
    """``pred[i]``: forecast of y[i] from the past; ``params``: what an update keeps fixed."""

    pred: np.ndarray
    params: tuple[float, ...]
    driver_values: dict[str, np.ndarray] = field(default_factory=dict)
    driver_effects: dict[str, np.ndarray] = field(default_factory=dict)


ModelFn = Callable[[Series, "tuple[float, ...] | None", int], ModelRun]


def last_observed_index(observed: np.ndarray) -> np.ndarray:
    """For each position, the index of the last observed position strictly before it (-1)."""
    idx = np.where(observed, np.arange(observed.size), -1)
    running = np.maximum.accumulate(idx)
    return np.concatenate(([-1], running[:-1]))


def count_before(observed: np.ndarray) -> np.ndarray:
    """Number of observed positions strictly before each position."""
    return np.concatenate(([0], np.cumsum(observed)[:-1]))


def naive(series: Series, fixed: tuple[float, ...] | None, min_obs: int) -> ModelRun:
    """Last observed value: ŷ_i = y_j, j the last observed position before i."""
    last = last_observed_index(series.observed)
    pred = np.where(last >= 0, series.y[np.maximum(last, 0)], np.nan)
    return ModelRun(pred, ())


def drift(series: Series, fixed: tuple[float, ...] | None, min_obs: int) -> ModelRun:
    """Random walk with drift: ŷ_i = y_j + (i - j)·(y_j - y_first)/(j - first)."""
    observed = series.observed
    last = last_observed_index(observed)
    first = int(np.argmax(observed)) if observed.any() else -1
    positions = np.arange(series.y.size)
    ok = (last > first) & (first >= 0)
    lastv = series.y[np.maximum(last, 0)]
    slope = (lastv - series.y[max(first, 0)]) / np.where(ok, last - first, 1)
    pred = np.where(ok, lastv + (positions - last) * slope, np.nan)
    return ModelRun(pred, ())


def seasonal_naive(series: Series, fixed: tuple[float, ...] | None, min_obs: int) -> ModelRun:
    """Same quarter one year earlier, ŷ_i = y_{i-4} as reported, where the series is seasonal
    at i (unavailable otherwise, or when that quarter is missing); returned seasonally
    adjusted like every candidate."""
    season = series.season
    if season is None:
        return ModelRun(np.full(series.y.size, np.nan), ())
    year_ago = np.concatenate((np.full(4, np.nan), series.raw[:-4]))
    adjusted = season.to_adjusted(year_ago, season.factor)
    return ModelRun(np.where(season.seasonal, adjusted, np.nan), ())


def theta(series: Series, fixed: tuple[float, ...] | None, min_obs: int) -> ModelRun:
    """The Theta method (statsmodels ``ThetaModel`` with ``use_mle=False``, θ = 2) on the
    seasonally adjusted series, where the series is seasonal: simple exponential smoothing,
    started at the first observation with α minimising the squared one-step errors so far,
    plus half the least-squares slope b₀ of the observations so far on time:
    ŷ_i = ℓ_i + ½·b₀·(1/α − (1 − α)^T/α), T the number of observations before i.
    Across a gap the slope is per quarter and the level predicts through.
    """
    if not _ever_seasonal(series):
        return ModelRun(np.full(series.y.size, np.nan), ())
    alphas = SES_ALPHA if not fixed else (fixed[0],)  # () from a fit that was not seasonal
    grid = np.array([[a, 0.0, 1.0] for a in alphas])
    paths = holt_paths(series.y, grid)
    sq = np.nan_to_num((series.y[:, None] - paths) ** 2, nan=0.0)
    score = -_exclusive_cumsum(sq)
    chosen = _select(series, paths, score, grid, min_obs)
    alpha = grid[np.argmax(score, axis=1), 0]
    slope, count = _prefix_slope(series.y, series.observed)
    with np.errstate(divide="ignore", invalid="ignore"):
        drift = 0.5 * slope * (1.0 / alpha - (1.0 - alpha) ** count / alpha)
    pred = chosen.pred + np.where(np.isfinite(drift), drift, 0.0)
    return ModelRun(_where_seasonal(series, pred), (float(chosen.params[0]),))


def _ever_seasonal(series: Series) -> bool:
    return series.season is not None and bool(series.season.seasonal.any())


def _where_seasonal(series: Series, pred: np.ndarray) -> np.ndarray:
    """The seasonal candidates speak only where the series is seasonal (``seasonal.py``)."""
    if series.season is None:
        return np.full(pred.size, np.nan)
    return np.where(series.season.seasonal, pred, np.nan)


def _prefix_slope(y: np.ndarray, observed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares slope of the observations before each position on their positions, and
    how many there were (slope NaN before two)."""
    t = np.arange(y.size, dtype=float)
    values = np.where(observed, y, 0.0)
    weight = observed.astype(float)
    n = _exclusive_cumsum(weight)
    st, sy = _exclusive_cumsum(t * weight), _exclusive_cumsum(values)
    stt, sty = _exclusive_cumsum(t * t * weight), _exclusive_cumsum(t * values)
    with np.errstate(divide="ignore", invalid="ignore"):
        slope = (n * sty - st * sy) / (n * stt - st**2)
    return np.where(n >= 2, slope, np.nan), n


def holt_winters_grid() -> np.ndarray:
    """Grid of (α, β, φ, γ) in statsmodels' ``ExponentialSmoothing`` convention."""
    mesh = np.array(np.meshgrid(HW_ALPHA, HW_BETA, HW_PHI, HW_GAMMA, indexing="ij"))
    return mesh.reshape(4, -1).T


def holt_winters_paths(y: np.ndarray, grid: np.ndarray, *, multiplicative: bool) -> np.ndarray:
    """Holt-Winters one-step forecasts (additive damped trend, seasonal period 4), one column
    per (α, β, φ, γ) row; statsmodels ``ExponentialSmoothing(trend="add", damped_trend=True,
    seasonal="mul" | "add", seasonal_periods=4)`` with known initial values:

        ŷ_t = (ℓ + φb)·s_{t−4}   (or + s_{t−4})
        ℓ ← α·y_t/s_{t−4} + (1 − α)(ℓ + φb)
        b ← β(ℓ_new − ℓ) + (1 − β)φb
        s_t ← γ·y_t/(ℓ + φb) + (1 − γ)s_{t−4}

    Initialised on the first complete year: ℓ its mean, b = 0, s its ratios to ℓ (or
    differences); forecasts start after it. A missing y_t predicts through (ℓ ← ℓ + φb, the
    seasonal state kept).
    """
    alpha, beta, phi, gamma = (grid[:, k] for k in range(4))
    pred = np.full((y.size, len(grid)), np.nan)
    start = _first_complete_year(y)
    if start is None:
        return pred
    first = y[start : start + 4]
    level = np.full(len(grid), float(first.mean()))
    trend = np.zeros(len(grid))
    seasons = [np.full(len(grid), v / level[0] if multiplicative else v - level[0]) for v in first]
    for i in range(start + 4, y.size):
        phase = (i - start) % 4
        season = seasons[phase]
        base = level + phi * trend
        pred[i] = base * season if multiplicative else base + season
        if not np.isfinite(y[i]):
            level = base
            continue
        deseasoned = y[i] / season if multiplicative else y[i] - season
        new_level = alpha * deseasoned + (1 - alpha) * base
        seasons[phase] = (
            gamma * (y[i] / base if multiplicative else y[i] - base) + (1 - gamma) * season
        )
        trend = beta * (new_level - level) + (1 - beta) * phi * trend
        level = new_level
    return pred


def _first_complete_year(y: np.ndarray) -> int | None:
    observed = np.isfinite(y)
    runs = np.convolve(observed.astype(int), np.ones(4, dtype=int), mode="valid")
    full = np.flatnonzero(runs == 4)
    return int(full[0]) if full.size else None


def holt_winters(series: Series, fixed: tuple[float, ...] | None, min_obs: int) -> ModelRun:
    """Holt-Winters (ETS with season length 4) on the series as reported, where the series is
    seasonal; (α, β, φ, γ) minimise the squared one-step errors so far. Multiplicative
    seasonality for a positive series, additive otherwise. Returned seasonally adjusted."""
    season = series.season
    if season is None or not _ever_seasonal(series):
        return ModelRun(np.full(series.y.size, np.nan), ())
    grid = holt_winters_grid() if not fixed else np.array([fixed])
    raw = series.raw
    positive = bool(np.all(raw[np.isfinite(raw)] > 0))
    paths = holt_winters_paths(raw, grid, multiplicative=positive)
    sq = np.nan_to_num((raw[:, None] - paths) ** 2, nan=0.0)
    chosen = _select(series, paths, -_exclusive_cumsum(sq), grid, min_obs)
    adjusted = season.to_adjusted(chosen.pred, season.factor)
    return ModelRun(_where_seasonal(series, adjusted), chosen.params)


def holt_grid() -> np.ndarray:
    """Grid of (alpha, beta, phi) in statsmodels' ExponentialSmoothing convention."""
    mesh = np.array(np.meshgrid(HOLT_ALPHA, HOLT_BETA, HOLT_PHI, indexing="ij"))
    return mesh.reshape(3, -1).T


def holt_paths(y: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Damped-trend Holt one-step forecasts for each parameter row, shape (len(y), len(grid)).

    Error-correction form with e_i = y_i - (l + φb): l ← l + φb + αe, b ← φb + αβe; a missing
    y_i leaves e_i = 0 (predict through). Initialised at the first observation: l = y, b = 0.
    """
    alpha, beta, phi = grid[:, 0], grid[:, 1], grid[:, 2]
    pred = np.full((y.size, len(grid)), np.nan)
    level: np.ndarray | None = None
    trend = np.zeros(len(grid))
    for i, value in enumerate(y):
        if level is None:
            if np.isfinite(value):
                level = np.full(len(grid), value)
            continue
        guess = level + phi * trend
        pred[i] = guess
        error = value - guess if np.isfinite(value) else 0.0
        level = guess + alpha * error
        trend = phi * trend + alpha * beta * error
    return pred


def damped_trend(series: Series, fixed: tuple[float, ...] | None, min_obs: int) -> ModelRun:
    """Holt's damped trend; (α, β, φ) minimise the sum of squared one-step errors so far."""
    grid = holt_grid() if fixed is None else np.array([fixed])
    paths = holt_paths(series.y, grid)
    sq = np.nan_to_num((series.y[:, None] - paths) ** 2, nan=0.0)
    return _select(series, paths, -_exclusive_cumsum(sq), grid, min_obs)


def llt_grid() -> np.ndarray:
    """Grid of (σ²_level/σ²_irregular, σ²_slope/σ²_irregular)."""
    mesh = np.array(np.meshgrid(LLT_LEVEL_RATIO, LLT_SLOPE_RATIO, indexing="ij"))
    return mesh.reshape(2, -1).T


def llt_filter(y: np.ndarray, grid: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Kalman filter of the local linear trend with σ²_irregular = 1, per grid row.

    y_i = μ_i + ε_i, μ_{i+1} = μ_i + ν_i + η_i, ν_{i+1} = ν_i + ζ_i. Returns one-step predictions,
    innovations v and their variances F (NaN where y is missing or the state is still diffuse).
    The diffuse prior is approximated by P₀ = 10⁶·I on y divided by its first observed value.
    """
    observed = np.isfinite(y)
    scale = abs(float(y[observed][0])) if observed.any() else 1.0
    scale = scale if scale > 0 else 1.0
    z = y / scale
    q_level, q_slope = grid[:, 0], grid[:, 1]
    shape = (y.size, len(grid))
    pred, innov, var = np.full(shape, np.nan), np.full(shape, np.nan), np.full(shape, np.nan)
    a0, a1 = np.zeros(len(grid)), np.zeros(len(grid))
    p00, p01, p11 = np.full(len(grid), DIFFUSE), np.zeros(len(grid)), np.full(len(grid), DIFFUSE)
    seen = 0
    for i, value in enumerate(z):
        if seen >= 2:
            pred[i] = a0 * scale
        if np.isfinite(value):
            f = p00 + 1.0
            v = value - a0
            if seen >= 2:
                innov[i], var[i] = v, f
            k0, k1 = p00 / f, p01 / f
            a0, a1 = a0 + k0 * v, a1 + k1 * v
            p00, p01, p11 = p00 - k0 * p00, p01 - k0 * p01, p11 - k1 * p01
            seen += 1
        a0 = a0 + a1
        p00, p01, p11 = p00 + 2 * p01 + p11 + q_level, p01 + p11, p11 + q_slope
    return pred, innov, var


def llt_concentrated_loglik(innov: np.ndarray, var: np.ndarray) -> np.ndarray:
    """Prefix concentrated log-likelihood before each position, per grid row.

    ℓ = -n/2·(log 2π + 1 + log σ̂²) - ½Σ log F_i with σ̂² = Σ v_i²/F_i / n (v, F on the scaled y).
    """
    ok = np.isfinite(innov)
    n = _exclusive_cumsum(ok.astype(float))
    ssq = _exclusive_cumsum(np.where(ok, innov**2 / np.where(ok, var, 1.0), 0.0))
    logf = _exclusive_cumsum(np.where(ok, np.log(np.where(ok, var, 1.0)), 0.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        sigma2 = np.maximum(ssq / n, 1e-300)
        ll = -0.5 * n * (np.log(2 * np.pi) + 1 + np.log(sigma2)) - 0.5 * logf
    return np.where(n > 0, ll, 0.0)


def local_linear_trend(series: Series, fixed: tuple[float, ...] | None, min_obs: int) -> ModelRun:
    """Local linear trend (statsmodels ``UnobservedComponents('local linear trend')``).

    NaN is handled natively by the filter. Variance ratios maximise the concentrated likelihood
    of the observations so far.
    """
    grid = llt_grid() if fixed is None else np.array([fixed])
    pred, innov, var = llt_filter(series.y, grid)
    return _select(series, pred, llt_concentrated_loglik(innov, var), grid, min_obs)


def level_filter(y: np.ndarray, ratios: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Kalman filter of the local level y_i = μ_i + ε_i, μ_{i+1} = μ_i + η_i, one column per ratio.

    ``ratios`` = σ²_η/σ²_ε; the recursion runs with σ²_ε = 1 (predictions do not depend on the
    scale): F = P + 1, v = y - a, a ← a + (P/F)·v, P ← P/F, then P ← P + ratio; a missing y
    skips the update. Exact diffuse start: the first observation sets a = y and P = 1 and adds
    no innovation. Returns one-step predictions, innovations v and variances F, shape
    (len(y), len(ratios)), NaN where undefined.
    """
    shape = (y.size, ratios.size)
    pred, innov, var = np.full(shape, np.nan), np.full(shape, np.nan), np.full(shape, np.nan)
    level, p = np.full(ratios.size, np.nan), np.full(ratios.size, np.nan)
    seen = False
    for i, value in enumerate(y):
        pred[i] = level
        if np.isfinite(value) and seen:
            f = p + 1.0
            v = value - level
            innov[i], var[i] = v, f
            level, p = level + (p / f) * v, p / f
        elif np.isfinite(value):
            level, p, seen = np.full(ratios.size, value), np.ones(ratios.size), True
        p = p + ratios
    return pred, innov, var


def local_level_filter(y: np.ndarray, ratio: float) -> np.ndarray:
    """One-step predictions of the local level at one ratio σ²_η/σ²_ε (see ``level_filter``)."""
    return level_filter(y, np.array([float(ratio)]))[0][:, 0]


def level_profile(y: np.ndarray, ratios: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Predictions and prefix profile log-likelihood of the local level for a ratio per column.

    Column c of ``ratios`` (shape (len(y),) or (len(y), G)) is used for the whole series;
    returns ``pred[i, c]`` and ``ll[i, c]``, the likelihood of the observations before i with
    σ²_ε concentrated out (``llt_concentrated_loglik``; the diffuse first observation excluded).
    """
    pred, innov, var = level_filter(y, ratios)
    return pred, llt_concentrated_loglik(innov, var)


def level_ratios(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per position i, the ratio σ²_η/σ²_ε maximising the profile likelihood of the observations
    before i, and the prediction of y_i at that ratio.

    Grid search over 0 and 10^-4…10^4 (quarter-decade steps), then, where the best grid point
    is interior, ``LEVEL_REFINE`` parabolic steps in log₁₀(ratio) with shrinking half-width,
    each evaluating every position's three points in one filter pass.
    """
    grid = np.concatenate(([0.0], 10.0 ** np.arange(-4.0, 4.0 + 1e-9, LEVEL_GRID_STEP)))
    _, ll = level_profile(y, grid)
    best = np.argmax(ll, axis=1)
    interior = (best > 0) & (best < grid.size - 1)
    centre = np.log10(np.where(best > 0, grid[best], 1.0))
    width = np.full(y.size, LEVEL_GRID_STEP)
    rows = np.arange(y.size)
    for _ in range(LEVEL_REFINE):
        trial = centre[:, None] + width[:, None] * np.array([-1.0, 0.0, 1.0])
        _, ll3 = level_profile(y, 10.0 ** trial.ravel())
        step = np.clip(_parabola_vertex(ll3.reshape(y.size, y.size, 3)[rows, rows]), -1.0, 1.0)
        centre = np.where(interior, centre + step * width, centre)
        width = np.where(np.abs(step) < 1.0, width / 4.0, width)  # shrink once bracketed
    ratio = np.where(best > 0, 10.0**centre, 0.0)
    pred, _ = level_profile(y, ratio)
    return ratio, pred[np.arange(y.size), np.arange(y.size)]


def _parabola_vertex(ll: np.ndarray) -> np.ndarray:
    """Offset of the maximum of the parabola through (-1, 0, 1) ↦ ll, in units of the spacing."""
    curvature = ll[:, 0] - 2.0 * ll[:, 1] + ll[:, 2]
    with np.errstate(invalid="ignore", divide="ignore"):
        offset = 0.5 * (ll[:, 0] - ll[:, 2]) / curvature
    return np.where((curvature < 0) & np.isfinite(offset), offset, 0.0)


def local_level(series: Series, fixed: tuple[float, ...] | None, min_obs: int) -> ModelRun:
    """Local level (statsmodels ``UnobservedComponents('local level')`` with exact diffuse
    initialisation; simple exponential smoothing as a state-space model, nesting the naive
    forecast). With ``fixed`` = (ratio,) one recursion; otherwise the ratio σ²_η/σ²_ε is
    re-estimated at every origin by profile likelihood on the observations so far
    (``level_ratios``). ``params``: the ratio estimated on the whole history.
    """
    y = series.y
    if fixed is not None:
        return ModelRun(_enough(series, local_level_filter(y, fixed[0]), min_obs), fixed)
    ratio, pred = level_ratios(np.append(y, np.nan))  # the last row: the whole history
    return ModelRun(_enough(series, pred[:-1], min_obs), (float(ratio[-1]),))


def _enough(series: Series, pred: np.ndarray, min_obs: int) -> np.ndarray:
    return np.where(count_before(series.observed) >= max(min_obs, 3), pred, np.nan)


def growth(series: Series, fixed: tuple[float, ...] | None, min_obs: int) -> ModelRun:
    """Last value grown at the recent mean quarterly log growth, shrunk toward zero.

    g_k = log(y_k/y_{k'})/(k - k') over the last four pairs of consecutive observations,
    ĝ = n/(n + 4)·mean(g) (four pseudo-observations of zero growth), ŷ_i = y_j·exp(ĝ·(i - j)).
    Needs positive values; NaN otherwise.
    """
    y = series.y
    pred = np.full(y.size, np.nan)
    observed = np.flatnonzero(series.observed[: series.n_hist])
    first = max(min_obs, 3) - 1
    if observed.size <= first:
        return ModelRun(pred, ())
    values = y[observed]
    positive = values > 0
    logs = np.log(np.where(positive, values, 1.0))
    # rate[j]: growth per quarter from observation j-1 to j; each origin k averages the last
    # GROWTH_WINDOW of them (fewer early on), all at once with cumulative sums
    rate = np.concatenate(([0.0], np.diff(logs) / np.diff(observed)))
    k = np.arange(observed.size)
    since = np.maximum(k - GROWTH_WINDOW, 0)  # the first observation in origin k's window
    rate_sum = np.cumsum(rate)
    window_sum = rate_sum - rate_sum[since]
    bad = np.cumsum(~positive)
    bad_in_window: np.ndarray = bad - np.concatenate(([0], bad))[since]
    shrunk = window_sum / (k - since + GROWTH_PSEUDO_ZEROS)
    usable = (k >= first) & (bad_in_window == 0)
    # position p is forecast from the last observation before it (ŷ_p = y_k·exp(ĝ_k·(p − k)))
    positions = np.arange(y.size)
    origin = np.searchsorted(observed, positions, side="left") - 1
    covered = origin >= 0
    origin = np.where(covered, origin, 0)
    fill = covered & usable[origin]
    steps = positions - observed[origin]
    pred[fill] = (values[origin] * np.exp(shrunk[origin] * steps))[fill]
    return ModelRun(pred, ())


def _select(
    series: Series, paths: np.ndarray, score: np.ndarray, grid: np.ndarray, min_obs: int
) -> ModelRun:
    """Per position, the path of the grid row with the best score on the prefix."""
    best = np.argmax(score, axis=1)
    pred = paths[np.arange(paths.shape[0]), best]
    enough = count_before(series.observed) >= max(min_obs, 3)
    final = int(np.argmax(score[-1]))
    return ModelRun(np.where(enough, pred, np.nan), tuple(float(v) for v in grid[final]))


def _exclusive_cumsum(values: np.ndarray) -> np.ndarray:
    """Sum over positions strictly before each position (axis 0)."""
    total = np.cumsum(values, axis=0)
    return np.concatenate((np.zeros_like(total[:1]), total[:-1]), axis=0)


def decay_matrix(size: int, half_life: float) -> np.ndarray:
    """W[i, j] = 0.5^((i - j)/half_life) for j < i, else 0: weights of the past at each origin."""
    lag = np.arange(size)[:, None] - np.arange(size)[None, :]
    return np.where(lag > 0, 0.5 ** (np.maximum(lag, 0) / half_life), 0.0)


def drivers(series: Series, fixed: tuple[float, ...] | None, min_obs: int) -> ModelRun:
    """Average of one-driver weighted regressions y = a + b·x, each fit on the past only.

    A driver's value for a quarter whose y is unknown is used when the history has it (it is
    known before the result); otherwise, and always for backtest quarters, it is nowcast as its
    last observed value. Regressions weight past quarters by 0.5^(age/half_life) and need
    ``max(min_obs, 4)`` joint observations. Each regression's weight is 1/(residual variance).
    ``params``: 1.0/0.0 per driver name in ``series.drivers`` order, the set in use.
    """
    names = list(series.drivers)
    use = [True] * len(names) if fixed is None else [bool(v) for v in fixed]
    fits = [
        _one_driver(series, series.drivers[name], max(min_obs, 4))
        for name, on in zip(names, use, strict=True)
        if on
    ]
    used = [name for name, on in zip(names, use, strict=True) if on]
    if fixed is None:
        alive = [any(np.isfinite(f[0])) for f in fits]
        used = [name for name, ok in zip(used, alive, strict=True) if ok]
        fits = [f for f, ok in zip(fits, alive, strict=True) if ok]
    params = tuple(1.0 if name in used else 0.0 for name in names)
    if not fits:
        return ModelRun(np.full(series.y.size, np.nan), params)
    preds = np.array([f[0] for f in fits])
    precision = np.array([np.where(np.isfinite(f[0]), 1.0 / f[1], 0.0) for f in fits])
    total = precision.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = precision / total
        pred = np.nansum(np.nan_to_num(preds) * share, axis=0)
    pred = np.where(total > 0, pred, np.nan)
    effects = {name: share[k] * fits[k][2] for k, name in enumerate(used)}
    values = {name: fits[k][3] for k, name in enumerate(used)}
    return ModelRun(pred, params, values, effects)


def _one_driver(
    series: Series, x: np.ndarray, min_pairs: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Prediction, residual variance, effect b·(x_i - x̄) and driver value per position."""
    y = series.y
    nowcast = naive(Series(x, series.n_hist, series.start_ordinal), None, 1).pred
    known = np.isfinite(x) & ~np.isfinite(y)
    value = np.where(known, x, nowcast)
    pair = np.isfinite(x) & np.isfinite(y)
    w = decay_matrix(y.size, series.half_life) * pair[None, :]
    xs, ys = np.where(pair, x, 0.0), np.where(pair, y, 0.0)
    sw, n = w.sum(axis=1), (w > 0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mx, my = w @ xs / sw, w @ ys / sw
        sxx = w @ xs**2 / sw - mx**2
        sxy = w @ (xs * ys) / sw - mx * my
        slope = sxy / sxx
        intercept = my - slope * mx
        resid = w @ ys**2 / sw - my**2 - slope * sxy
        dof = np.maximum(n - 2, 1)
        variance = np.maximum(resid * n / dof, 1e-12 * np.maximum(my**2, 1.0))
    ok = (n >= min_pairs) & (sxx > 1e-12 * np.maximum(mx**2, 1.0)) & np.isfinite(value)
    pred = np.where(ok, intercept + slope * value, np.nan)
    effect = np.where(ok, slope * (value - mx), np.nan)
    return pred, variance, effect, value


def guidance(series: Series, fixed: tuple[float, ...] | None, min_obs: int) -> ModelRun:
    """Guided midpoint times the company's track record, where guidance exists for quarter i.

    ŷ_i = m_i·exp(Σ log(y_j/m_j) / (n + 2)) over past quarters j < i with guidance and an actual
    (shrunk toward the midpoint itself). Guidance counts only if issued before quarter i.
    """
    pred = np.full(series.y.size, np.nan)
    past: list[tuple[int, float]] = []
    for i in sorted(series.guidance):
        issued, mid = series.guidance[i]
        if i >= series.y.size or issued >= i or mid <= 0:
            continue
        record = [np.log(series.y[j] / m) for j, m in past if j < i and series.y[j] > 0]
        pred[i] = mid * np.exp(sum(record) / (len(record) + 2))
        if np.isfinite(series.y[i]):
            past.append((i, mid))
    return ModelRun(pred, ())


MODELS: dict[str, ModelFn] = {
    "naive": naive,
    "drift": drift,
    "seasonal_naive": seasonal_naive,
    "theta": theta,
    "holt_winters": holt_winters,
    "damped_trend": damped_trend,
    "local_linear_trend": local_linear_trend,
    "local_level": local_level,
    "growth": growth,
    "drivers": drivers,
    "guidance": guidance,
}


def make_series(
    history: pd.DataFrame,
    *,
    metric: str,
    horizon: int,
    driver_names: tuple[str, ...],
    guidance_mid: dict[pd.Period, tuple[pd.Period, float]],
    half_life: float,
    seasonal_half_life: float | None = None,
    seasonal_test_level: float = 0.1,
) -> Series:
    """The metric (and its drivers) on the history grid extended ``horizon`` quarters ahead,
    seasonally adjusted in real time unless ``seasonal_half_life`` is None."""
    if metric not in history.columns:
        raise ValueError(f"metric {metric!r} not in history columns {list(history.columns)}")
    start = history.index[0]
    n_hist = len(history)

    def extend(column: str) -> np.ndarray:
        values = history[column].to_numpy(dtype=float)
        return np.concatenate((values, np.full(horizon, np.nan)))

    names = [d for d in driver_names if d in history.columns and d != metric]
    raw = extend(metric)
    season = (
        neutral(raw.size)
        if seasonal_half_life is None
        else realtime_factors(
            raw, n_hist, half_life=seasonal_half_life, test_level=seasonal_test_level
        )
    )
    positions = {
        (period - start).n: ((issued - start).n, mid)
        for period, (issued, mid) in guidance_mid.items()
        if start <= period < start + raw.size
    }
    adjusted_mids = {
        i: (issued, float(season.to_adjusted(np.array(mid), season.factor[i])))
        for i, (issued, mid) in positions.items()
    }
    return Series(
        y=season.adjust(raw),
        n_hist=n_hist,
        start_ordinal=int(start.ordinal),
        drivers={name: extend(name) for name in names},
        guidance=adjusted_mids,
        half_life=half_life,
        season=season,
    )
