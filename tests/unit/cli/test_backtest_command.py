"""`guidepost backtest`: one history or a panel, proper scores, plots, clear refusals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from services.cli import app
from services.cli.demo import DEFAULT_DATA_DIR

pytestmark = pytest.mark.unit
DATA = DEFAULT_DATA_DIR


def test_a_history_without_non_gaap_is_backtested_on_what_it_has(tmp_path: Path) -> None:
    lines = (DATA / "qfin_quarterly.csv").read_text().splitlines()
    header = lines[0].split(",")
    keep = [i for i, name in enumerate(header) if name not in ("non_gaap_net_income",
                                                               "share_based_comp")]  # fmt: skip
    trimmed = tmp_path / "history.csv"
    trimmed.write_text("\n".join(",".join(line.split(",")[i] for i in keep) for line in lines[:22]))

    result = CliRunner().invoke(app, ["backtest", "--history", str(trimmed), "--json"])

    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert set(report["summary"]) == {"net_income"}


def test_a_non_numeric_cell_is_an_error_naming_its_line(tmp_path: Path) -> None:
    history = tmp_path / "history.csv"
    history.write_text("quarter,net_income\n2023Q1,100\n2023Q2,12x\n2023Q3,110\n")

    result = CliRunner().invoke(app, ["backtest", "--history", str(history)])

    assert result.exit_code == 2
    assert "line 3 (2023Q2): net_income is not a number: '12x'" in result.output


def test_history_and_panel_are_exclusive() -> None:
    result = CliRunner().invoke(app, ["backtest"])
    assert result.exit_code == 2
    assert "exactly one of --history FILE or --panel FILE" in result.output


def panel_csv(tmp_path: Path) -> Path:
    rows = ["series,quarter,value,low,high"]
    for k in range(3):
        for q in range(20):
            year, quarter = 2015 + q // 4, q % 4 + 1
            value = 100 + 5 * k + 2 * q + (3 if q % 2 else -3)
            band = f"{value - 4},{value + 2}" if q >= 12 else ","
            rows.append(f"S{k},{year}Q{quarter},{value},{band}")
    path = tmp_path / "panel.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


def test_a_panel_is_scored_as_json_with_band_calls_and_plots(tmp_path: Path) -> None:
    plots = tmp_path / "plots"
    result = CliRunner().invoke(
        app,
        ["backtest", "--panel", str(panel_csv(tmp_path)), "--last", "4", "--json",
         "--plots", str(plots)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)  # the report alone: where the plots went is on stderr
    assert [s["series"] for s in report["series"]] == ["S0", "S1", "S2"]
    assert all(len(s["forecasts"]) == 4 for s in report["series"])
    assert report["series"][0]["forecasts"][0]["outcome"] in ("below", "inside", "above")
    assert report["summary"]["calls"] == 12
    assert sorted(p.name for p in plots.iterdir()) == ["panel_pit.png", "panel_reliability.png"]


def test_a_malformed_panel_row_exits_2_naming_the_line(tmp_path: Path) -> None:
    path = tmp_path / "panel.csv"
    path.write_text("series,quarter,value\nA,2020Q1,1\nA,2020Q2,oops\n")
    result = CliRunner().invoke(app, ["backtest", "--panel", str(path)])
    assert result.exit_code == 2
    assert "line 3: 'value' is not a number: 'oops'" in result.output
