"""The event contracts refuse bad input with a message naming the field and the reason."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from pydantic import ValidationError

from schemas import GuidanceIssued, MetricReported, ResultsPublished
from schemas.money import Money, Scale, rescale
from schemas.periods import PeriodError, Quarter, frequency_of, quarter_of
from services.cli.contracts import asyncapi_document, json_schemas

pytestmark = pytest.mark.unit
SCHEMA_DIR = Path(__file__).resolve().parents[3] / "schemas" / "json"


def metric(**changes: object) -> dict[str, object]:
    base = {
        "company": "ACME",
        "metric": "dpd90_rate_pct",
        "period": "2024Q1",
        "value": "2.1",
        "unit": "percent",
    }
    return {**base, **changes}


def test_a_valid_metric_event_round_trips_through_json() -> None:
    event = MetricReported.model_validate(metric())
    assert MetricReported.model_validate_json(event.model_dump_json()) == event


@pytest.mark.parametrize(
    ("changes", "field", "reason"),
    [
        ({"value": "335"}, "value", "at most 100"),
        ({"value": "NaN"}, "value", "finite"),
        ({"period": "2024Q5"}, "period", "not a period"),
        ({"unit": "money"}, "unit", "measured in percent"),
        ({"metric": "net_incme"}, "metric", "unknown metric"),
        ({"colour": "red"}, "colour", "Extra inputs"),
        ({"company": "acme corp"}, "company", "pattern"),
    ],
)
def test_bad_metric_input_is_refused_naming_the_field(
    changes: dict[str, object], field: str, reason: str
) -> None:
    with pytest.raises(ValidationError, match=reason) as caught:
        MetricReported.model_validate(metric(**changes))
    assert field in str(caught.value)


def test_money_metrics_need_currency_and_scale() -> None:
    with pytest.raises(ValidationError, match="currency and scale: required"):
        MetricReported.model_validate(metric(metric="loan_volume", unit="money", value="99237"))


def test_rmb_is_stored_as_its_iso_code() -> None:
    money = Money(amount=Decimal("4153183"), currency="RMB", scale=Scale.THOUSANDS)
    assert money.currency == "CNY"
    assert money.to(Scale.MILLIONS).amount == Decimal("4153.183")


def test_rescaling_prose_billions_to_table_thousands_is_exact() -> None:
    assert rescale(Decimal("1.17"), source=Scale.BILLIONS, target=Scale.THOUSANDS) == Decimal(
        "1170000"
    )


def test_guidance_band_must_be_ordered_and_match_the_metric_basis() -> None:
    base = {
        "company": "ACME",
        "metric": "net_income",
        "period": "2024Q2",
        "basis": "gaap",
        "low": "1230",
        "high": "1170",
        "currency": "CNY",
        "scale": "millions",
    }
    with pytest.raises(ValidationError, match="low: 1230 exceeds high 1170"):
        GuidanceIssued.model_validate(base)
    with pytest.raises(ValidationError, match="basis: net_income is a gaap metric"):
        GuidanceIssued.model_validate({**base, "low": "1170", "high": "1230", "basis": "non_gaap"})


GROWTH = {"company": "ACME", "metric": "net_income", "period": "2024Q2", "basis": "gaap"}


@pytest.mark.parametrize(
    ("stated", "low", "high"),
    [
        ({"yoy_low_pct": "10", "yoy_high_pct": "15"}, "10", "15"),
        ({"yoy_low_pct": "10"}, "10", None),
        ({"yoy_high_pct": "-5"}, None, "-5"),
    ],
)
def test_guidance_stated_as_growth_alone_needs_no_amounts_and_may_give_one_bound(
    stated: dict[str, str], low: str | None, high: str | None
) -> None:
    event = GuidanceIssued.model_validate({**GROWTH, **stated})

    assert (event.low, event.high, event.currency, event.schema_version) == (None, None, None, 2)
    assert (event.yoy_low_pct, event.yoy_high_pct) == tuple(
        None if v is None else Decimal(v) for v in (low, high)
    )


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({}, "amount band or a year-on-year growth"),
        ({"low": "1170"}, "high: an amount band states both low and high"),
        ({"high": "1230", "yoy_low_pct": "5"}, "low: an amount band states both"),
        ({"yoy_low_pct": "15", "yoy_high_pct": "10"}, "yoy_low_pct: 15 exceeds yoy_high_pct 10"),
        ({"yoy_low_pct": "-150"}, "yoy_low_pct"),
        ({"low": "1170", "high": "1230"}, "currency and scale: required"),
    ],
)
def test_issued_guidance_states_a_band_or_growth_and_says_which_field_is_wrong(
    changes: dict[str, str], reason: str
) -> None:
    with pytest.raises(ValidationError, match=reason):
        GuidanceIssued.model_validate({**GROWTH, **changes})


def test_a_version_one_guidance_event_is_still_read() -> None:
    event = GuidanceIssued.model_validate(
        {**GROWTH, "schema_version": 1, "low": "1170", "high": "1230"}
        | {"currency": "CNY", "scale": "millions"}
    )
    assert event.schema_version == 1
    with pytest.raises(ValidationError, match="schema_version"):
        GuidanceIssued.model_validate({**GROWTH, "schema_version": 3, "yoy_low_pct": "1"})


def test_fiscal_year_guidance_is_accepted_and_months_are_not() -> None:
    base = {
        "company": "ACME",
        "metric": "loan_volume",
        "basis": "operational",
        "low": "200000",
        "high": "220000",
        "currency": "CNY",
        "scale": "millions",
    }
    assert GuidanceIssued.model_validate({**base, "period": "FY2020"}).period == "FY2020"
    with pytest.raises(ValidationError, match="not a fiscal period"):
        GuidanceIssued.model_validate({**base, "period": "2020-05"})


def test_results_need_net_income() -> None:
    with pytest.raises(ValidationError, match=r"statement\.net_income"):
        ResultsPublished.model_validate(
            {
                "company": "ACME",
                "statement": {"period": "2024Q1", "currency": "CNY", "scale": "thousands"},
            }
        )


@pytest.mark.parametrize(
    ("period", "quarter"),
    [("2024-05-31", "2024Q2"), ("2024-12", "2024Q4"), ("2024Q1", "2024Q1")],
)
def test_days_and_months_fall_in_their_calendar_quarter(period: str, quarter: str) -> None:
    assert str(quarter_of(period)) == quarter


def test_quarter_arithmetic_crosses_years() -> None:
    assert str(Quarter.parse("2024Q1").previous()) == "2023Q4"
    assert str(Quarter.parse("2024Q2").same_quarter_last_year()) == "2023Q2"
    assert Quarter.parse("2024Q2").end.isoformat() == "2024-06-30"


def test_an_impossible_day_is_not_a_period() -> None:
    with pytest.raises(PeriodError, match="not a calendar day"):
        frequency_of("2024-02-30")


def test_generated_schemas_match_the_committed_files() -> None:
    for name, schema in json_schemas().items():
        committed = json.loads((SCHEMA_DIR / f"{name}.schema.json").read_text())
        assert committed == json.loads(json.dumps(schema)), f"{name}: run `make schemas`"
    committed = json.loads((SCHEMA_DIR / "asyncapi.json").read_text())
    assert committed == asyncapi_document(), "asyncapi.json: run `make schemas`"
