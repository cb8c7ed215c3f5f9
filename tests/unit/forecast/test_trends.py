"""Specifications for the delinquency trend models."""

from __future__ import annotations

import ast
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose
from scipy import stats

from services.forecast import trends
from services.forecast.trends import (
    TrendSpec,
    detect_change_points,
    fit_trend,
    mann_kendall,
    sen_slope,
)

pytestmark = pytest.mark.unit


def quarterly(values: list[float] | np.ndarray, start: str = "2019Q1") -> pd.Series:
    return pd.Series(values, index=pd.period_range(start, periods=len(values), freq="Q"))


def noisy_line(*, n: int, level: float, slope: float, sd: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return level + slope * np.arange(n) + rng.normal(0.0, sd, n)


# --------------------------------------------------------------------------- purity


def test_trend_module_imports_only_the_numerical_stack() -> None:
    tree = ast.parse(Path(trends.__file__).read_text())
    roots = {
        (node.module if isinstance(node, ast.ImportFrom) else alias.name).split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
        if not isinstance(node, ast.ImportFrom) or node.module
    }
    assert roots <= {"__future__", "math", "collections", "dataclasses", "numpy", "pandas"} | {
        "scipy",
        "statsmodels",
    }


# --------------------------------------------------------------------------- Mann-Kendall


def test_mann_kendall_matches_a_hand_computed_case_with_ties() -> None:
    # x = 1, 2, 2, 4, 3. Pairs i<j: from 1: ++++ (4); from the first 2: 0 + + (2);
    # from the second 2: + + (2); from 4: - (-1). S = 7. One tie group of size 2:
    # Var(S) = (5*4*15 - 2*1*9) / 18 = 282 / 18; z = (7 - 1) / sqrt(282/18); tau = 7/10.
    result = mann_kendall([1.0, 2.0, 2.0, 4.0, 3.0])

    z = 6.0 / math.sqrt(282.0 / 18.0)
    assert result.s == 7
    assert_allclose(result.var_s, 282.0 / 18.0)
    assert_allclose(result.z, z)
    assert_allclose(result.tau, 0.7)
    assert_allclose(result.p_value, math.erfc(z / math.sqrt(2.0)))
    assert_allclose(result.p_value, 0.1295, atol=5e-4)


def test_mann_kendall_tau_equals_kendalls_tau_against_time_without_ties() -> None:
    x = np.random.default_rng(1).normal(size=25)

    result = mann_kendall(x)

    assert_allclose(result.tau, stats.kendalltau(np.arange(25), x).statistic, atol=1e-12)


def test_mann_kendall_of_a_constant_series_finds_no_trend() -> None:
    result = mann_kendall([2.0, 2.0, 2.0, 2.0])

    assert (result.s, result.var_s, result.z, result.p_value) == (0, 0.0, 0.0, 1.0)


# --------------------------------------------------------------------------- Theil-Sen


def test_sen_slope_matches_scipy_theilslopes_with_gaps_in_time() -> None:
    rng = np.random.default_rng(2)
    t = np.array([0, 1, 2, 4, 5, 8, 9, 10, 13, 14], dtype=float)
    x = 1.0 + 0.2 * t + rng.normal(0, 0.1, len(t))

    assert_allclose(sen_slope(t, x), stats.theilslopes(x, t).slope, atol=1e-12)


# --------------------------------------------------------------------------- change points


def test_cusum_finds_a_known_mean_shift_where_it_happened() -> None:
    rng = np.random.default_rng(3)
    y = np.concatenate([rng.normal(1.5, 0.1, 20), rng.normal(2.3, 0.1, 20)])

    splits = detect_change_points(y)

    assert [s.index for s in splits] == [20]
    assert_allclose(splits[0].shift, 0.8, atol=0.1)


def test_cusum_finds_no_change_point_in_stationary_noise() -> None:
    y = np.random.default_rng(4).normal(2.0, 0.2, 40)

    assert detect_change_points(y) == ()


def test_fit_trend_reports_the_change_point_as_the_first_period_of_the_new_regime() -> None:
    rng = np.random.default_rng(5)
    values = np.concatenate([rng.normal(1.5, 0.05, 12), rng.normal(2.5, 0.05, 12)])

    result = fit_trend(quarterly(values, start="2018Q1"), metric="dpd90")

    assert [(c.period, c.direction) for c in result.change_points] == [("2021Q1", "up")]
    assert_allclose(result.change_points[0].shift, 1.0, atol=0.1)


# --------------------------------------------------------------------------- slope and level


def test_slope_interval_covers_the_true_slope_of_a_seeded_line() -> None:
    values = noisy_line(n=24, level=1.0, slope=0.08, sd=0.05, seed=6)

    result = fit_trend(quarterly(values), metric="dpd90")

    assert result.slope_lo < 0.08 < result.slope_hi
    assert_allclose(result.slope, 0.08, atol=0.01)
    assert_allclose(result.level, 1.0 + 0.08 * 23, atol=0.05)
    assert_allclose(result.sen_slope, 0.08, atol=0.01)


def test_slope_is_per_period_not_per_observation_when_periods_are_missing() -> None:
    full = quarterly(1.0 + 0.1 * np.arange(12))
    gappy = full.drop(full.index[[2, 3, 7]])
    gappy.iloc[4] = np.nan

    result = fit_trend(gappy, metric="dpd90")

    assert result.n_obs == 8
    assert_allclose([result.slope, result.sen_slope], [0.1, 0.1], atol=1e-9)
    assert_allclose(result.next_forecast, 1.0 + 0.1 * 12, atol=1e-9)


# --------------------------------------------------------------------------- verdicts


def test_a_significant_material_rise_in_delinquency_is_deteriorating() -> None:
    values = noisy_line(n=16, level=1.0, slope=0.15, sd=0.1, seed=7)

    result = fit_trend(quarterly(values), metric="dpd90")

    assert result.verdict == "deteriorating"
    assert result.confidence > 0.9
    assert result.mann_kendall_p < 0.01


def test_a_rising_collection_rate_is_improving_when_higher_is_better() -> None:
    values = noisy_line(n=16, level=80.0, slope=0.5, sd=0.3, seed=8)
    spec = TrendSpec(higher_is_worse=False, material_slope=0.2)

    result = fit_trend(quarterly(values), metric="collection_30d", spec=spec)

    assert result.verdict == "improving"
    assert result.confidence > 0.9


def test_a_falling_collection_rate_is_deteriorating() -> None:
    values = noisy_line(n=16, level=90.0, slope=-0.5, sd=0.3, seed=9)
    spec = TrendSpec(higher_is_worse=False, material_slope=0.2)

    assert fit_trend(quarterly(values), metric="collection_30d", spec=spec).verdict == (
        "deteriorating"
    )


def test_flat_noise_is_stable_with_high_confidence() -> None:
    values = noisy_line(n=20, level=2.0, slope=0.0, sd=0.05, seed=10)

    result = fit_trend(quarterly(values), metric="dpd90")

    assert result.verdict == "stable"
    assert result.confidence > 0.9


def test_a_significant_but_immaterial_drift_is_stable() -> None:
    values = noisy_line(n=30, level=2.0, slope=0.01, sd=0.005, seed=11)

    result = fit_trend(quarterly(values), metric="dpd90")

    assert result.slope_lo > 0.0
    assert result.verdict == "stable"


def test_too_few_points_give_insufficient_data_and_no_forecast() -> None:
    series = quarterly([1.0, np.nan, 1.2, np.nan, 1.3])

    result = fit_trend(series, metric="dpd90")

    assert (result.verdict, result.n_obs, result.confidence) == ("insufficient_data", 3, 0.0)
    assert (result.last_period, result.level) == ("2020Q1", 1.3)
    assert math.isnan(result.next_forecast)


# --------------------------------------------------------------------------- forecast


def test_forecast_interval_stays_within_zero_and_one_hundred_percent() -> None:
    falling = fit_trend(quarterly([1.2, 0.9, 0.7, 0.4, 0.3, 0.1]), metric="dpd90")
    rising = fit_trend(quarterly([97.0, 98.0, 98.5, 99.2, 99.6, 99.9]), metric="collection_30d")

    assert 0.0 <= falling.next_lo <= falling.next_forecast <= falling.next_hi <= 100.0
    assert 0.0 <= rising.next_lo <= rising.next_forecast <= rising.next_hi <= 100.0
    assert falling.next_lo == 0.0
    assert rising.next_hi == 100.0


def newey_west(x: np.ndarray, resid: np.ndarray, lags: int) -> np.ndarray:
    """Bartlett-kernel HAC covariance with the n / (n - k) small-sample factor."""
    scores = x * resid[:, None]
    meat = scores.T @ scores
    for lag in range(1, lags + 1):
        gamma = scores[lag:].T @ scores[:-lag]
        meat += (1.0 - lag / (lags + 1.0)) * (gamma + gamma.T)
    bread = np.linalg.inv(x.T @ x)
    n, k = x.shape
    return bread @ meat @ bread * n / (n - k)


def test_forecast_interval_matches_a_direct_newey_west_prediction_interval() -> None:
    # n = 8 gives floor(4 (8/100)^(2/9)) = 2 Newey-West lags.
    values = noisy_line(n=8, level=3.0, slope=0.1, sd=0.1, seed=12)
    result = fit_trend(quarterly(values), metric="dpd90")

    x = np.column_stack([np.ones(8), np.arange(8) - 7.0])
    beta, *_ = np.linalg.lstsq(x, values, rcond=None)
    resid = values - x @ beta
    cov = newey_west(x, resid, lags=2)
    g = np.array([1.0, 1.0])
    half = stats.t.ppf(0.975, 6) * math.sqrt(g @ cov @ g + resid @ resid / 6)
    assert_allclose(
        [result.next_forecast, result.next_lo, result.next_hi],
        [g @ beta, g @ beta - half, g @ beta + half],
        rtol=1e-9,
    )
    assert_allclose(
        [result.slope_lo, result.slope_hi],
        beta[1] + np.array([-1.0, 1.0]) * stats.t.ppf(0.975, 6) * math.sqrt(cov[1, 1]),
        rtol=1e-9,
    )


def test_next_period_follows_the_series_in_its_own_frequency() -> None:
    monthly = pd.Series(
        [5.0, 5.1, 5.3, 5.2, 5.4, 5.6], index=pd.period_range("2024-01", periods=6, freq="M")
    )
    daily = pd.Series(
        [4.0, 4.1, np.nan, 4.3, 4.2], index=pd.period_range("2024-02-27", periods=5, freq="D")
    )

    assert fit_trend(monthly, metric="day1").next_period == "2024-07"
    assert fit_trend(daily, metric="day1").next_period == "2024-03-03"


def test_window_keeps_only_the_most_recent_periods() -> None:
    values = np.concatenate([np.full(10, 5.0), 1.0 + 0.2 * np.arange(8)])

    result = fit_trend(quarterly(values), metric="dpd90", spec=TrendSpec(window=8))

    assert result.n_obs == 8
    assert_allclose(result.slope, 0.2, atol=1e-9)


# --------------------------------------------------------------------------- input errors


def test_a_series_without_a_period_index_is_refused() -> None:
    with pytest.raises(TypeError, match="PeriodIndex"):
        fit_trend(pd.Series([1.0, 2.0, 3.0, 4.0]), metric="dpd90")


def test_a_rate_outside_zero_to_one_hundred_is_refused() -> None:
    with pytest.raises(ValueError, match=r"0\.\.100"):
        fit_trend(quarterly([1.0, 2.0, 130.0, 4.0]), metric="dpd90")


def test_an_invalid_spec_is_refused_with_the_valid_range() -> None:
    with pytest.raises(ValueError, match="between 0 and 1"):
        TrendSpec(alpha=1.5)
