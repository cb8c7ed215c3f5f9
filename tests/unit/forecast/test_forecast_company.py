"""Company forecasts reconcile: non-GAAP net income = net income + share-based compensation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from services.cli.demo import DEFAULT_DATA_DIR
from services.forecast.core import (
    ForecastSpec,
    MetricForecast,
    forecast_company,
    load_guidance_csv,
    load_history_csv,
    run_backtest,
)
from services.forecast.core.company import DIRECT, RECONCILED, choose_way, non_gaap_fits
from services.forecast.core.data import guidance_frame

DATA = DEFAULT_DATA_DIR

pytestmark = pytest.mark.unit


def test_reconciled_non_gaap_is_net_income_plus_sbc_in_point_and_quantiles(
    synthetic: pd.DataFrame,
) -> None:
    no_direct = synthetic.drop(columns="non_gaap_net_income")
    result = forecast_company(no_direct, target="2024Q1")
    ni, ng = result["net_income"], result["non_gaap_net_income"]
    sbc = ng.point - ni.point
    assert 40 < sbc < 60
    gaps = [g - n for (_, g), (_, n) in zip(ng.quantiles, ni.quantiles, strict=True)]
    assert np.all(np.diff(gaps) >= -1e-9)  # SBC quantiles increase too
    assert ng.lo80 - ni.lo80 <= sbc <= ng.hi80 - ni.hi80
    assert "share_based_comp" in ng.method


def test_sbc_gaps_are_filled_by_the_reconciliation_identity(synthetic: pd.DataFrame) -> None:
    no_sbc = synthetic.assign(share_based_comp=np.nan)
    fits = non_gaap_fits(no_sbc, None, ForecastSpec())
    both = synthetic["net_income"].notna() & synthetic["non_gaap_net_income"].notna()
    assert fits.sbc is not None
    assert fits.sbc.n_obs == int(both.sum())


def test_sparse_sbc_falls_back_to_forecasting_non_gaap_directly(synthetic: pd.DataFrame) -> None:
    sparse = synthetic.assign(share_based_comp=np.nan)
    sparse.loc[sparse.index[:-3], "net_income"] = np.nan
    result = forecast_company(sparse, target="2024Q1")
    assert set(result) == {"non_gaap_net_income"}
    assert "share_based_comp" not in result["non_gaap_net_income"].method


def test_guided_metrics_are_forecast_as_well(synthetic: pd.DataFrame) -> None:
    guidance = guidance_frame(
        pd.DataFrame(
            {"issued_in_quarter": ["2023Q4"], "for_quarter": ["2024Q1"], "metric": ["loan_volume"],
             "low": [19_000.0], "high": [20_000.0]}
        )
    )  # fmt: skip
    result = forecast_company(synthetic, target="2024Q1", guidance=guidance)
    assert set(result) == {"net_income", "non_gaap_net_income", "loan_volume"}


def test_bundled_history_reconciles_for_the_guided_quarter() -> None:
    history = load_history_csv(str(DATA / "qfin_quarterly.csv"))
    guidance = load_guidance_csv(str(DATA / "qfin_guidance.csv"))
    result = forecast_company(history, target="2024Q2", guidance=guidance)
    ni, ng = result["net_income"], result["non_gaap_net_income"]
    bands = ng.band_probabilities(low=1220.0, high=1280.0)
    assert_allclose(bands.p_below + bands.p_inside + bands.p_above, 1.0)
    assert 0 < ng.point - ni.point < 100


def test_non_gaap_backtest_from_records_equals_refitting_at_every_origin(
    synthetic: pd.DataFrame,
) -> None:
    def as_of(period: pd.Period) -> pd.DataFrame:
        return synthetic.loc[synthetic.index < period]

    metrics = ("non_gaap_net_income",)
    fast = run_backtest(synthetic, metrics=metrics).to_dict()["forecasts"]
    slow = run_backtest(synthetic, metrics=metrics, history_as_of=as_of).to_dict()["forecasts"]
    columns = ("forecast", "lo80", "hi80", "lo95", "hi95")
    assert [r["period"] for r in fast] == [r["period"] for r in slow]
    assert_allclose(
        [[r[c] for c in columns] for r in fast], [[r[c] for c in columns] for r in slow]
    )


def test_non_gaap_way_is_chosen_by_past_absolute_error() -> None:
    def entry(point: float, actual: float) -> tuple[MetricForecast, float]:
        return MetricForecast("x", "2020Q1", point, 0, 0, 0, 0, (), (), (), 0, ""), actual

    past = {
        RECONCILED: {"2020Q1": entry(10.0, 12.0), "2020Q2": entry(10.0, 12.0)},
        DIRECT: {"2020Q1": entry(11.0, 12.0), "2020Q2": entry(13.5, 12.0)},
    }
    options = {RECONCILED: None, DIRECT: None}
    assert choose_way(past, options, before="2020Q3") == DIRECT
    assert choose_way(past, options, before="2020Q2") == RECONCILED  # too few quarters
    assert choose_way(past, {DIRECT: None}, before="2020Q2") == DIRECT
