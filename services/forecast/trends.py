"""Trend models for percentage-rate series: delinquency rates and collection rates.

Pure numerical core: numpy, pandas, scipy and statsmodels only. Input is a pandas Series of
percentages with a PeriodIndex of any frequency (quarters, months, days). Missing periods and NaN
values stay gaps: every observation keeps its true position in time, so slopes are per period,
never per observation, and nothing is interpolated.

Model choice. Level and slope come from ordinary least squares of the rate on time (period
offsets) over the observed points, with heteroskedasticity-and-autocorrelation-consistent
(Newey-West) standard errors and Student-t inference. A local linear trend state-space model would
also take NaN natively, but on the short, gappy histories this service sees (a dozen quarterly
points) its maximum-likelihood variance estimates collapse or explode from one quarter to the next;
the straight line with HAC errors is stable, answers the question asked ("is the rate moving, and by
how much per period?") and its interval is honest about serial correlation.

Alongside it: a Mann-Kendall trend test (with tie correction) and a Theil-Sen slope as
distribution-free second opinions, and a CUSUM binary-segmentation detector for mean shifts.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd
import statsmodels.api as sm
from scipy import stats

FloatArray = npt.NDArray[np.float64]

RATE_FLOOR = 0.0
RATE_CEILING = 100.0
VERDICTS = ("improving", "stable", "deteriorating", "insufficient_data")
_MIN_FIT_POINTS = 3  # a line with a residual variance needs n - 2 >= 1


@dataclass(frozen=True)
class TrendSpec:
    """Options for `fit_trend`.

    higher_is_worse: True for delinquency rates, False for collection rates.
    alpha: significance level of the tests; intervals are at 1 - alpha.
    min_points: fewer observed points than this gives the verdict 'insufficient_data'.
    material_slope: smallest slope that matters, in percentage points per period of the series'
        own frequency (per quarter for quarterly data, per day for daily data).
    window: if set, only the last `window` periods (observed or not) are used.
    min_segment: fewest observations on either side of a change point.
    """

    higher_is_worse: bool = True
    alpha: float = 0.05
    min_points: int = 4
    material_slope: float = 0.05
    window: int | None = None
    min_segment: int = 3

    def __post_init__(self) -> None:
        if not 0.0 < self.alpha < 1.0:
            raise ValueError(f"alpha must lie strictly between 0 and 1, got {self.alpha}")
        if self.min_points < _MIN_FIT_POINTS:
            raise ValueError(f"min_points must be >= {_MIN_FIT_POINTS}, got {self.min_points}")
        if not self.material_slope >= 0.0:
            raise ValueError(f"material_slope must be >= 0 pp/period, got {self.material_slope}")
        if self.window is not None and self.window < self.min_points:
            raise ValueError(f"window ({self.window}) must be >= min_points ({self.min_points})")
        if self.min_segment < 1:
            raise ValueError(f"min_segment must be at least 1, got {self.min_segment}")


@dataclass(frozen=True)
class ChangePoint:
    """A shift in the mean: `period` is the first period of the new regime; `shift` in pp."""

    period: str
    direction: str  # 'up' | 'down'
    shift: float
    statistic: float


@dataclass(frozen=True)
class TrendResult:
    """Everything `fit_trend` concludes about one rate series (rates and slopes in pp)."""

    metric: str
    n_obs: int
    last_period: str
    level: float
    slope: float
    slope_lo: float
    slope_hi: float
    mann_kendall_tau: float
    mann_kendall_p: float
    sen_slope: float
    change_points: tuple[ChangePoint, ...]
    verdict: str
    confidence: float
    next_period: str
    next_forecast: float
    next_lo: float
    next_hi: float


@dataclass(frozen=True)
class MannKendall:
    """Mann-Kendall test: S statistic, its tie-corrected variance, z score, tau and p-value."""

    s: int
    var_s: float
    z: float
    tau: float
    p_value: float


@dataclass(frozen=True)
class MeanShift:
    """A split found by `detect_change_points`: `index` starts the new segment."""

    index: int
    shift: float
    statistic: float


@dataclass(frozen=True)
class _Observed:
    periods: pd.PeriodIndex  # contiguous, one entry per period, gaps included
    positions: FloatArray  # period offsets of the observed points
    values: FloatArray


@dataclass(frozen=True)
class _Line:
    level: float  # fitted value at the last observed period
    slope: float
    cov: FloatArray  # HAC covariance of (level, slope)
    scale: float  # residual variance
    df: int


# --------------------------------------------------------------------------- public helpers


def mann_kendall(values: Sequence[float] | FloatArray) -> MannKendall:
    """Mann-Kendall trend test on values in time order.

    S = sum_{i<j} sign(x_j - x_i);
    Var(S) = [n(n-1)(2n+5) - sum_g t_g(t_g-1)(2t_g+5)] / 18 over groups of t_g tied values;
    z = (S - sign(S)) / sqrt(Var(S)) (continuity correction); two-sided p = erfc(|z| / sqrt 2);
    tau = S / (n(n-1)/2) (Kendall's tau-a).
    """
    x = np.asarray(values, dtype=float)
    n = len(x)
    if n < 2 or not np.all(np.isfinite(x)):
        raise ValueError(f"Mann-Kendall needs at least 2 finite values, got {x.tolist()}")
    s = int(sum(np.sign(x[i + 1 :] - x[i]).sum() for i in range(n - 1)))
    _, ties = np.unique(x, return_counts=True)
    var_s = float(n * (n - 1) * (2 * n + 5) - np.sum(ties * (ties - 1) * (2 * ties + 5))) / 18.0
    z = (s - np.sign(s)) / math.sqrt(var_s) if var_s > 0 else 0.0
    p_value = math.erfc(abs(z) / math.sqrt(2.0))
    return MannKendall(s=s, var_s=var_s, z=float(z), tau=s / (n * (n - 1) / 2), p_value=p_value)


def sen_slope(
    positions: Sequence[float] | FloatArray, values: Sequence[float] | FloatArray
) -> float:
    """Theil-Sen slope: median over i<j of (x_j - x_i) / (t_j - t_i), in value units per period.

    Positions are the true period offsets, so gaps widen the denominators rather than vanish.
    """
    t = np.asarray(positions, dtype=float)
    x = np.asarray(values, dtype=float)
    slopes = [(x[i + 1 :] - x[i]) / (t[i + 1 :] - t[i]) for i in range(len(x) - 1)]
    if not slopes:
        raise ValueError("Theil-Sen slope needs at least 2 points")
    return float(np.median(np.concatenate(slopes)))


def detect_change_points(
    values: Sequence[float] | FloatArray, *, alpha: float = 0.05, min_segment: int = 3
) -> tuple[MeanShift, ...]:
    """Mean shifts by binary segmentation with a CUSUM statistic.

    In a segment y_1..y_m: C_k = |sum_{i<=k} (y_i - mean(y))| / (sigma sqrt(m)). Without a shift,
    max_k C_k tends to the supremum of a Brownian bridge, so a split is accepted when it exceeds
    the Kolmogorov quantile at 1 - alpha (1.358 at 5 %). sigma is estimated once, robustly, from
    the median absolute deviation of first differences, which a mean shift barely moves.
    A steady trend also looks like a sequence of shifts, so expect change points on trending data.
    """
    y = np.asarray(values, dtype=float)
    sigma = _robust_noise_sd(y)
    if sigma == 0.0:
        return ()
    critical = float(stats.kstwobign.ppf(1.0 - alpha))
    found: list[MeanShift] = []
    _segment(y, 0, len(y), sigma=sigma, critical=critical, min_segment=min_segment, out=found)
    return tuple(sorted(found, key=lambda split: split.index))


# --------------------------------------------------------------------------- fit_trend


def fit_trend(series: pd.Series, *, metric: str, spec: TrendSpec = TrendSpec()) -> TrendResult:
    """Level, slope, trend tests, change points, verdict and a one-period forecast of a rate.

    The rate is in percent (0..100); slopes are in percentage points per period.
    """
    observed = _observe(series, window=spec.window)
    next_period = str(observed.periods[-1] + 1)
    if len(observed.values) < spec.min_points:
        return _insufficient(observed, metric=metric, next_period=next_period)
    line = _fit_line(observed.positions, observed.values)
    slope_se = math.sqrt(line.cov[1, 1])
    t_crit = float(stats.t.ppf(1.0 - spec.alpha / 2.0, line.df))
    mk = mann_kendall(observed.values)
    verdict, confidence = _verdict(line, slope_se, mk, spec)
    forecast, lo, hi = _forecast_next(line, observed, t_crit)
    return TrendResult(
        metric=metric,
        n_obs=len(observed.values),
        last_period=_label(observed, -1),
        level=line.level,
        slope=line.slope,
        slope_lo=line.slope - t_crit * slope_se,
        slope_hi=line.slope + t_crit * slope_se,
        mann_kendall_tau=mk.tau,
        mann_kendall_p=mk.p_value,
        sen_slope=sen_slope(observed.positions, observed.values),
        change_points=_change_points(observed, spec),
        verdict=verdict,
        confidence=confidence,
        next_period=next_period,
        next_forecast=forecast,
        next_lo=lo,
        next_hi=hi,
    )


# --------------------------------------------------------------------------- internals


def _observe(series: pd.Series, *, window: int | None) -> _Observed:
    """Reindex onto the full period range (gaps become NaN), then keep the observed points."""
    if not isinstance(series.index, pd.PeriodIndex):
        kind = type(series.index).__name__
        raise TypeError(f"series needs a PeriodIndex (quarters, months or days), got {kind}")
    if series.empty:
        raise ValueError("series is empty; give at least one period")
    if series.index.has_duplicates:
        raise ValueError("series has duplicate periods; give one value per period")
    ordered = series.sort_index().astype(float)
    index = ordered.index
    assert isinstance(index, pd.PeriodIndex)
    full = pd.period_range(index[0], index[-1], freq=index.freq)
    values: FloatArray = np.asarray(ordered.reindex(full).to_numpy(), dtype=np.float64)
    if window is not None:
        full, values = full[-window:], values[-window:]
    _check_rates(values)
    mask = np.isfinite(values)
    return _Observed(
        periods=full, positions=np.flatnonzero(mask).astype(float), values=values[mask]
    )


def _check_rates(values: FloatArray) -> None:
    finite = values[np.isfinite(values)]
    if np.any((finite < RATE_FLOOR) | (finite > RATE_CEILING)):
        raise ValueError(f"rates must be percentages in 0..100, got {finite.tolist()}")


def _label(observed: _Observed, i: int) -> str:
    return str(observed.periods[int(observed.positions[i])])


def _insufficient(observed: _Observed, *, metric: str, next_period: str) -> TrendResult:
    has_any = len(observed.values) > 0
    nan = math.nan
    return TrendResult(
        metric=metric,
        n_obs=len(observed.values),
        last_period=_label(observed, -1) if has_any else str(observed.periods[-1]),
        level=float(observed.values[-1]) if has_any else nan,
        slope=nan,
        slope_lo=nan,
        slope_hi=nan,
        mann_kendall_tau=nan,
        mann_kendall_p=nan,
        sen_slope=nan,
        change_points=(),
        verdict="insufficient_data",
        confidence=0.0,
        next_period=next_period,
        next_forecast=nan,
        next_lo=nan,
        next_hi=nan,
    )


def _hac_lags(n: int) -> int:
    """Newey-West rule of thumb: floor(4 (n/100)^(2/9))."""
    lags: float = 4.0 * (n / 100.0) ** (2.0 / 9.0)
    return math.floor(lags)


def _fit_line(positions: FloatArray, values: FloatArray) -> _Line:
    """y = level + slope * (t - t_last) + e, by OLS with HAC covariance.

    Centring time on the last observed period makes the intercept the current level.
    """
    x = sm.add_constant(positions - positions[-1], has_constant="add")
    fit = sm.OLS(values, x).fit(
        cov_type="HAC",
        cov_kwds={"maxlags": _hac_lags(len(values)), "use_correction": True},
        use_t=True,
    )
    level, slope = (float(v) for v in fit.params)
    return _Line(
        level=level,
        slope=slope,
        cov=np.asarray(fit.cov_params(), dtype=float),
        scale=float(fit.scale),
        df=int(fit.df_resid),
    )


def _verdict(line: _Line, slope_se: float, mk: MannKendall, spec: TrendSpec) -> tuple[str, float]:
    """'deteriorating'/'improving' when the move is significant in both tests and material.

    Significant: the 1 - alpha slope interval excludes 0 and Mann-Kendall rejects at alpha, in the
    same direction. Material: |slope| >= material_slope. Confidence is the probability, under the
    slope's t distribution, that the true slope lies in the verdict's region: beyond
    +-material_slope in the verdict's direction, or within +-material_slope for 'stable'.
    """
    t_p = 2.0 * float(stats.t.sf(abs(line.slope) / slope_se, line.df)) if slope_se > 0 else 0.0
    agree = np.sign(line.slope) == np.sign(mk.s)
    significant = bool(agree) and t_p < spec.alpha and mk.p_value < spec.alpha
    m = spec.material_slope
    if not (significant and abs(line.slope) >= m):
        return "stable", _slope_probability(line, slope_se, low=-m, high=m)
    rising = line.slope > 0
    region = (m, math.inf) if rising else (-math.inf, -m)
    confidence = _slope_probability(line, slope_se, low=region[0], high=region[1])
    return ("deteriorating" if rising == spec.higher_is_worse else "improving"), confidence


def _slope_probability(line: _Line, slope_se: float, *, low: float, high: float) -> float:
    """P(low <= beta <= high) for beta ~ slope + se * t(df)."""
    if slope_se == 0.0:
        return float(low <= line.slope <= high)
    dist = stats.t(line.df, loc=line.slope, scale=slope_se)
    return float(np.clip(dist.cdf(high) - dist.cdf(low), 0.0, 1.0))


def _forecast_next(line: _Line, observed: _Observed, t_crit: float) -> tuple[float, float, float]:
    """Point forecast and 1 - alpha prediction interval for the period after the series ends.

    yhat = level + slope * h with h periods past the last observation;
    Var = g' Cov g + sigma^2 with g = (1, h). Clipped to 0..100 because the target is a rate.
    """
    h = float(len(observed.periods)) - observed.positions[-1]
    g = np.array([1.0, h])
    mean = line.level + line.slope * h
    half = t_crit * math.sqrt(float(g @ line.cov @ g) + line.scale)
    lo, mid, hi = np.clip([mean - half, mean, mean + half], RATE_FLOOR, RATE_CEILING)
    return float(mid), float(lo), float(hi)


def _change_points(observed: _Observed, spec: TrendSpec) -> tuple[ChangePoint, ...]:
    splits = detect_change_points(observed.values, alpha=spec.alpha, min_segment=spec.min_segment)
    return tuple(
        ChangePoint(
            period=_label(observed, split.index),
            direction="up" if split.shift > 0 else "down",
            shift=split.shift,
            statistic=split.statistic,
        )
        for split in splits
    )


def _robust_noise_sd(y: FloatArray) -> float:
    """sigma = MAD(diff y) / (0.6745 sqrt 2), falling back to sd(diff y) / sqrt 2 if MAD is 0."""
    if len(y) < 3:
        return 0.0
    d = np.diff(y)
    mad = float(np.median(np.abs(d - np.median(d))))
    if mad > 0.0:
        return mad / (0.6745 * math.sqrt(2.0))
    return float(np.std(d, ddof=1)) / math.sqrt(2.0)


def _segment(
    y: FloatArray,
    start: int,
    stop: int,
    *,
    sigma: float,
    critical: float,
    min_segment: int,
    out: list[MeanShift],
) -> None:
    """Split y[start:stop] at its CUSUM maximum if significant, then recurse on both halves."""
    m = stop - start
    if m < 2 * min_segment:
        return
    segment = y[start:stop]
    cusum = np.abs(np.cumsum(segment - segment.mean()))[:-1] / (sigma * math.sqrt(m))
    candidates = np.arange(min_segment, m - min_segment + 1)  # k values on the first side
    k = int(candidates[np.argmax(cusum[candidates - 1])])
    statistic = float(cusum[k - 1])
    if statistic <= critical:
        return
    shift = float(segment[k:].mean() - segment[:k].mean())
    out.append(MeanShift(index=start + k, shift=shift, statistic=statistic))
    _segment(y, start, start + k, sigma=sigma, critical=critical, min_segment=min_segment, out=out)
    _segment(y, start + k, stop, sigma=sigma, critical=critical, min_segment=min_segment, out=out)
