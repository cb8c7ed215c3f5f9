"""Frozen inputs and outputs of the forecasting core."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from services.common import distribution
from services.common.distribution import BandProbabilities as BandProbabilities

MODEL_NAMES = (
    "naive",
    "drift",
    "seasonal_naive",
    "theta",
    "holt_winters",
    "damped_trend",
    "local_linear_trend",
    "local_level",
    "growth",
    "drivers",
    "guidance",
)
# The guidance track-record candidate stays available, out of the default median: guidance
# now enters as evidence stacked with the statistical forecast (``guided.py``), not as a vote.
DEFAULT_MODELS = tuple(name for name in MODEL_NAMES if name != "guidance")
COMBINATIONS = ("median", "skill")
CALIBRATIONS = ("robust", "rms-empirical")
ERROR_SCALES = ("volatility", "level", "anchored")
QUANTILE_PROBABILITIES = (
    0.01,
    0.025,
    0.05,
    0.1,
    0.15,
    0.2,
    0.25,
    0.3,
    0.35,
    0.4,
    0.45,
    0.5,
    0.55,
    0.6,
    0.65,
    0.7,
    0.75,
    0.8,
    0.85,
    0.9,
    0.95,
    0.975,
    0.99,
)
DEFAULT_DRIVERS = ("total_net_revenue", "loan_volume", "outstanding_balance", "dpd90_rate_pct")


@dataclass(frozen=True)
class ForecastSpec:
    """Options of a fit. Every choice is generic: nothing depends on a company or metric name.

    ``half_life`` (quarters) down-weights old errors in model weights, in the calibration and
    in the driver regression, so that structural breaks fade out of the fit.
    ``combination``: "median" of the candidates (default) or "skill" (inverse shrunk MAE).
    ``calibration``: "rms-empirical" (RMS Student-t blended with empirical quantiles,
    ``half_life``; default) or "robust" (recency-weighted MAD scale, Student-t,
    ``calibration_half_life``).
    ``seasonal_half_life`` (quarters): the series is seasonally adjusted in real time where a
    stable-seasonality F-test at ``seasonal_test_level`` says it is seasonal, with seasonal
    factors weighted by age at this half-life (``seasonal.py``); None turns adjustment off.
    ``error_scale``: what errors are divided by before they are calibrated and pooled, and the
    interval multiplied by at the forecast origin: "anchored" (default: the mean absolute
    quarterly change of the last four changes, never below that of the last sixteen, so that
    a few calm quarters do not shrink the intervals of a series with breaks in its history),
    "volatility" (the last four changes only) or "level" (mean |value| of the last four).
    ``skewed``: for a positive series, errors are calibrated as log ratios of actual to
    forecast, so intervals stretch further up than down (capped at a twenty-fold ratio).
    The defaults were chosen together: on seeded synthetic families (random walk, trend, level
    shift, volatility regimes, gaps) volatility with rms-empirical kept 80% and 95% coverage
    closer to nominal than level with robust, which covered 82% at 95% once volatility rose;
    anchoring and log ratios left the M1 and Tourism coverage within a point of it and widened
    the bundled history's post-2022 intervals, made after calm quarters, by half.
    """

    levels: tuple[float, float] = (0.8, 0.95)
    min_train: int = 4
    backtest_start: str | None = None
    models: tuple[str, ...] = DEFAULT_MODELS
    full_refit_every: int = 4
    drivers: tuple[str, ...] = DEFAULT_DRIVERS
    half_life: float = 8.0
    max_horizon: int = 8
    quantile_probabilities: tuple[float, ...] = QUANTILE_PROBABILITIES
    combination: str = "median"
    calibration: str = "rms-empirical"
    calibration_half_life: float = 4.0
    error_scale: str = "anchored"
    skewed: bool = True
    seasonal_half_life: float | None = 12.0
    seasonal_test_level: float = 0.1

    def __post_init__(self) -> None:
        unknown = sorted(set(self.models) - set(MODEL_NAMES))
        if unknown:
            raise ValueError(f"unknown models {unknown}; choose from {MODEL_NAMES}")
        if self.combination not in COMBINATIONS:
            raise ValueError(f"combination must be one of {COMBINATIONS}, got {self.combination!r}")
        if self.calibration not in CALIBRATIONS:
            raise ValueError(f"calibration must be one of {CALIBRATIONS}, got {self.calibration!r}")
        if self.error_scale not in ERROR_SCALES:
            raise ValueError(f"error_scale must be one of {ERROR_SCALES}, got {self.error_scale!r}")
        if self.seasonal_half_life is not None and self.seasonal_half_life <= 0:
            raise ValueError(f"seasonal_half_life must be positive, got {self.seasonal_half_life}")
        if not 0 < self.seasonal_test_level < 1:
            raise ValueError(
                f"seasonal_test_level must lie in (0, 1), got {self.seasonal_test_level}"
            )
        if self.min_train < 2:
            raise ValueError(f"min_train must be at least 2 observed points, got {self.min_train}")
        if self.full_refit_every < 1:
            raise ValueError(f"full_refit_every must be >= 1, got {self.full_refit_every}")
        for level in self.levels:
            if not 0 < level < 1:
                raise ValueError(f"levels must lie in (0, 1), got {self.levels}")
        missing = [p for p in _level_probabilities(self.levels) if p not in self.quantiles_set]
        if missing:
            raise ValueError(f"quantile_probabilities must include the level bounds {missing}")

    @property
    def quantiles_set(self) -> frozenset[float]:
        return frozenset(round(p, 6) for p in self.quantile_probabilities)


def _level_probabilities(levels: tuple[float, ...]) -> list[float]:
    return [round(p, 6) for level in levels for p in ((1 - level) / 2, (1 + level) / 2)]


@dataclass(frozen=True)
class ModelSkill:
    """A candidate's out-of-sample skill (``mape`` in percent) and its weight in the forecast."""

    name: str
    weight: float
    mape: float
    mase: float | None
    n: int


@dataclass(frozen=True)
class Driver:
    """An operating driver: its value for the target quarter and its effect on the point."""

    name: str
    value: float
    effect: float


@dataclass(frozen=True)
class MetricForecast:
    """The calibrated predictive distribution of one metric for one target quarter."""

    metric: str
    target: str
    point: float
    lo80: float
    hi80: float
    lo95: float
    hi95: float
    quantiles: tuple[tuple[float, float], ...]
    models: tuple[ModelSkill, ...]
    drivers: tuple[Driver, ...]
    n_obs: int
    method: str

    def cdf(self, x: float) -> float:
        """P(value <= x): linear between quantiles, exponential tails beyond the grid."""
        return distribution.cdf(self.quantiles, float(x))

    def band_probabilities(self, *, low: float | None, high: float | None) -> BandProbabilities:
        """P(below low), P(inside), P(above high); either bound may be absent. They sum to 1."""
        return distribution.band_probabilities(self.quantiles, low=low, high=high)


def quantile_cdf(probs: np.ndarray, values: np.ndarray, x: float) -> float:
    """Invert a monotone quantile grid at ``x`` (see `services.common.distribution`)."""
    return distribution.cdf(tuple(zip(probs.tolist(), values.tolist(), strict=True)), float(x))


@dataclass(frozen=True)
class Record:
    """Out-of-sample record: for each past observed quarter forecast one step ahead, each
    candidate's forecast (rows follow the fit's ``model_names``), the combined forecast made
    then, the actual, the error scale, the quarters since the previous observation and how
    many observations preceded it, and the seasonal factor of its quarter. Forecasts,
    actuals and scales are seasonally adjusted (``seasonal.py``). Ordinals are pandas
    quarterly Period ordinals.
    """

    ordinal: np.ndarray
    pred: np.ndarray
    combined: np.ndarray
    actual: np.ndarray
    scale: np.ndarray
    horizon: np.ndarray
    n_before: np.ndarray
    factor: np.ndarray

    def head(self, count: int) -> Record:
        """The first ``count`` entries: what was known before entry ``count``."""
        return self.select(np.arange(self.ordinal.size) < count)

    def select(self, keep: np.ndarray) -> Record:
        """The entries where ``keep`` is true."""
        return Record(
            self.ordinal[keep],
            self.pred[:, keep],
            self.combined[keep],
            self.actual[keep],
            self.scale[keep],
            self.horizon[keep],
            self.n_before[keep],
            self.factor[keep],
        )

    @property
    def nbytes(self) -> int:
        return sum(int(a.nbytes) for a in vars(self).values())


@dataclass(frozen=True)
class Fitted:
    """Compact state of a fit: fixed parameters, per-model forecasts ahead, out-of-sample record.

    ``ahead[m, j]`` is candidate m's seasonally adjusted forecast for the quarter with ordinal
    ``ahead_start + j`` and ``ahead_factor[j]`` that quarter's seasonal factor;
    ``ahead_drivers[j]`` the drivers model's inputs and effects for it. ``guidance`` keeps
    (guided quarter, issuing quarter, midpoint) ordinals so that an update can reuse it.
    No statsmodels results objects and no history are kept.
    """

    metric: str
    spec: ForecastSpec
    model_names: tuple[str, ...]
    params: tuple[tuple[float, ...], ...]
    end_ordinal: int
    last_obs_ordinal: int
    n_obs: int
    record: Record
    ahead_start: int
    ahead: np.ndarray
    ahead_factor: np.ndarray
    multiplicative: bool
    ahead_scale: float
    ahead_drivers: tuple[tuple[Driver, ...], ...]
    mase_scale: float
    guidance: tuple[tuple[int, int, float], ...]
    refit_n_obs: int

    @property
    def nbytes(self) -> int:
        """Bytes held in arrays (the bulk of the state)."""
        return self.record.nbytes + int(self.ahead.nbytes)


@dataclass(frozen=True)
class BacktestRow:
    """One out-of-sample forecast and its actual; for a guided quarter, also the band, the call
    P(below / inside / above), where the actual landed and the call's proper scores, and the
    call the guidance evidence alone would have made (``guidance_only``). A fiscal year's row
    (``period`` like ``FY2020``) says in ``as_of`` which quarter its call was made in."""

    period: str
    metric: str
    forecast: float
    lo80: float
    hi80: float
    lo95: float
    hi95: float
    actual: float
    model: str
    pit: float | None = None
    as_of: str | None = None
    low: float | None = None
    high: float | None = None
    p_below: float | None = None
    p_inside: float | None = None
    p_above: float | None = None
    outcome: str | None = None
    brier: float | None = None
    rps: float | None = None
    log_score: float | None = None
    guidance_weight: float | None = None
    guidance_only: tuple[float, float, float] | None = None


@dataclass(frozen=True)
class CallScores:
    """Mean proper scores of band calls: 3-class Brier, ranked probability score, log score
    (lower is better for all three)."""

    brier: float
    rps: float
    log_score: float


@dataclass(frozen=True)
class BandSummary:
    """The band calls of one metric beside three reference calls on the same quarters: the
    uniform 1/3 call, the guidance midpoint taken as a sure call inside the band, and the
    guidance evidence alone (the track record, no statistical forecast)."""

    calls: int
    model: CallScores
    uniform: CallScores
    midpoint: CallScores
    guidance_only: CallScores
    mape: float | None
    midpoint_mape: float | None


@dataclass(frozen=True)
class MetricSummary:
    mape: float | None
    mase: float | None
    coverage80: float | None
    coverage95: float | None
    naive_mape: float | None
    drift_mape: float | None
    guidance_mid_mape: float | None
    bands: BandSummary | None = None


@dataclass(frozen=True)
class BacktestReport:
    forecasts: tuple[BacktestRow, ...]
    summary: dict[str, MetricSummary]

    def per_quarter(self, metric: str) -> list[dict[str, Any]]:
        """Each backtested quarter's error: actual − forecast, percent of the actual, and
        whether the actual fell inside the 80% and 95% intervals."""
        return [
            {
                "period": r.period,
                "actual": r.actual,
                "forecast": r.forecast,
                "error": r.actual - r.forecast,
                "pct_error": 100 * (r.actual - r.forecast) / r.actual if r.actual else None,
                "inside80": r.lo80 <= r.actual <= r.hi80,
                "inside95": r.lo95 <= r.actual <= r.hi95,
            }
            for r in self.forecasts
            if r.metric == metric
        ]

    def to_dict(self) -> dict[str, Any]:
        return {
            "forecasts": [asdict(row) for row in self.forecasts],
            "summary": {metric: asdict(s) for metric, s in self.summary.items()},
        }
