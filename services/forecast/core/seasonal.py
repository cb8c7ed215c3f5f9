"""Real-time seasonal adjustment: each quarter's seasonal factor from the quarters before it.

Classical decomposition (the one statsmodels' ``seasonal_decompose`` and ``ThetaModel`` use):
a centred 2×4 moving average estimates the trend, the seasonal-irregular ratio y/MA (or the
difference y − MA for series that are not strictly positive) of each quarter is averaged per
quarter of the year, and the averages are normalised to mean 1 (or 0). Two departures make it
fit a rolling-origin forecaster:

- *Real time*: the factor of position t uses only ratios whose moving-average window closed
  before t, so a forecast of quarter t never sees y_t or later (no look-ahead), and the
  adjusted history a forecast sees is the one that was known then.
- *Evolving*: ratios are weighted 0.5^(age/half_life) in the average, so a seasonal pattern
  that drifts over the years is followed (tourism flows, product mixes).

Seasonality is used only where the test says it exists: the one-way ANOVA F-test of the ratios
grouped by quarter of the year (the stable-seasonality test of X-11 / X-13ARIMA-SEATS) at
level ``test_level``, on every ratio known at that time. Elsewhere the factor is neutral
(1 or 0), so a series without a seasonal pattern passes through unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

PERIOD = 4
MIN_RATIOS_PER_QUARTER = 2


@dataclass(frozen=True)
class SeasonalFactors:
    """``factor[t]``: the seasonal factor of position t known before t; ``seasonal[t]``:
    whether the test found seasonality then. Multiplicative factors divide the series,
    additive ones are subtracted."""

    factor: np.ndarray
    seasonal: np.ndarray
    multiplicative: bool

    def adjust(self, values: np.ndarray) -> np.ndarray:
        """Raw values at every position → seasonally adjusted values."""
        return self.to_adjusted(values, self.factor)

    def to_adjusted(self, values: np.ndarray, factor: np.ndarray | float) -> np.ndarray:
        if self.multiplicative:
            return np.asarray(values / factor)
        return np.asarray(values - factor)

    def to_raw(self, values: np.ndarray, factor: np.ndarray | float) -> np.ndarray:
        if self.multiplicative:
            return np.asarray(values * factor)
        return np.asarray(values + factor)


def neutral(size: int) -> SeasonalFactors:
    return SeasonalFactors(np.ones(size), np.zeros(size, dtype=bool), True)


def realtime_factors(
    y: np.ndarray,
    n_hist: int,
    *,
    half_life: float,
    test_level: float,
    period: int = PERIOD,
) -> SeasonalFactors:
    """Seasonal factors of every position of ``y`` (NaN where unknown; positions ``n_hist``
    and later are the future and use everything observed). Vectorised with running sums:
    the ratios known before t are those at positions p ≤ t − 1 − period/2."""
    size = y.size
    known = y[:n_hist][np.isfinite(y[:n_hist])]
    multiplicative = bool(known.size == 0 or np.all(known > 0))
    ratio = _ratios(y[:n_hist], period, multiplicative)
    lag = period // 2 + 1  # a ratio at p is known once y_{p + period/2} is
    cutoff = np.minimum(np.arange(size), n_hist) - lag  # last ratio position known before t
    counts, sums, squares, weighted, weights = _running(ratio, period, half_life)
    index = np.clip(cutoff, -1, n_hist - 1)
    seasonal = _stable_seasonality(counts, sums, squares, index, test_level)
    means = _weighted_means(weighted, weights, index, multiplicative)
    quarter = np.arange(size) % period
    chosen = means[np.arange(size), quarter]
    neutral_value = 1.0 if multiplicative else 0.0
    factor = np.where(seasonal, chosen, neutral_value)
    return SeasonalFactors(factor, seasonal, multiplicative)


def _ratios(y: np.ndarray, period: int, multiplicative: bool) -> np.ndarray:
    """Seasonal-irregular ratio at each position whose centred 2×period window is complete."""
    weights = np.r_[0.5, np.ones(period - 1), 0.5] / period
    half = period // 2
    ratio = np.full(y.size, np.nan)
    if y.size <= period:
        return ratio
    trend = np.convolve(np.nan_to_num(y), weights, mode="valid")
    complete = np.convolve(np.isfinite(y).astype(float), np.ones(period + 1), mode="valid")
    centre = slice(half, y.size - half)
    with np.errstate(divide="ignore", invalid="ignore"):
        values = y[centre] / trend if multiplicative else y[centre] - trend
    ratio[centre] = np.where(complete == period + 1, values, np.nan)
    return ratio


def _running(ratio: np.ndarray, period: int, half_life: float) -> tuple[np.ndarray, ...]:
    """Per position p and quarter q: count, sum and sum of squares of ratios at positions ≤ p
    in quarter q, and their sums weighted by 0.5^(−p/half_life) (the common decay 0.5^(t/h)
    cancels in a weighted mean)."""
    ok = np.isfinite(ratio)
    onehot = (np.arange(ratio.size)[:, None] % period == np.arange(period)[None, :]) & ok[:, None]
    values = np.where(ok, ratio, 0.0)[:, None] * onehot
    growth = 0.5 ** (-np.arange(ratio.size) / half_life)[:, None]
    return (
        np.cumsum(onehot, axis=0),
        np.cumsum(values, axis=0),
        np.cumsum(values**2, axis=0),
        np.cumsum(values * growth, axis=0),
        np.cumsum(onehot * growth, axis=0),
    )


def _at(running: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Running sums at ``index`` (zeros where index is −1)."""
    padded = np.vstack((np.zeros((1, running.shape[1])), running))
    return np.asarray(padded[index + 1])


def _stable_seasonality(
    counts: np.ndarray,
    sums: np.ndarray,
    squares: np.ndarray,
    index: np.ndarray,
    level: float,
) -> np.ndarray:
    """One-way ANOVA of the ratios known at each position, grouped by quarter of the year."""
    n_q, s_q, ss_q = _at(counts, index), _at(sums, index), _at(squares, index)
    n = n_q.sum(axis=1)
    groups = n_q.shape[1]
    enough = np.all(n_q >= MIN_RATIOS_PER_QUARTER, axis=1) & (n > groups)
    with np.errstate(divide="ignore", invalid="ignore"):
        grand = s_q.sum(axis=1) / n
        between = np.sum(s_q**2 / n_q, axis=1) - n * grand**2
        within = ss_q.sum(axis=1) - np.sum(s_q**2 / n_q, axis=1)
        f = (between / (groups - 1)) / (within / (n - groups))
    testable = enough & np.isfinite(f)
    found = np.zeros(index.size, dtype=bool)
    if testable.any():  # the F distribution only where there is something to test
        p_value = stats.f.sf(f[testable], groups - 1, n[testable] - groups)
        found[testable] = p_value < level
    return found


def _weighted_means(
    weighted: np.ndarray, weights: np.ndarray, index: np.ndarray, multiplicative: bool
) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        means = _at(weighted, index) / _at(weights, index)
    centre = means.mean(axis=1, keepdims=True)
    return np.asarray(means / centre if multiplicative else means - centre)
