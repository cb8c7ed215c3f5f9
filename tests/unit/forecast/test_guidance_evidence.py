"""Guidance as evidence: positions, the published prior, its updates, stacking, no look-ahead."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from services.common.distribution import band_probabilities
from services.forecast.core import ForecastSpec, forecast_company, run_backtest
from services.forecast.core.evidence import (
    PUBLISHED_WEIGHT,
    GuidedBand,
    evidence_quantiles,
    learned_prior,
    published_prior,
    stacking_weight,
)
from services.forecast.core.types import QUANTILE_PROBABILITIES

pytestmark = pytest.mark.unit


def test_positions_run_from_minus_one_at_the_low_end_to_one_at_the_high_end() -> None:
    band = GuidedBand(1170.0, 1230.0)
    assert band.position(1170.0) == -1.0
    assert band.position(1230.0) == 1.0
    assert band.position(1260.0) == 2.0
    assert_allclose(band.value(np.array([-1.0, 0.0, 1.0])), [1170.0, 1200.0, 1230.0])


def test_a_one_bound_band_measures_in_one_percent_of_its_bound() -> None:
    at_least = GuidedBand(1000.0, None)
    assert at_least.position(1010.0) == pytest.approx(1.0)


def test_the_published_prior_reproduces_the_published_landing_shares() -> None:
    band = GuidedBand(90.0, 110.0)
    grid = evidence_quantiles(band, published_prior().predictive([]), QUANTILE_PROBABILITIES)
    probs = band_probabilities(grid, low=band.low, high=band.high)
    # centred on the upper bound (Ciconte, Kirk & Tucker 2014), 30% inside (Hribar et al.)
    assert probs.p_above == pytest.approx(0.5, abs=0.01)
    assert probs.p_inside == pytest.approx(0.30, abs=0.01)
    assert probs.p_below == pytest.approx(0.20, abs=0.01)


def test_a_record_of_beats_moves_the_centre_up_and_a_long_record_dominates_the_prior() -> None:
    prior = published_prior()
    few = prior.predictive([4.0, 5.0])
    many = prior.predictive([4.0, 5.0] * 20)
    assert prior.location < few.location < many.location
    assert many.location == pytest.approx((prior.strength * 1.0 + 40 * 4.5) / (prior.strength + 40))
    assert many.scale < few.scale


def test_the_posterior_predictive_is_the_normal_inverse_gamma_one() -> None:
    prior = published_prior()
    x = np.array([0.5, 2.0, 3.5])
    got = prior.predictive(list(x))
    k, m, nu, s2 = prior.strength, prior.location, prior.dof, prior.scale**2
    n, mean = x.size, x.mean()
    k_n, nu_n = k + n, nu + n
    m_n = (k * m + n * mean) / k_n
    s2_n = (nu * s2 + ((x - mean) ** 2).sum() + k * n * (mean - m) ** 2 / k_n) / nu_n
    assert (got.dof, got.location) == pytest.approx((nu_n, m_n))
    assert got.scale == pytest.approx(math.sqrt(s2_n * (1 + 1 / k_n)))


def test_the_learned_prior_follows_companies_as_they_accumulate() -> None:
    rng = np.random.default_rng(3)
    companies = {f"C{k}": list(rng.normal(-2.0, 1.0, 8)) for k in range(40)}
    learned = learned_prior(companies)
    assert learned.location < -1.5  # 40 companies against the published prior's 5
    assert learned_prior({"only": [3.0, 4.0]}) == published_prior()


def test_stacking_weight_is_the_prior_mode_without_a_record_and_follows_the_record() -> None:
    assert stacking_weight([], []) == pytest.approx(PUBLISHED_WEIGHT, abs=0.01)
    guidance_right = stacking_weight([0.0] * 12, [-3.0] * 12)
    guidance_wrong = stacking_weight([-6.0] * 12, [-1.0] * 12)
    assert guidance_right > 0.9
    assert guidance_wrong < 0.1


def guided_company(quarters: int = 28, *, beat: float = 0.06, seed: int = 11) -> tuple:
    """A company whose actuals land about ``beat`` above the midpoint of a ±2.5% band it
    guided each quarter from a noisy view of the coming quarter."""
    rng = np.random.default_rng(seed)
    index = pd.period_range("2017Q1", periods=quarters, freq="Q-DEC", name="period")
    level = 1000 * np.exp(np.cumsum(rng.normal(0.02, 0.06, quarters)))
    frame = pd.DataFrame({"net_income": level}, index=index)
    mids = level / (1 + beat) * np.exp(rng.normal(0, 0.02, quarters))
    guidance = pd.DataFrame(
        {
            "issued_in_quarter": [str(p - 1) for p in index[8:]],
            "for_quarter": [str(p) for p in index[8:]],
            "metric": "net_income",
            "low": mids[8:] * 0.975,
            "high": mids[8:] * 1.025,
            "yoy_low_pct": np.nan,
            "yoy_high_pct": np.nan,
        }
    )
    return frame, guidance


def test_guided_calls_learn_a_beating_company_and_outscore_the_uniform_call() -> None:
    frame, guidance = guided_company()
    report = run_backtest(frame, guidance=guidance, metrics=("net_income",))
    bands = report.summary["net_income"].bands
    assert bands is not None
    assert bands.calls >= 15
    assert bands.model.brier < bands.uniform.brier
    calls = [r for r in report.forecasts if r.outcome is not None]
    assert np.mean([r.p_above for r in calls[-5:]]) > np.mean([r.p_above for r in calls[:3]])
    assert all(r.outcome == "above" for r in calls[-5:])


def test_a_guided_call_uses_nothing_from_its_quarter_or_later() -> None:
    frame, guidance = guided_company()
    target = frame.index[20]
    before = forecast_company(
        frame.loc[frame.index < target], target=str(target), guidance=guidance
    )["net_income"]
    changed = frame.copy()
    changed.loc[changed.index >= target, "net_income"] *= 3.0
    later = guidance.assign(low=guidance["low"] * 2, high=guidance["high"] * 2)
    later = pd.concat([guidance[guidance["for_quarter"] <= str(target)],
                       later[later["for_quarter"] > str(target)]])  # fmt: skip
    again = forecast_company(
        changed.loc[changed.index < target], target=str(target), guidance=later
    )["net_income"]
    assert again.quantiles == before.quantiles


def test_the_backtest_call_equals_the_live_call_made_before_the_quarter() -> None:
    frame, guidance = guided_company()
    report = run_backtest(frame, guidance=guidance, metrics=("net_income",))
    for row in [r for r in report.forecasts if r.outcome is not None][-3:]:
        period = pd.Period(row.period, "Q-DEC")
        live = forecast_company(
            frame.loc[frame.index < period], target=row.period, guidance=guidance
        )["net_income"]
        probs = live.band_probabilities(low=row.low, high=row.high)
        assert_allclose(probs.as_tuple(), (row.p_below, row.p_inside, row.p_above), atol=1e-9)


def test_without_evidence_the_forecast_is_the_statistical_one() -> None:
    frame, guidance = guided_company()
    target = str(frame.index[20])
    known = frame.loc[frame.index < frame.index[20]]
    plain = forecast_company(known, target=target, guidance=guidance, evidence=None)
    guided = forecast_company(known, target=target, guidance=guidance)
    assert plain["net_income"].method != guided["net_income"].method
    assert "guidance evidence" in guided["net_income"].method
    assert "guidance evidence" not in plain["net_income"].method
    assert guided["net_income"].point != plain["net_income"].point


def test_a_track_survives_the_store_and_keeps_only_the_recent_ones() -> None:
    from services.forecast.core.guided import TRACK_LIMIT, PastCall, Track

    long = Track(tuple(float(i) for i in range(60)), (PastCall("2024Q1", -1.5, -2.5),))
    again = Track.from_json(long.to_json())
    assert again.calls == long.calls
    assert again.positions == tuple(float(i) for i in range(60 - TRACK_LIMIT, 60))


def test_other_companies_tracks_teach_the_prior_and_the_weight_but_not_ones_own() -> None:
    from services.forecast.core.guided import PastCall, Track, shared_evidence

    rng = np.random.default_rng(8)
    tracks = {
        f"C{k}": Track(tuple(rng.normal(4.0, 1.0, 10)), (PastCall("2023Q4", 0.0, -4.0),))
        for k in range(30)
    }
    tracks["SELF"] = Track((-50.0,) * 10, (PastCall("2023Q4", -9.0, 0.0),) * 10)
    evidence = shared_evidence(tracks, exclude="SELF")
    assert evidence.prior.location > 3.0
    assert len(evidence.shared_calls) == 30
    assert (
        stacking_weight(
            [c.log_guided for c in evidence.shared_calls],
            [c.log_statistical for c in evidence.shared_calls],
        )
        > 0.9
    )


def test_the_company_track_holds_its_landings_and_resolved_calls() -> None:
    from services.forecast.core.company import non_gaap_fits, past_pairs
    from services.forecast.core.guided import Evidence, company_track

    frame, guidance = guided_company()
    fits = non_gaap_fits(frame, guidance, ForecastSpec())
    pairs = past_pairs(fits, {})
    end = frame.index[-1] + 1
    track = company_track(pairs, frame, guidance, Evidence(), before=end)
    assert len(track.positions) == len(guidance)
    assert np.mean(track.positions) > 1.0  # the company beats: its actuals land high
    assert 0 < len(track.calls) <= len(guidance)
