"""The guidance CSV as events: amount bands, growth alone (derived later), clear refusals."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from schemas.money import Scale
from services.cli import app
from services.ingest.backfill import BackfillError, CsvUnits, guidance_events

pytestmark = pytest.mark.unit
HEADER = "issued_in_quarter,for_quarter,metric,low,high,yoy_low_pct,yoy_high_pct,source_url\n"
UNITS = CsvUnits("CNY", Scale.MILLIONS, 50)


def csv_file(tmp_path: Path, *rows: str, name: str = "guidance.csv") -> Path:
    path = tmp_path / name
    path.write_text(HEADER + "".join(f"{row}\n" for row in rows), encoding="utf-8")
    return path


def test_a_row_with_empty_low_and_high_states_growth_alone(tmp_path: Path) -> None:
    path = csv_file(tmp_path, "2024Q1,2024Q2,net_income,,,10,15,", "2024Q1,FY2024,net_income,,,8,,")

    quarter, year = guidance_events(path, company="ACME", units=UNITS)

    assert (quarter.low, quarter.high) == (None, None)
    assert (quarter.yoy_low_pct, quarter.yoy_high_pct) == (Decimal(10), Decimal(15))
    assert (year.period, year.yoy_low_pct, year.yoy_high_pct) == ("FY2024", Decimal(8), None)


def test_two_growth_statements_of_one_quarter_are_two_events(tmp_path: Path) -> None:
    path = csv_file(
        tmp_path, "2024Q1,2024Q2,net_income,,,10,15,", "2024Q1,2024Q2,net_income,,,10,12,"
    )

    first, second = guidance_events(path, company="ACME", units=UNITS)

    assert first.event_id != second.event_id


def test_the_bundled_amount_bands_keep_their_event_ids(tmp_path: Path) -> None:
    path = csv_file(tmp_path, "2024Q1,2024Q2,net_income,1170,1230,7.0,12.5,")
    again = csv_file(tmp_path, "2024Q1,2024Q2,net_income,1170,1230,,,", name="again.csv")

    (with_growth,) = guidance_events(path, company="ACME", units=UNITS)
    (without,) = guidance_events(again, company="ACME", units=UNITS)

    assert with_growth.event_id == without.event_id  # the amounts name the statement
    assert (with_growth.low, with_growth.high) == (Decimal(1170), Decimal(1230))


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ("2024Q1,2024Q2,net_income,,,,,", "line 2: low and high, or yoy_low_pct"),
        ("2024Q1,2024Q2,net_income,1170,,,,", "line 2: high: an amount band states both"),
        ("2024Q1,2024Q2,net_income,,,15,10,", "line 2: yoy_low_pct: 15 exceeds yoy_high_pct 10"),
        ("2024Q1,2024Q2,net_income,,,12x,,", "line 2: '12x' is not a number"),
    ],
)
def test_a_row_that_states_no_valid_range_is_refused_naming_its_line_and_field(
    tmp_path: Path, row: str, reason: str
) -> None:
    with pytest.raises(BackfillError, match=reason):
        list(guidance_events(csv_file(tmp_path, row), company="ACME", units=UNITS))


def test_the_backfill_command_refuses_a_bad_row_and_publishes_nothing(tmp_path: Path) -> None:
    history = tmp_path / "history.csv"
    history.write_text("quarter,net_income\n2024Q1,1160\n", encoding="utf-8")
    guidance = csv_file(tmp_path, "2024Q1,2024Q2,net_income,1170,,,,")

    files = ["--history", str(history), "--guidance", str(guidance), "--company", "ACME"]
    result = CliRunner().invoke(app, ["backfill", *files, "--redis-url", "redis://127.0.0.1:1/0"])

    said = " ".join(result.output.split())  # the console wraps long lines
    assert result.exit_code == 2
    assert "guidance.csv line 2: high: an amount band states both" in said
    assert "nothing was published" in said
