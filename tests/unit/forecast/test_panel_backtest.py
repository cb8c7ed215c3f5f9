"""The panel backtest: a long CSV of many series scored one step ahead, bands learned across."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from services.forecast.core import fit, forecast
from services.forecast.core.panel import PanelError, load_panel_csv, run_panel

pytestmark = pytest.mark.unit


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "panel.csv"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name,quarter,value\nA,2020Q1,1\n", "line 1: panel needs columns"),
        ("series,quarter,value\nA,2020Q1,1\nA,2020Q2,12x\n", "line 3: 'value' is not a number"),
        ("series,quarter,value\nA,2020Q1,1\nA,2020Q5,2\n", "line 3: 'quarter'"),
        ("series,quarter,value\nA,2020Q1,\n", "line 2: 'value' is empty"),
        ("series,quarter,value\n,2020Q1,1\n", "line 2: 'series' is empty"),
        ("series,quarter,value\nA,2020Q1,1\nA,2020Q1,2\n", "line 3: series 'A' repeats"),
        ("series,quarter,value,low,high\nA,2020Q1,1,5,4\n", "line 2: 'high' 4.0 is below"),
        ("series,quarter,value\nA,2020Q1,inf\n", "line 2: 'value' is not finite"),
    ],
)
def test_a_malformed_row_is_refused_naming_its_line(
    tmp_path: Path, text: str, message: str
) -> None:
    with pytest.raises(PanelError, match=message):
        load_panel_csv(write(tmp_path, text))


def seasonal_panel(count: int = 6, quarters: int = 32, seed: int = 2) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    pattern = np.array([0.85, 1.1, 1.2, 0.85])
    for k in range(count):
        step = np.arange(quarters)
        values = (300 + 40 * k + 3 * step) * pattern[step % 4] * rng.lognormal(0, 0.03, quarters)
        periods = pd.period_range("2012Q1", periods=quarters, freq="Q-DEC")
        rows.append(pd.DataFrame({"series": f"S{k}", "quarter": periods, "value": values}))
    return pd.concat(rows, ignore_index=True).assign(low=np.nan, high=np.nan)


def test_the_report_has_the_agreed_shape_and_scores_the_last_quarters() -> None:
    report = run_panel(seasonal_panel(), last=5).to_dict()
    assert len(report["series"]) == 6
    first = report["series"][0]
    assert set(first) == {"series", "forecasts"}
    assert [f["period"] for f in first["forecasts"]] == [
        str(p) for p in pd.period_range("2018Q4", periods=5, freq="Q-DEC")
    ]
    assert set(first["forecasts"][0]) == {"period", "forecast", "lo80", "hi80", "lo95", "hi95",
                                          "actual", "pit"}  # fmt: skip
    summary = report["summary"]
    assert {"series", "forecasts", "mape", "smape", "mase", "coverage80", "coverage95",
            "seconds"} <= set(summary)  # fmt: skip
    assert summary["forecasts"] == 30
    assert 0 < summary["mape"] < 10


def test_a_panel_forecast_equals_a_fit_on_the_quarters_before_it() -> None:
    panel = seasonal_panel(count=1)
    report = run_panel(panel, last=3)
    rows = panel.set_index(pd.PeriodIndex(panel["quarter"], freq="Q-DEC", name="period"))
    for row in report.series[0].forecasts:
        period = pd.Period(row.period, "Q-DEC")
        history = rows.loc[rows.index < period, ["value"]]
        again = forecast(fit(history, metric="value"), target=row.period)
        assert_allclose([again.point, again.lo80, again.hi95], [row.forecast, row.lo80, row.hi95])


def banded_panel(count: int = 8, quarters: int = 24, *, beat: float = 0.05) -> pd.DataFrame:
    """Series whose actuals land about ``beat`` above a ±2% band guided for every quarter."""
    rng = np.random.default_rng(5)
    rows = []
    for k in range(count):
        values = 500 * np.exp(np.cumsum(rng.normal(0.01, 0.05, quarters)))
        mids = values / (1 + beat) * np.exp(rng.normal(0, 0.01, quarters))
        periods = pd.period_range("2015Q1", periods=quarters, freq="Q-DEC")
        rows.append(pd.DataFrame({"series": f"B{k}", "quarter": periods, "value": values,
                                  "low": mids * 0.98, "high": mids * 1.02}))  # fmt: skip
    return pd.concat(rows, ignore_index=True)


def test_banded_rows_are_called_and_scored_and_the_panel_learns_where_actuals_land() -> None:
    report = run_panel(banded_panel(), last=6)
    rows = [f for s in report.series for f in s.forecasts]
    assert all(f.outcome is not None for f in rows)
    for f in rows:
        assert f.p_below + f.p_inside + f.p_above == pytest.approx(1.0)
        assert f.brier == pytest.approx(
            sum((p - (f.outcome == side)) ** 2 for p, side in
                ((f.p_below, "below"), (f.p_inside, "inside"), (f.p_above, "above")))
        )  # fmt: skip
    summary = report.summary
    assert summary.calls == len(rows)
    assert summary.brier is not None
    assert summary.brier < 2 / 3  # better than the uniform call
    assert summary.p_above is not None
    assert summary.p_above > 0.6


def test_a_call_uses_no_other_series_quarter_from_its_own_period_or_later() -> None:
    panel = banded_panel()
    base = run_panel(panel, last=6)
    changed = panel.copy()
    late = (changed["series"] != "B0") & (changed["quarter"] >= pd.Period("2020Q2", "Q-DEC"))
    changed.loc[late, "value"] *= 0.5
    again = run_panel(changed, last=6)
    early = [f for f in base.series[0].forecasts if f.period < "2020Q2"]
    same = [f for f in again.series[0].forecasts if f.period < "2020Q2"]
    assert early
    assert early == same
