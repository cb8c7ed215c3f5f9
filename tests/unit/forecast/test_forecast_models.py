"""Each candidate model against a known case or a statsmodels reference."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import statsmodels.api as sm
from numpy.testing import assert_allclose
from statsmodels.tsa.holtwinters import ExponentialSmoothing

from services.forecast.core.models import (
    GROWTH_PSEUDO_ZEROS,
    GROWTH_WINDOW,
    Series,
    damped_trend,
    drift,
    drivers,
    growth,
    guidance,
    holt_paths,
    holt_winters,
    holt_winters_paths,
    level_filter,
    level_profile,
    level_ratios,
    llt_concentrated_loglik,
    llt_filter,
    llt_grid,
    local_level,
    local_level_filter,
    local_linear_trend,
    naive,
    seasonal_naive,
    theta,
)
from services.forecast.core.seasonal import SeasonalFactors, neutral, realtime_factors

pytestmark = pytest.mark.unit
NAN = np.nan


def series(values: list[float], **extra: object) -> Series:
    y = np.array(values, dtype=float)
    return Series(y=y, n_hist=y.size, start_ordinal=0, **extra)  # type: ignore[arg-type]


def trend_with_gaps(seed: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y = 100 + 2.0 * np.arange(24) + rng.normal(0, 3, 24)
    y[[5, 11, 12]] = NAN
    return y


def test_naive_forecasts_the_last_observed_value_across_gaps() -> None:
    run = naive(series([1, NAN, 3, NAN, NAN]), None, 1)
    assert_allclose(run.pred, [NAN, 1, 1, 3, 3])


def test_drift_extends_the_line_from_first_to_last_observation() -> None:
    run = drift(series([10, NAN, 14, NAN, NAN]), None, 1)
    assert_allclose(run.pred, [NAN, NAN, NAN, 16, 18])


def test_seasonal_naive_repeats_the_same_quarter_last_year_where_seasonal() -> None:
    y = np.array([1, 2, 3, NAN, 5, 6, 7, 8], dtype=float)
    factor = np.array([1, 1, 1, 1, 0.5, 2.0, 1.0, 1.0])
    flags = np.array([False] * 4 + [True, True, True, False])
    season = SeasonalFactors(factor, flags, multiplicative=True)
    run = seasonal_naive(
        Series(y=season.adjust(y), n_hist=8, start_ordinal=0, season=season), None, 1
    )
    # adjusted like every candidate: the year-old value divided by the target's factor
    assert_allclose(run.pred, [NAN, NAN, NAN, NAN, 1 / 0.5, 2 / 2.0, 3, NAN])


def test_seasonal_candidates_stay_silent_on_a_series_without_seasonality() -> None:
    y = 100 + np.cumsum(np.random.default_rng(1).normal(1, 3, 32))
    plain = series(list(y), season=neutral(32))
    for model in (seasonal_naive, theta, holt_winters):
        assert np.isnan(model(plain, None, 1).pred).all()


def quarterly_seasonal(seed: int = 4, size: int = 40) -> np.ndarray:
    rng = np.random.default_rng(seed)
    pattern = np.array([0.8, 1.1, 1.25, 0.85])
    return (200 + 3 * np.arange(size)) * pattern[np.arange(size) % 4] * rng.lognormal(0, 0.02, size)


def test_theta_matches_statsmodels_theta_model_at_its_alpha() -> None:
    from statsmodels.tsa.forecasting.theta import ThetaModel

    y = 100 + 2.0 * np.arange(16) + np.random.default_rng(9).normal(0, 3, 16)
    fitted = ThetaModel(y, period=4, deseasonalize=False).fit(use_mle=False)
    alpha = float(fitted.params["alpha"])
    season = SeasonalFactors(np.ones(17), np.ones(17, dtype=bool), multiplicative=True)
    extended = np.append(y, NAN)
    run = theta(Series(y=extended, n_hist=16, start_ordinal=0, season=season), (alpha,), 1)
    assert_allclose(run.pred[16], float(fitted.forecast(1).iloc[0]), rtol=1e-6)


def test_holt_winters_recursion_matches_statsmodels_exponential_smoothing() -> None:
    y = quarterly_seasonal()
    params = (0.3, 0.1, 0.9, 0.2)
    level = float(y[:4].mean())
    ours = holt_winters_paths(y, np.array([params]), multiplicative=True)[:, 0]
    # our states start from the first year itself; statsmodels' from before its first value:
    # so statsmodels runs on the years after the first, starting from the states we start from
    reference = ExponentialSmoothing(
        y[4:], trend="add", damped_trend=True, seasonal="mul", seasonal_periods=4,
        initialization_method="known", initial_level=level, initial_trend=0.0,
        initial_seasonal=y[:4] / level,
    )  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitted = reference.fit(
            smoothing_level=params[0], smoothing_trend=params[1], damping_trend=params[2],
            smoothing_seasonal=params[3], optimized=False,
        )  # fmt: skip
    assert_allclose(ours[4:], fitted.fittedvalues, rtol=1e-9)


def test_seasonal_factors_equal_statsmodels_decomposition_of_the_past_without_decay() -> None:
    from statsmodels.tsa.seasonal import seasonal_decompose

    y = quarterly_seasonal(size=28)
    season = realtime_factors(y, y.size, half_life=1e12, test_level=0.1)
    for t in (16, 20, 27):
        reference = seasonal_decompose(y[:t], model="multiplicative", period=4).seasonal
        assert season.seasonal[t]
        assert_allclose(season.factor[t], reference[t - 4], rtol=1e-9)


def test_seasonal_factors_use_nothing_from_the_quarter_they_adjust_or_later() -> None:
    y = quarterly_seasonal(size=32)
    base = realtime_factors(y, y.size, half_life=12.0, test_level=0.1)
    for t in (14, 22, 31):
        changed = y.copy()
        changed[t:] *= 3.0
        again = realtime_factors(changed, y.size, half_life=12.0, test_level=0.1)
        assert_allclose(again.factor[: t + 1], base.factor[: t + 1])


def test_seasonality_is_found_in_a_seasonal_series_and_not_in_a_random_walk() -> None:
    seasonal = realtime_factors(quarterly_seasonal(), 40, half_life=12.0, test_level=0.1)
    walk = 100 + np.cumsum(np.random.default_rng(2).normal(0, 3, 40))
    plain = realtime_factors(walk, 40, half_life=12.0, test_level=0.1)
    assert seasonal.seasonal[20:].all()
    assert plain.seasonal[20:].mean() < 0.3


def test_a_series_with_zeros_is_adjusted_additively() -> None:
    y = quarterly_seasonal() - 150.0
    y[7] = 0.0
    season = realtime_factors(y, y.size, half_life=12.0, test_level=0.1)
    assert not season.multiplicative
    assert_allclose(season.to_raw(season.adjust(y), season.factor), y)


def test_holt_recursion_matches_statsmodels_exponential_smoothing() -> None:
    y = trend_with_gaps()[:5]
    reference = ExponentialSmoothing(
        y[1:],
        trend="add",
        damped_trend=True,
        initialization_method="known",
        initial_level=y[0],
        initial_trend=0.0,
    ).fit(smoothing_level=0.5, smoothing_trend=0.3, damping_trend=0.9, optimized=False)
    ours = holt_paths(y, np.array([[0.5, 0.3, 0.9]]))[1:, 0]
    assert_allclose(ours, reference.fittedvalues, rtol=1e-12)


def test_damped_trend_recovers_a_known_linear_trend() -> None:
    y = np.concatenate((100 + 5.0 * np.arange(20), [NAN]))
    run = damped_trend(series(list(y)), None, 2)
    assert run.pred[-1] == pytest.approx(200, rel=0.02)


def test_local_linear_trend_filter_matches_statsmodels_with_gaps() -> None:
    y = trend_with_gaps()
    ours, _, _ = llt_filter(y, np.array([[0.3, 0.01]]))
    model = sm.tsa.UnobservedComponents(y, "local linear trend")
    reference = model.filter([4.0, 1.2, 0.04]).filter_results.forecasts[0]
    assert_allclose(ours[3:, 0], reference[3:], rtol=1e-5)


def test_local_linear_trend_likelihood_matches_statsmodels() -> None:
    y = trend_with_gaps()
    _, innov, var = llt_filter(np.append(y, NAN), np.array([[0.3, 0.01]]))
    ok = np.isfinite(innov[:, 0])
    sigma2 = float(np.mean(innov[ok, 0] ** 2 / var[ok, 0])) * y[0] ** 2
    reference = sm.tsa.UnobservedComponents(y, "local linear trend")
    llf = reference.filter([sigma2, 0.3 * sigma2, 0.01 * sigma2]).llf
    ours = llt_concentrated_loglik(innov, var)[-1, 0] - ok.sum() * np.log(abs(y[0]))
    assert ours == pytest.approx(llf, abs=1e-2)  # approximate vs exact diffuse prior


def test_local_linear_trend_grid_is_close_to_the_statsmodels_maximum() -> None:
    y = trend_with_gaps()
    _, innov, var = llt_filter(np.append(y, NAN), llt_grid())
    best = llt_concentrated_loglik(innov, var)[-1].max() - np.isfinite(innov[:, 0]).sum() * np.log(
        abs(y[0])
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mle = sm.tsa.UnobservedComponents(y, "local linear trend").fit(disp=False, maxiter=200)
    assert mle.llf - 1.0 <= best <= mle.llf + 1e-6


def test_local_linear_trend_forecasts_a_known_trend_through_gaps() -> None:
    y = np.append(trend_with_gaps(), [NAN, NAN])
    run = local_linear_trend(series(list(y)), None, 2)
    assert run.pred[-1] == pytest.approx(100 + 2.0 * 25, rel=0.03)


def test_drivers_regression_is_exact_on_a_linear_relation_with_a_known_driver() -> None:
    x = np.array([1, 2, 3, 4, 5, 6, 7], dtype=float)
    y = 5 + 2 * x
    y[-1] = NAN  # the target quarter: its driver value is already known
    run = drivers(series(list(y), drivers={"volume": x}), None, 4)
    assert run.pred[-1] == pytest.approx(19)
    assert run.driver_effects["volume"][-1] == pytest.approx(2 * (7 - 3.5), rel=0.1)


def test_drivers_nowcast_a_missing_driver_with_its_last_value() -> None:
    x = np.array([1, 2, 3, 4, 5, 6, NAN], dtype=float)
    y = np.append(5 + 2 * x[:-1], NAN)
    run = drivers(series(list(y), drivers={"volume": x}), None, 4)
    assert run.pred[-1] == pytest.approx(5 + 2 * 6)


def test_guidance_model_adjusts_the_midpoint_by_the_track_record() -> None:
    y = [NAN, 110.0, NAN, NAN]
    guided = {1: (0, 100.0), 3: (2, 200.0)}
    run = guidance(series(y, guidance=guided), None, 1)
    assert run.pred[1] == pytest.approx(100.0)
    assert run.pred[3] == pytest.approx(200.0 * np.exp(np.log(1.1) / 3))


def test_guidance_model_ignores_guidance_issued_in_the_target_quarter() -> None:
    run = guidance(series([1.0, NAN], guidance={1: (1, 5.0)}), None, 1)
    assert np.isnan(run.pred[1])


def test_local_level_recursion_matches_statsmodels_filter_with_gaps() -> None:
    y = trend_with_gaps()
    reference = sm.tsa.UnobservedComponents(y, "local level").filter([4.0, 1.2])
    ours = local_level_filter(y, 0.3)
    assert_allclose(ours[1:], reference.filter_results.forecasts[0][1:], rtol=1e-5)


def exact_diffuse_level(y: np.ndarray) -> sm.tsa.UnobservedComponents:
    return sm.tsa.UnobservedComponents(y, "local level", use_exact_diffuse=True)


def noisy_random_walk(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y = 1000 + np.cumsum(rng.normal(10, 40, 24)) + rng.normal(0, 30, 24)
    y[[6, 13]] = NAN if seed % 2 else y[[6, 13]]
    return y


@pytest.mark.parametrize("ratio", [0.0, 0.01, 0.3, 5.0, 1e3])
def test_local_level_filter_matches_statsmodels_exact_diffuse_filter(ratio: float) -> None:
    y = trend_with_gaps()
    reference = exact_diffuse_level(y).filter([2.0, 2.0 * ratio])
    ours = local_level_filter(y, ratio)
    assert_allclose(ours[1:], reference.filter_results.forecasts[0][1:], rtol=1e-10)


@pytest.mark.parametrize("ratio", [0.0, 0.01, 0.3, 5.0, 1e3])
def test_local_level_profile_likelihood_is_the_statsmodels_likelihood_at_its_scale(
    ratio: float,
) -> None:
    y = trend_with_gaps()
    _, innov, var = level_filter(y, np.array([ratio]))
    ok = np.isfinite(innov[:, 0])
    scale = float(np.mean(innov[ok, 0] ** 2 / var[ok, 0]))
    reference = exact_diffuse_level(y).loglike([scale, scale * ratio])
    _, profile = level_profile(np.append(y, NAN), np.array([ratio]))
    # statsmodels adds the diffuse first observation's -log(2π)/2, constant in the parameters
    assert profile[-1, 0] == pytest.approx(reference + 0.5 * np.log(2 * np.pi), abs=1e-8)


@pytest.mark.parametrize("seed", range(8))
def test_local_level_ratio_is_the_statsmodels_maximum_likelihood(seed: int) -> None:
    y = noisy_random_walk(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = exact_diffuse_level(y).fit(disp=False)
    ratios, pred = level_ratios(np.append(y, NAN))
    _, profile = level_profile(np.append(y, NAN), ratios[-1:])
    assert profile[-1, 0] - 0.5 * np.log(2 * np.pi) >= reference.llf - 1e-9
    assert ratios[-1] == pytest.approx(reference.params[1] / reference.params[0], rel=0.02)
    assert pred[-1] == pytest.approx(float(reference.forecast(1)[0]), rel=1e-4)


def test_local_level_ratio_at_each_origin_uses_only_the_past() -> None:
    y = np.append(noisy_random_walk(1), NAN)
    ratios, pred = level_ratios(y)
    for i in (8, 14, 20):
        prefix_ratios, prefix_pred = level_ratios(np.append(y[:i], NAN))
        assert_allclose([ratios[i], pred[i]], [prefix_ratios[-1], prefix_pred[-1]], rtol=1e-12)
        assert pred[i] == pytest.approx(local_level_filter(y, ratios[i])[i], rel=1e-12)


def test_local_level_with_fixed_ratio_reproduces_the_fitted_forecast() -> None:
    y = np.append(trend_with_gaps(), [NAN, NAN])
    fitted = local_level(series(list(y)), None, 2)
    fixed = local_level(series(list(y)), fitted.params, 2)
    assert_allclose(fixed.pred[-2:], fitted.pred[-2:], rtol=1e-6)


def test_growth_model_shrinks_the_mean_log_growth_toward_zero() -> None:
    run = growth(series([100.0, 110.0, 121.0, NAN]), None, 2)
    assert run.pred[-1] == pytest.approx(121.0 * np.exp(2 * np.log(1.1) / (2 + 4)))


def test_growth_model_is_silent_on_non_positive_values() -> None:
    run = growth(series([100.0, -5.0, 121.0, NAN]), None, 2)
    assert np.isnan(run.pred[-1])


def growth_one_origin_at_a_time(y: np.ndarray, n_hist: int, min_obs: int) -> np.ndarray:
    """The growth model as its docstring states it, origin by origin (the reference)."""
    pred = np.full(y.size, np.nan)
    observed = np.flatnonzero(np.isfinite(y[:n_hist]))
    for k in range(max(min_obs, 3) - 1, observed.size):
        window = observed[max(k - GROWTH_WINDOW, 0) : k + 1]
        if np.any(y[window] <= 0):
            continue
        rates = np.diff(np.log(y[window])) / np.diff(window)
        shrunk = rates.sum() / (rates.size + GROWTH_PSEUDO_ZEROS)
        upto = observed[k + 1] + 1 if k + 1 < observed.size else y.size
        steps = np.arange(window[-1] + 1, upto) - window[-1]
        pred[window[-1] + 1 : upto] = y[window[-1]] * np.exp(shrunk * steps)
    return pred


@pytest.mark.parametrize("seed", range(40))
def test_growth_model_computes_every_origin_as_the_reference_does(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n_hist, future = int(rng.integers(0, 30)), int(rng.integers(0, 4))
    y = rng.uniform(-50, 1000, n_hist + future)
    y[rng.random(y.size) < 0.2] = NAN  # gaps
    y[n_hist:] = NAN
    min_obs = int(rng.integers(1, 6))
    run = growth(Series(y=y, n_hist=n_hist, start_ordinal=0), None, min_obs)
    assert_allclose(run.pred, growth_one_origin_at_a_time(y, n_hist, min_obs), rtol=1e-12)
