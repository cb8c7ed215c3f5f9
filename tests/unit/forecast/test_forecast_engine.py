"""fit → forecast → update, the rolling-origin record and its freedom from look-ahead."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from services.forecast.core import ForecastSpec, fit, forecast, run_backtest, update
from services.forecast.core.types import MODEL_NAMES

pytestmark = pytest.mark.unit


def test_forecast_targets_the_quarter_after_the_last_actual(synthetic: pd.DataFrame) -> None:
    result = forecast(fit(synthetic, metric="net_income"))
    assert result.target == "2024Q1"
    assert result.point == pytest.approx(500 + 20 * 24, rel=0.05)


def test_intervals_nest_around_the_point_and_quantiles_increase(synthetic: pd.DataFrame) -> None:
    result = forecast(fit(synthetic, metric="net_income"), target="2024Q2")
    values = [v for _, v in result.quantiles]
    assert result.lo95 <= result.lo80 <= result.point <= result.hi80 <= result.hi95
    assert np.all(np.diff(values) > 0)


def test_skill_weights_sum_to_one_and_follow_skill(synthetic: pd.DataFrame) -> None:
    spec = ForecastSpec(combination="skill")
    result = forecast(fit(synthetic, metric="net_income", spec=spec))
    weights = {m.name: m.weight for m in result.models}
    assert sum(weights.values()) == pytest.approx(1.0)
    assert weights["naive"] < max(weights["damped_trend"], weights["local_linear_trend"])


def test_changing_a_future_value_changes_no_past_forecast(synthetic: pd.DataFrame) -> None:
    changed = synthetic.copy()
    changed.loc[pd.Period("2022Q2", "Q-DEC"), ["net_income", "loan_volume"]] = [5_000.0, 1.0]
    before = run_backtest(synthetic, metrics=("net_income",)).to_dict()["forecasts"]
    after = run_backtest(changed, metrics=("net_income",)).to_dict()["forecasts"]
    past = [(a, b) for a, b in zip(before, after, strict=True) if a["period"] <= "2022Q2"]
    assert len(past) >= 8
    for a, b in past:
        assert {**a, "actual": None, "pit": None} == {**b, "actual": None, "pit": None}
    assert before[-1]["forecast"] != after[-1]["forecast"]


def test_one_fit_backtest_equals_refitting_at_every_origin(synthetic: pd.DataFrame) -> None:
    fast = run_backtest(synthetic, metrics=("net_income",)).to_dict()["forecasts"]
    for row in fast:
        period = pd.Period(row["period"], "Q-DEC")
        fitted = fit(synthetic.loc[synthetic.index < period], metric="net_income")
        slow = forecast(fitted, target=row["period"])
        assert_allclose(
            [slow.point, slow.lo80, slow.hi95],
            [row["forecast"], row["lo80"], row["hi95"]],
            rtol=1e-9,
        )


def test_update_with_no_new_data_keeps_the_forecast(synthetic: pd.DataFrame) -> None:
    fitted = fit(synthetic, metric="net_income")
    again = update(fitted, synthetic)
    assert forecast(again).point == pytest.approx(forecast(fitted).point)
    assert again.record.ordinal.size == fitted.record.ordinal.size


def test_update_appends_the_new_quarter_out_of_sample(synthetic: pd.DataFrame) -> None:
    fitted = fit(synthetic.iloc[:-1], metric="net_income")
    expected = forecast(fitted).point
    updated = update(fitted, synthetic)
    assert updated.params == fitted.params
    assert updated.record.ordinal[-1] == synthetic.index[-1].ordinal
    assert updated.record.combined[-1] == pytest.approx(expected)
    assert forecast(updated).target == "2024Q1"


def test_update_refits_fully_after_enough_new_observations(synthetic: pd.DataFrame) -> None:
    spec = ForecastSpec(full_refit_every=2)
    fitted = fit(synthetic.iloc[:-2], metric="net_income", spec=spec)
    once = update(fitted, synthetic.iloc[:-1])
    twice = update(once, synthetic)
    assert once.refit_n_obs == fitted.refit_n_obs
    assert twice.refit_n_obs == twice.n_obs == fitted.n_obs + 2


def test_fit_needs_min_train_observations(synthetic: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="need at least min_train=4"):
        fit(synthetic.iloc[:3], metric="net_income")


def test_unknown_metric_is_named_in_the_error(synthetic: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="'revenue' not in history"):
        fit(synthetic, metric="revenue")


def test_unknown_error_scale_is_rejected_with_the_choices() -> None:
    with pytest.raises(ValueError, match="error_scale must be one of"):
        ForecastSpec(error_scale="range")


def test_target_beyond_the_horizon_is_rejected(synthetic: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="outside the forecastable quarters"):
        forecast(fit(synthetic, metric="net_income"), target="2030Q1")


def test_fitted_state_is_small_and_holds_no_model_objects(synthetic: pd.DataFrame) -> None:
    fitted = fit(synthetic, metric="net_income")
    blob = pickle.dumps(fitted)
    assert len(blob) < 8_000
    assert b"statsmodels" not in blob
    assert b"DataFrame" not in blob


def test_median_weights_pick_the_middle_candidate(synthetic: pd.DataFrame) -> None:
    fitted = fit(synthetic, metric="net_income")
    result = forecast(fitted)
    column = fitted.ahead[:, 0]
    available = column[np.isfinite(column)]
    assert result.point == pytest.approx(float(np.median(available)))
    assert sum(m.weight for m in result.models) == pytest.approx(1.0)
    assert result.method.startswith("median")


def test_update_takes_new_guidance_into_the_forecast(synthetic: pd.DataFrame) -> None:
    spec = ForecastSpec(combination="skill", models=MODEL_NAMES)  # the candidate, opted in
    fitted = fit(synthetic, metric="net_income", spec=spec)
    guidance = pd.DataFrame(
        {"issued_in_quarter": ["2023Q4"], "for_quarter": ["2024Q1"], "metric": ["net_income"],
         "low": [2_000.0], "high": [2_200.0]}
    )  # fmt: skip
    updated = update(fitted, synthetic, guidance=guidance)
    weights = {m.name: m.weight for m in forecast(updated).models}
    assert weights["guidance"] > 0
    assert forecast(updated).point > forecast(fitted).point


def random_walk_history(seed: int, quarters: int = 24) -> pd.DataFrame:
    """Random walk plus noise around 1000 (both σ = 30), no drivers."""
    rng = np.random.default_rng(seed)
    level = 1000 + np.cumsum(rng.normal(0, 30, quarters))
    index = pd.period_range("2015Q1", periods=quarters, freq="Q-DEC", name="period")
    return pd.DataFrame({"net_income": level + rng.normal(0, 30, quarters)}, index=index)


def test_backtest_intervals_cover_about_nominal_on_random_walks() -> None:
    rows = [
        row
        for seed in range(6)
        for row in run_backtest(random_walk_history(seed), metrics=("net_income",)).forecasts
    ]
    inside80 = np.mean([r.lo80 <= r.actual <= r.hi80 for r in rows])
    inside95 = np.mean([r.lo95 <= r.actual <= r.hi95 for r in rows])
    assert len(rows) > 100
    assert 0.70 <= inside80 <= 0.92
    assert 0.88 <= inside95 <= 1.0


def seasonal_history(quarters: int = 32, seed: int = 5) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    pattern = np.array([0.8, 1.05, 1.3, 0.85])
    step = np.arange(quarters)
    values = (400 + 6 * step) * pattern[step % 4] * rng.lognormal(0, 0.02, quarters)
    index = pd.period_range("2015Q1", periods=quarters, freq="Q-DEC", name="period")
    frame = pd.DataFrame({"net_income": values}, index=index)
    frame.iloc[[9, 17], 0] = np.nan
    return frame


def test_a_seasonal_series_is_forecast_with_its_seasonal_pattern() -> None:
    history = seasonal_history()
    peak, trough = (
        forecast(fit(history, metric="net_income"), target=t) for t in ("2023Q3", "2023Q4")
    )
    assert peak.point > 1.3 * trough.point
    assert peak.point == pytest.approx((400 + 6 * 34) * 1.3, rel=0.06)
    assert peak.lo95 < peak.point < peak.hi95


def test_seasonal_record_equals_refitting_at_every_origin() -> None:
    history = seasonal_history()
    fast = run_backtest(history, metrics=("net_income",)).to_dict()["forecasts"]
    assert len(fast) >= 20
    for row in fast[-8:]:
        period = pd.Period(row["period"], "Q-DEC")
        slow = forecast(
            fit(history.loc[history.index < period], metric="net_income"), target=row["period"]
        )
        assert_allclose(
            [slow.point, slow.lo80, slow.hi95],
            [row["forecast"], row["lo80"], row["hi95"]],
            rtol=1e-9,
        )


def test_an_update_that_finds_seasonality_the_fit_did_not_fits_the_seasonal_candidates() -> None:
    history = seasonal_history(quarters=32)
    early = history.iloc[:10]  # too short for the seasonality test: no seasonal candidate
    fitted = fit(early, metric="net_income", spec=ForecastSpec(full_refit_every=50))
    assert dict(zip(fitted.model_names, fitted.params, strict=True))["theta"] == ()
    later = update(fitted, history.iloc[:28])
    skills = {m.name: m for m in forecast(later).models}
    assert skills["theta"].n > 0  # theta spoke once the series proved seasonal
