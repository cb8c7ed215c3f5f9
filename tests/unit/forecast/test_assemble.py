"""Native-frequency facts become one quarterly frame, by each metric's kind."""

from __future__ import annotations

import math

import pytest

from services.forecast.assemble import assemble

pytestmark = pytest.mark.unit


def test_monthly_flows_are_summed_and_stocks_take_the_quarter_end() -> None:
    history = assemble(
        [
            ("loan_volume", "2024-01", 30.0), ("loan_volume", "2024-02", 33.0), ("loan_volume", "2024-03", 37.0),
            ("outstanding_balance", "2024-01", 160.0), ("outstanding_balance", "2024-03", 170.0),
        ]
    )  # fmt: skip
    row = history.frame.loc["2024Q1"]
    assert row["loan_volume"] == pytest.approx(100.0)
    assert row["outstanding_balance"] == pytest.approx(170.0)
    assert ("loan_volume", "2024Q1") not in history.partial


def test_a_partial_quarter_of_a_flow_is_nowcast_at_its_run_rate_and_marked_partial() -> None:
    history = assemble([("loan_volume", "2024-04", 30.0), ("loan_volume", "2024-05", 31.0)])
    assert history.frame.loc["2024Q2", "loan_volume"] == pytest.approx(61.0 * 91 / 61)
    assert ("loan_volume", "2024Q2") in history.partial


def test_rates_are_weighted_by_their_weight_metric() -> None:
    history = assemble(
        [
            ("day1_delinquency_pct", "2024-01", 4.0), ("day1_delinquency_pct", "2024-02", 6.0),
            ("day1_delinquency_pct", "2024-03", 5.0),
            ("loan_volume", "2024-01", 10.0), ("loan_volume", "2024-02", 30.0), ("loan_volume", "2024-03", 10.0),
        ]
    )  # fmt: skip
    assert history.frame.loc["2024Q1", "day1_delinquency_pct"] == pytest.approx(
        (40 + 180 + 50) / 50
    )


def test_a_reported_quarterly_figure_wins_and_gaps_stay_gaps() -> None:
    history = assemble(
        [("net_income", "2023Q1", 900.0), ("net_income", "2023Q3", 950.0), ("loan_volume", "2023-02", 5.0),
         ("loan_volume", "2023Q1", 99.0)]
    )  # fmt: skip
    assert history.frame.loc["2023Q1", "loan_volume"] == 99.0
    assert math.isnan(history.frame.loc["2023Q2", "net_income"])
    assert list(history.frame.index.astype(str)) == ["2023Q1", "2023Q2", "2023Q3"]
