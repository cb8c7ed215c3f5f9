"""Accounting identities fill gaps in a quarterly history, never replace a reported figure, and
say where each filled figure came from."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.cli.demo import DEFAULT_DATA_DIR
from services.forecast.assemble import assemble
from services.forecast.core import forecast_company, load_history_csv
from services.forecast.core.data import load_history_with_derivations
from services.forecast.core.identities import (
    IDENTITIES,
    NCI_LOSS,
    Derivation,
    fill_identities,
)
from services.forecast.events import derived_inputs
from tests.unit.forecast.conftest import synthetic_history

pytestmark = pytest.mark.unit
NI, NG, SBC, ATTR = (
    "net_income",
    "non_gaap_net_income",
    "share_based_comp",
    "net_income_attributable",
)
NAN = float("nan")


def frame(**columns: list[float]) -> pd.DataFrame:
    length = len(next(iter(columns.values())))
    index = pd.period_range("2023Q1", periods=length, freq="Q-DEC", name="period")
    return pd.DataFrame(columns, index=index, dtype=float)


def at(data: pd.DataFrame, metric: str, period: str) -> float:
    return float(data.loc[pd.Period(period, freq="Q-DEC"), metric])


def test_net_income_is_non_gaap_net_income_less_share_based_compensation() -> None:
    filled = fill_identities(frame(net_income=[100.0, NAN], non_gaap_net_income=[110.0, 130.0],
                                   share_based_comp=[10.0, 12.0]))  # fmt: skip

    assert at(filled.frame, NI, "2023Q2") == 118.0
    assert filled.derived == (
        Derivation(NI, "2023Q2", 118.0, "net_income = non_gaap_net_income - share_based_comp",
                   ((NG, "2023Q2"), (SBC, "2023Q2"))),
    )  # fmt: skip
    assert filled.derived[0].text == "net_income = non_gaap_net_income - share_based_comp (2023Q2)"


def test_whichever_member_is_missing_is_filled_from_the_other_two() -> None:
    filled = fill_identities(frame(net_income=[100.0, 90.0, NAN], non_gaap_net_income=[NAN, 99.0, 120.0],
                                   share_based_comp=[8.0, NAN, 9.0]))  # fmt: skip

    assert [at(filled.frame, NG, "2023Q1"), at(filled.frame, SBC, "2023Q2")] == [108.0, 9.0]
    assert at(filled.frame, NI, "2023Q3") == 111.0
    assert {d.rule for d in filled.derived} == {
        "non_gaap_net_income = net_income + share_based_comp",
        "share_based_comp = non_gaap_net_income - net_income",
        "net_income = non_gaap_net_income - share_based_comp",
    }


def test_a_missing_column_is_derived_where_the_others_are_known() -> None:
    filled = fill_identities(frame(net_income=[100.0, 90.0], non_gaap_net_income=[108.0, NAN]))

    assert at(filled.frame, SBC, "2023Q1") == 8.0
    assert math.isnan(at(filled.frame, SBC, "2023Q2"))


def test_net_income_is_attributable_net_income_plus_the_noncontrolling_share_when_both_known() -> (
    None
):
    filled = fill_identities(
        frame(net_income=[NAN, NAN], net_income_attributable=[1164.287, 900.0],
              **{NCI_LOSS: [4.143, NAN]})
    )  # fmt: skip

    assert at(filled.frame, NI, "2023Q1") == pytest.approx(1160.144)
    assert math.isnan(at(filled.frame, NI, "2023Q2")), "the noncontrolling share is unknown"
    (only,) = filled.derived
    assert only.rule == f"net_income = net_income_attributable - {NCI_LOSS}"


def test_a_reported_figure_is_never_replaced_even_when_the_identity_disagrees() -> None:
    reported = frame(net_income=[100.0], non_gaap_net_income=[150.0], share_based_comp=[40.0])

    filled = fill_identities(reported)

    pd.testing.assert_frame_equal(filled.frame, reported)
    assert filled.derived == ()


def test_a_quarter_is_its_fiscal_year_less_the_other_three_then_other_identities_follow() -> None:
    history = frame(net_income=[100.0, 110.0, 120.0], non_gaap_net_income=[108.0, 119.0, 130.0])

    filled = fill_identities(history, fiscal_years={(NI, 2023): 470.0, (NG, 2023): 507.0})

    assert at(filled.frame, NI, "2023Q4") == 140.0  # beyond the reported span: the span grows
    assert at(filled.frame, NG, "2023Q4") == 150.0
    assert at(filled.frame, SBC, "2023Q4") == 10.0  # from the two derived figures
    q4 = next(d for d in filled.derived if (d.metric, d.period) == (NI, "2023Q4"))
    assert q4.sources == ((NI, "FY2023"), (NI, "2023Q1"), (NI, "2023Q2"), (NI, "2023Q3"))
    assert q4.text == (
        "net_income of a quarter = net_income FY2023 - its other three quarters "
        "(2023Q1, 2023Q2, 2023Q3, FY2023)"
    )


def test_a_year_is_derived_only_for_a_metric_the_company_reports_by_year() -> None:
    history = frame(net_income=[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0],
                    share_based_comp=[1.0] * 8)  # fmt: skip
    history.index = pd.period_range("2022Q1", periods=8, freq="Q-DEC", name="period")

    filled = fill_identities(history, fiscal_years={(NI, 2022): 10.0})

    years = [(d.metric, d.period, d.value) for d in filled.derived if d.period.startswith("FY")]
    assert years == [(NI, "FY2023", 26.0)]


def test_two_rules_for_one_cell_take_the_first_identity() -> None:
    filled = fill_identities(
        frame(net_income=[NAN], non_gaap_net_income=[110.0], share_based_comp=[10.0],
              net_income_attributable=[102.0], **{NCI_LOSS: [1.0]})
    )  # fmt: skip

    assert at(filled.frame, NI, "2023Q1") == 100.0
    assert [d.metric for d in filled.derived] == [NI]


CELL = st.one_of(st.just(NAN), st.floats(min_value=-1000.0, max_value=1000.0))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(CELL, CELL, CELL, CELL, CELL), min_size=1, max_size=12))
def test_fills_keep_every_reported_figure_and_each_fill_satisfies_its_identity(
    rows: list[tuple[float, float, float, float, float]],
) -> None:
    names = [NI, NG, SBC, ATTR, NCI_LOSS]
    reported = frame(**{name: [row[i] for row in rows] for i, name in enumerate(names)})

    filled = fill_identities(reported)

    known = reported.notna()
    pd.testing.assert_frame_equal(filled.frame[known], reported[known])
    cells = [(d.metric, d.period) for d in filled.derived]
    assert len(cells) == len(set(cells))
    assert set(cells) == {
        (m, str(p)) for m in names for p in reported.index
        if math.isnan(reported.at[p, m]) and not math.isnan(filled.frame.at[p, m])
    }  # fmt: skip
    for derivation in filled.derived:  # the identity it came from holds where it was used
        (identity,) = [i for i in IDENTITIES if derivation.rule.startswith(f"{derivation.metric} = ")
                       and {m for m, _ in derivation.sources} | {derivation.metric}
                       == set(i.coefficients)]  # fmt: skip
        row = filled.frame.loc[pd.Period(derivation.period, freq="Q-DEC")]
        residual = sum(c * row[m] for m, c in identity.coefficients.items())
        assert residual == pytest.approx(0.0, abs=1e-9)


def test_the_live_assembly_fills_from_identities_and_lists_what_it_derived() -> None:
    observations = [(NG, "2024Q1", 1204.8), (SBC, "2024Q1", 44.6), (NI, "2023Q4", 1107.7)]
    observations += [(NI, "FY2023", 4000.0), (NI, "2023Q1", 929.8), (NI, "2023Q2", 1093.4)]

    history = assemble(observations)

    assert at(history.frame, NI, "2024Q1") == pytest.approx(1160.2)
    assert at(history.frame, NI, "2023Q3") == pytest.approx(4000.0 - 929.8 - 1093.4 - 1107.7)
    assert {(d.metric, d.period) for d in history.derived} == {(NI, "2024Q1"), (NI, "2023Q3")}


def test_a_csv_history_is_filled_and_a_forecast_starts_from_the_derived_quarter(
    tmp_path: Path,
) -> None:
    quarters = [str(p) for p in pd.period_range("2021Q1", "2023Q4", freq="Q-DEC")]
    net_income = [400.0 + 10 * i for i in range(len(quarters))]
    lines = ["quarter,net_income,non_gaap_net_income,share_based_comp"]
    lines += [f"{q},{v},{v + 20},20" for q, v in zip(quarters[:-1], net_income, strict=False)]
    lines.append(f"{quarters[-1]},,{net_income[-1] + 20},20")  # net income not yet printed
    path = tmp_path / "history.csv"
    path.write_text("\n".join(lines) + "\n")

    history = load_history_csv(path)
    derived = load_history_with_derivations(path).derived
    forecast = forecast_company(history, target="2024Q1")[NI]

    assert at(history, NI, "2023Q4") == net_income[-1]
    assert [(d.metric, d.period) for d in derived] == [(NI, "2023Q4")]
    assert forecast.n_obs == len(quarters)


def test_the_bundled_history_fills_share_based_compensation_and_no_reported_figure_moves() -> None:
    path = DEFAULT_DATA_DIR / "qfin_quarterly.csv"
    filled = load_history_with_derivations(path)
    raw = pd.read_csv(path, dtype={"quarter": str}).set_index("quarter")

    for derivation in filled.derived:
        if derivation.metric in raw.columns:
            assert np.isnan(raw.loc[derivation.period, derivation.metric])
    assert {d.metric for d in filled.derived} == {SBC, NCI_LOSS}
    assert at(filled.frame, NCI_LOSS, "2024Q1") == pytest.approx(1164.3 - 1160.1)
    assert at(filled.frame, SBC, "2019Q2") == pytest.approx(692 - 618)


def test_a_forecast_lists_the_derived_figures_of_its_metric_components_and_drivers() -> None:
    derivations = (
        Derivation(NI, "2023Q4", 560.0, "net_income = a - b", ((NG, "2023Q4"), (SBC, "2023Q4"))),
        Derivation(
            SBC, "2023Q3", 20.0, "share_based_comp = c - d", ((NG, "2023Q3"), (NI, "2023Q3"))
        ),
        Derivation(NI, "FY2023", 2100.0, "net_income FY2023 = sum", ((NI, "2023Q1"),)),
        Derivation("loan_volume", "2023Q4", 9.0, "loan_volume = e", (("loan_volume", "FY2023"),)),
    )
    net_income = forecast_company(synthetic_history(), target="2024Q3")[NI]
    non_gaap = forecast_company(synthetic_history(), target="2024Q3")[NG]

    assert "loan_volume" in {d.name for d in net_income.drivers}
    assert [(d.metric, d.period) for d in derived_inputs(net_income, derivations)] == [
        (NI, "2023Q4"),
        ("loan_volume", "2023Q4"),
    ]
    driven = [("loan_volume", "2023Q4")] if non_gaap.drivers else []
    assert [(d.metric, d.period) for d in derived_inputs(non_gaap, derivations)] == [
        (NI, "2023Q4"),
        (SBC, "2023Q3"),
        *driven,
    ]
