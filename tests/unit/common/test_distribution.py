"""The quantile-grid distribution: CDF, density, band probabilities, pools and scores."""

from __future__ import annotations

import math

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy import stats

from services.common.distribution import (
    BandProbabilities,
    Grid,
    band_outcome,
    band_probabilities,
    brier,
    linear_pool,
    log_score,
    pool_log_density,
    ranked_probability_score,
)

pytestmark = pytest.mark.unit
PROBS = (0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.975, 0.99)


def normal_grid(mean: float = 100.0, sd: float = 10.0) -> tuple[tuple[float, float], ...]:
    return tuple((p, float(stats.norm.ppf(p, mean, sd))) for p in PROBS)


def test_cdf_passes_through_every_grid_point_and_inverts_the_quantile() -> None:
    grid = Grid.of(normal_grid())
    assert_allclose(grid.cdf(grid.v), grid.p, atol=1e-12)
    u = np.array([0.001, 0.02, 0.33, 0.5, 0.77, 0.995])
    assert_allclose(grid.cdf(grid.quantile(u)), u, atol=1e-9)


def test_density_integrates_to_one_and_is_continuous_at_the_grid_ends() -> None:
    grid = Grid.of(normal_grid())
    xs = np.linspace(0.0, 200.0, 400_001)
    density = np.exp(grid.log_density(xs))
    assert math.isclose(float(np.trapezoid(density, xs)), 1.0, abs_tol=1e-4)
    for end in (grid.v[0], grid.v[-1]):
        left, right = np.exp(grid.log_density([end - 1e-7, end + 1e-7]))
        assert math.isclose(left, right, rel_tol=1e-4)


def test_band_probabilities_match_the_normal_they_were_drawn_from() -> None:
    probs = band_probabilities(normal_grid(), low=95.0, high=110.0)
    expected = stats.norm.cdf([95.0, 110.0], 100.0, 10.0)
    assert_allclose(
        probs.as_tuple(), (expected[0], expected[1] - expected[0], 1 - expected[1]), atol=0.01
    )
    assert math.isclose(sum(probs.as_tuple()), 1.0)


def test_a_one_sided_band_has_no_probability_on_its_open_side() -> None:
    at_least = band_probabilities(normal_grid(), low=100.0, high=None)
    assert at_least.p_above == 0.0
    assert math.isclose(at_least.p_below, 0.5, abs_tol=1e-9)


def test_a_band_with_low_above_high_is_refused() -> None:
    with pytest.raises(ValueError, match="low <= high"):
        band_probabilities(normal_grid(), low=2.0, high=1.0)


def test_a_point_mass_grid_is_a_step() -> None:
    grid = tuple((p, 5.0) for p in PROBS)
    probs = band_probabilities(grid, low=4.0, high=6.0)
    assert probs.p_inside > 0.999


def test_linear_pool_quantiles_invert_the_mixture_cdf() -> None:
    a, b = normal_grid(100.0, 10.0), normal_grid(130.0, 5.0)
    pooled = linear_pool([a, b], [0.3, 0.7], PROBS)
    mixture = [
        0.3 * stats.norm.cdf(v, 100.0, 10.0) + 0.7 * stats.norm.cdf(v, 130.0, 5.0)
        for _, v in pooled
    ]
    assert_allclose(mixture, PROBS, atol=0.01)
    density = math.exp(pool_log_density([a, b], [0.3, 0.7], 120.0))
    each = [math.exp(float(Grid.of(g).log_density(120.0))) for g in (a, b)]
    assert math.isclose(density, 0.3 * each[0] + 0.7 * each[1], rel_tol=1e-9)


def test_uniform_call_scores_two_thirds_brier_whatever_happens() -> None:
    uniform = BandProbabilities(1 / 3, 1 / 3, 1 / 3)
    for outcome in ("below", "inside", "above"):
        assert math.isclose(brier(uniform, outcome), 2 / 3)
        assert math.isclose(log_score(uniform, outcome), math.log(3))


def test_ranked_score_costs_more_for_a_call_two_classes_off() -> None:
    sure_below = BandProbabilities(1.0, 0.0, 0.0)
    assert ranked_probability_score(sure_below, "inside") == 1.0
    assert ranked_probability_score(sure_below, "above") == 2.0
    assert brier(sure_below, "inside") == brier(sure_below, "above") == 2.0


def test_outcome_counts_the_bounds_as_inside() -> None:
    assert band_outcome(10.0, low=10.0, high=12.0) == "inside"
    assert band_outcome(9.9, low=10.0, high=12.0) == "below"
    assert band_outcome(12.1, low=10.0, high=None) == "inside"
