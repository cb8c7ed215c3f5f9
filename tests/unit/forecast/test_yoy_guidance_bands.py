"""Guidance stated as year-on-year growth alone gets its band from the history, so the
backtest and the forecast's guidance candidate see it."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from services.common.distribution import band_probabilities
from services.forecast.core import forecast_company, load_guidance_csv, run_backtest
from services.forecast.core.data import derive_yoy_bands, guidance_band, guidance_frame, quarter

pytestmark = pytest.mark.unit


def history() -> pd.DataFrame:
    index = pd.period_range("2022Q1", "2024Q2", freq="Q-DEC", name="period")
    values = 500.0 + 20.0 * np.arange(len(index)) + np.tile([0.0, 6.0, -4.0, 3.0], 3)[: len(index)]
    return pd.DataFrame({"net_income": values}, index=index)


def growth_only(for_quarter: str, yoy_low: float, yoy_high: float) -> pd.DataFrame:
    row = {"issued_in_quarter": "2024Q1", "for_quarter": for_quarter, "metric": "net_income",
           "low": np.nan, "high": np.nan, "yoy_low_pct": yoy_low, "yoy_high_pct": yoy_high}  # fmt: skip
    return guidance_frame(pd.DataFrame([row]))


def test_a_quarter_grows_from_the_same_quarter_a_year_earlier() -> None:
    frame = history()
    prior = float(frame.loc[quarter("2023Q2"), "net_income"])

    derived = derive_yoy_bands(growth_only("2024Q2", 10.0, 15.0), frame).iloc[0]

    assert (derived["low"], derived["high"]) == pytest.approx((prior * 1.10, prior * 1.15))
    assert derived["derived_from"] == f"the 2023Q2 actual of {prior:,.1f} grown +10.0% to +15.0%"


def test_a_fiscal_year_grows_from_the_sum_of_the_prior_years_quarters() -> None:
    frame = history()
    prior = float(frame.loc[quarter("2023Q1") : quarter("2023Q4"), "net_income"].sum())

    derived = derive_yoy_bands(growth_only("FY2024", 5.0, np.nan), frame).iloc[0]

    assert derived["low"] == pytest.approx(prior * 1.05)
    assert math.isnan(derived["high"])
    assert derived["derived_from"] == f"the FY2023 actual of {prior:,.1f} grown at least +5.0%"


def test_without_a_known_positive_prior_the_band_stays_unknown() -> None:
    frame = history()
    frame.loc[quarter("2023Q2"), "net_income"] = np.nan
    frame.loc[quarter("2023Q3"), "net_income"] = -10.0

    derived = derive_yoy_bands(
        pd.concat([growth_only("2024Q2", 10.0, 15.0), growth_only("2024Q3", 10.0, 15.0)]), frame
    )

    assert derived[["low", "high"]].isna().all().all()
    assert derived["derived_from"].isna().all()


def test_a_stated_amount_band_is_never_rederived() -> None:
    stated = growth_only("2024Q2", 10.0, 15.0).assign(low=1.0, high=2.0)

    derived = derive_yoy_bands(stated, history()).iloc[0]

    assert (derived["low"], derived["high"], derived["derived_from"]) == (1.0, 2.0, None)


def test_the_band_lookup_derives_growth_bands_when_given_the_history() -> None:
    frame, guidance = history(), growth_only("2024Q2", 10.0, 15.0)
    prior = float(frame.loc[quarter("2023Q2"), "net_income"])

    assert guidance_band(guidance, metric="net_income", period=quarter("2024Q2")) is None
    assert guidance_band(
        guidance, metric="net_income", period=quarter("2024Q2"), history=frame
    ) == pytest.approx((prior * 1.10, prior * 1.15))


def test_the_backtest_scores_a_growth_only_quarter_against_its_derived_band(
    tmp_path: Path,
) -> None:
    frame = history()
    path = tmp_path / "guidance.csv"
    path.write_text(
        "issued_in_quarter,for_quarter,metric,low,high,yoy_low_pct,yoy_high_pct\n"
        "2024Q1,2024Q2,net_income,,,2.0,8.0\n"
    )
    guidance = load_guidance_csv(path, history=frame)
    prior = float(frame.loc[quarter("2023Q2"), "net_income"])

    (row,) = [r for r in run_backtest(frame, guidance=guidance, metrics=("net_income",)).forecasts
              if r.period == "2024Q2"]  # fmt: skip
    forecast = forecast_company(
        frame.loc[frame.index < quarter("2024Q2")], target="2024Q2", guidance=guidance
    )["net_income"]

    expected = band_probabilities(forecast.quantiles, low=prior * 1.02, high=prior * 1.08)
    assert (row.p_below, row.p_inside, row.p_above) == pytest.approx(expected.as_tuple())
