"""Loading the bundled history and the backtest report's contract."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from services.cli.demo import DEFAULT_DATA_DIR
from services.forecast.core import load_guidance_csv, load_history_csv, run_backtest

pytestmark = pytest.mark.unit
DATA = DEFAULT_DATA_DIR
CORE = Path(__file__).resolve().parents[3] / "services" / "forecast" / "core"
ALLOWED = {"numpy", "pandas", "scipy", "statsmodels", "services"}


@pytest.fixture(scope="module")
def history() -> pd.DataFrame:
    return load_history_csv(DATA / "qfin_quarterly.csv")


@pytest.fixture(scope="module")
def guidance() -> pd.DataFrame:
    return load_guidance_csv(DATA / "qfin_guidance.csv")


def test_history_has_a_contiguous_quarterly_index_and_keeps_gaps(history: pd.DataFrame) -> None:
    assert history.index.name == "period"
    assert history.index.freqstr == "Q-DEC"
    assert len(history) == 21
    assert history.index[0] == pd.Period("2019Q1", "Q-DEC")
    assert {"source_url", "period_end"}.isdisjoint(history.columns)
    assert all(dtype == np.float64 for dtype in history.dtypes)
    assert int(history["net_income"].notna().sum()) == 13
    assert np.isnan(history.loc[pd.Period("2023Q3", "Q-DEC"), "net_income"])


def test_guidance_has_typed_ranges(guidance: pd.DataFrame) -> None:
    row = guidance[guidance["metric"] == "net_income"].iloc[0]
    assert (row["for_quarter"], row["low"], row["high"]) == ("2024Q2", 1170.0, 1230.0)
    assert np.isnan(guidance.iloc[0]["yoy_low_pct"])


def test_backtest_report_has_the_agreed_shape(
    history: pd.DataFrame, guidance: pd.DataFrame
) -> None:
    report = run_backtest(history, guidance=guidance).to_dict()
    row = report["forecasts"][0]
    assert set(row) == {"period", "metric", "forecast", "lo80", "hi80", "lo95", "hi95",
                        "p_below", "p_inside", "p_above", "actual", "model", "pit", "as_of", "low",
                        "high", "outcome", "brier", "rps", "log_score", "guidance_weight",
                        "guidance_only"}  # fmt: skip
    assert set(report["summary"]) == {"net_income", "non_gaap_net_income"}
    summary = report["summary"]["net_income"]
    assert set(summary) == {"mape", "mase", "coverage80", "coverage95", "naive_mape",
                            "drift_mape", "guidance_mid_mape", "bands"}  # fmt: skip
    assert summary["guidance_mid_mape"] is None
    assert summary["bands"] is None
    assert all(r["p_inside"] is None for r in report["forecasts"])


def test_band_probabilities_appear_where_guidance_exists(history: pd.DataFrame) -> None:
    guidance = pd.DataFrame(
        {"issued_in_quarter": ["2023Q4"], "for_quarter": ["2024Q1"], "metric": ["net_income"],
         "low": [1100.0], "high": [1200.0], "yoy_low_pct": [np.nan], "yoy_high_pct": [np.nan]}
    )  # fmt: skip
    report = run_backtest(history, guidance=guidance, metrics=("net_income",)).to_dict()
    last = report["forecasts"][-1]
    assert last["period"] == "2024Q1"
    assert last["p_below"] + last["p_inside"] + last["p_above"] == pytest.approx(1.0)
    assert last["outcome"] == "inside"
    assert last["brier"] == pytest.approx(
        last["p_below"] ** 2 + (1 - last["p_inside"]) ** 2 + last["p_above"] ** 2
    )
    bands = report["summary"]["net_income"]["bands"]
    assert bands["calls"] == 1
    assert bands["uniform"]["brier"] == pytest.approx(2 / 3)
    assert bands["midpoint"]["brier"] == 0.0
    assert report["summary"]["net_income"]["guidance_mid_mape"] == pytest.approx(
        100 * abs(1160.1 - 1150.0) / 1160.1
    )


def test_custom_vintages_are_used_for_each_origin(history: pd.DataFrame) -> None:
    calls: list[pd.Period] = []

    def as_of(period: pd.Period) -> pd.DataFrame:
        calls.append(period)
        return history.loc[history.index < period]

    plain = run_backtest(history, metrics=("net_income",)).to_dict()["forecasts"]
    vintage = run_backtest(history, metrics=("net_income",), history_as_of=as_of).to_dict()
    assert [str(p) for p in calls] == [r["period"] for r in plain]
    assert [r["forecast"] for r in vintage["forecasts"]] == pytest.approx(
        [r["forecast"] for r in plain]
    )


def imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def test_core_imports_only_numpy_pandas_scipy_statsmodels_and_stdlib() -> None:
    import sys

    modules = sorted(CORE.glob("*.py"))
    found = set().union(*(imported_roots(p) for p in modules))
    assert len(modules) >= 5
    assert found - ALLOWED <= set(sys.stdlib_module_names), found - ALLOWED
    assert not found & {"pydantic", "redis", "faststream"}


def test_per_quarter_errors_are_reported(history: pd.DataFrame) -> None:
    report = run_backtest(history, metrics=("net_income",))
    rows = report.per_quarter("net_income")
    assert [r["period"] for r in rows] == [r.period for r in report.forecasts]
    first = rows[0]
    assert first["error"] == pytest.approx(first["actual"] - first["forecast"])
    assert first["pct_error"] == pytest.approx(100 * first["error"] / first["actual"])
    coverage = 100 * np.mean([r["inside80"] for r in rows])
    assert coverage == pytest.approx(report.summary["net_income"].coverage80)


def test_each_fiscal_year_statement_is_called_as_the_live_check_calls_it(
    history: pd.DataFrame,
) -> None:
    guidance = pd.DataFrame(
        {"issued_in_quarter": ["2022Q1", "2022Q3"], "for_quarter": ["FY2022", "FY2022"],
         "metric": ["net_income", "net_income"], "low": [3000.0, 3900.0],
         "high": [3400.0, 4100.0], "yoy_low_pct": [np.nan] * 2, "yoy_high_pct": [np.nan] * 2}
    )  # fmt: skip
    report = run_backtest(history, guidance=guidance, metrics=("net_income",))
    fiscal = [r for r in report.forecasts if r.period == "FY2022"]
    assert [r.as_of for r in fiscal] == ["2022Q2", "2022Q4"]
    actual = float(history.loc["2022Q1":"2022Q4", "net_income"].sum())
    assert all(r.actual == pytest.approx(actual) for r in fiscal)
    first, last = fiscal
    assert (first.low, first.high, last.low, last.high) == (3000.0, 3400.0, 3900.0, 4100.0)
    # the later call knows three quarters: its interval is the narrower
    assert last.hi95 - last.lo95 < first.hi95 - first.lo95
    for row in fiscal:
        assert row.p_below + row.p_inside + row.p_above == pytest.approx(1.0)
        assert row.outcome in ("below", "inside", "above")
    bands = report.summary["net_income"].bands
    assert bands is not None
    assert bands.calls == 2
