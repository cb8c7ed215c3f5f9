"""The predictive distribution: CDF, band probabilities, calibration helpers."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy import stats

from services.forecast.core import MetricForecast
from services.forecast.core.calibrate import (
    median_weights,
    robust_z_quantiles,
    skill_weights,
    volatility_scale,
    weighted_quantiles,
    z_quantiles,
)
from services.forecast.core.types import QUANTILE_PROBABILITIES

pytestmark = pytest.mark.unit


def normal_forecast(mean: float = 1000.0, sd: float = 50.0) -> MetricForecast:
    values = stats.norm.ppf(QUANTILE_PROBABILITIES, mean, sd)
    q = dict(zip(QUANTILE_PROBABILITIES, values, strict=True))
    return MetricForecast(
        metric="net_income",
        target="2024Q2",
        point=mean,
        lo80=q[0.1],
        hi80=q[0.9],
        lo95=q[0.025],
        hi95=q[0.975],
        quantiles=tuple(zip(QUANTILE_PROBABILITIES, values.tolist(), strict=True)),
        models=(),
        drivers=(),
        n_obs=10,
        method="test",
    )


def test_band_probabilities_sum_to_one() -> None:
    bands = normal_forecast().band_probabilities(low=900.0, high=1030.0)
    assert bands.p_below + bands.p_inside + bands.p_above == pytest.approx(1.0)


def test_band_probabilities_match_the_normal_distribution() -> None:
    bands = normal_forecast().band_probabilities(low=950.0, high=1050.0)
    expected = stats.norm.cdf(-1.0)
    assert_allclose(
        [bands.p_below, bands.p_inside, bands.p_above],
        [expected, 1 - 2 * expected, expected],
        atol=0.004,
    )


def test_cdf_is_exact_on_the_quantile_grid_and_monotone_beyond_it() -> None:
    forecast = normal_forecast()
    at_grid = [forecast.cdf(v) for _, v in forecast.quantiles]
    far = [forecast.cdf(x) for x in np.linspace(500, 1500, 201)]
    assert_allclose(at_grid, QUANTILE_PROBABILITIES, atol=1e-12)
    assert np.all(np.diff(far) >= 0)
    assert 0 < far[0] < 0.01
    assert 0.99 < far[-1] < 1


def test_band_with_low_above_high_is_rejected() -> None:
    with pytest.raises(ValueError, match="low <= high"):
        normal_forecast().band_probabilities(low=2.0, high=1.0)


def test_skill_weights_favour_the_model_with_smaller_errors() -> None:
    errors = np.array([[0.1, -0.1, 0.1, -0.1], [0.4, -0.4, 0.4, -0.4]])
    weights = skill_weights(errors, np.arange(4.0)[::-1], np.array([True, True]), 8.0)
    assert weights.sum() == pytest.approx(1.0)
    assert weights[0] > 2 * weights[1]


def test_unavailable_models_get_no_weight() -> None:
    errors = np.array([[0.1, 0.1], [0.2, 0.2]])
    weights = skill_weights(errors, np.array([1.0, 0.0]), np.array([False, True]), 8.0)
    assert_allclose(weights, [0.0, 1.0])


def test_student_t_fallback_is_the_textbook_prediction_interval() -> None:
    z = np.array([0.1, -0.1, 0.2, -0.2])
    probs = np.array([0.1, 0.9])
    rms = np.sqrt(np.mean(z**2))
    expected = rms * np.sqrt(1 + 1 / 4) * stats.t.ppf(probs, 3)
    ours = z_quantiles(z, np.zeros(4), probs, half_life=1e9)
    share = 4 / 34
    empirical = weighted_quantiles(z, np.ones(4), probs)
    assert_allclose(ours, (1 - share) * expected + share * empirical)


def test_quantiles_bracket_zero_even_for_one_sided_errors() -> None:
    ours = z_quantiles(np.full(50, 0.3), np.zeros(50), np.array([0.1, 0.5, 0.9]), 8.0)
    assert ours[0] <= 0 <= ours[2]


def test_median_weights_select_the_middle_forecast() -> None:
    assert_allclose(median_weights(np.array([3.0, np.nan, 1.0, 2.0])), [0, 0, 0, 1])
    assert_allclose(median_weights(np.array([4.0, 1.0, 2.0, 3.0])), [0, 0, 0.5, 0.5])


def test_robust_quantiles_are_a_student_t_interval_on_the_mad_scale() -> None:
    z = np.array([0.1, -0.2, 0.3, -0.4, 5.0])  # one break-sized error
    probs = np.array([0.1, 0.9])
    scale = 1.4826 * np.median(np.abs(z))
    expected = scale * np.sqrt(1 + 1 / 5) * stats.t.ppf(probs, 4)
    assert_allclose(robust_z_quantiles(z, np.zeros(5), probs, 4.0), expected, rtol=1e-9)


def test_robust_quantiles_cover_about_nominal_on_normal_errors() -> None:
    rng = np.random.default_rng(11)
    probs = np.array([0.1, 0.9])
    hits = []
    for _ in range(2000):
        z = rng.normal(size=13)
        lo, hi = robust_z_quantiles(z[:12], np.arange(12.0)[::-1] + 1, probs, 4.0)
        hits.append(lo <= z[12] <= hi)
    assert 0.76 <= np.mean(hits) <= 0.88


def test_volatility_scale_is_the_mean_of_the_last_four_changes_per_root_quarter() -> None:
    y = np.array([100.0, 110.0, np.nan, 130.0, 120.0, 150.0, 140.0, 1e6])
    # changes before position 7: 10, 20 over a two-quarter gap, 10, 30, 10; the last four
    expected = (20 / np.sqrt(2) + 10 + 30 + 10) / 4
    assert_allclose(volatility_scale(y, 7), expected, rtol=1e-12)
    assert_allclose(volatility_scale(y, 4), (10 + 20 / np.sqrt(2)) / 2, rtol=1e-12)


def test_volatility_scale_is_floored_on_flat_stretches_and_needs_two_values() -> None:
    assert_allclose(volatility_scale(np.full(5, -200.0), 5), 0.001 * 200, rtol=1e-12)
    assert_allclose(volatility_scale(np.array([np.nan, 50.0, 70.0]), 2), 50.0, rtol=1e-12)
