"""Plausibility at the contract: an event a producer could send but no company could mean is
refused at once, naming the field (the window of years and the clock tolerance configurable)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from schemas import GuidanceIssued, MetricReported, ResultsPublished
from schemas.plausibility import Plausibility
from schemas.registry import METRICS

pytestmark = pytest.mark.unit
THIS_YEAR = datetime.now(UTC).year


def money_metric(**changes: object) -> dict[str, object]:
    base = {
        "company": "ACME",
        "metric": "net_income",
        "period": "2024Q1",
        "value": "1200.5",
        "unit": "money",
        "currency": "CNY",
        "scale": "millions",
    }
    return {**base, **changes}


def refused(model: Any, document: dict[str, object], **context: Any) -> str:
    with pytest.raises(ValidationError) as caught:
        model.model_validate_json(json.dumps(document), context=context or None)
    return str(caught.value)


@pytest.mark.parametrize(
    ("changes", "field", "reason"),
    [
        ({"period": "9999Q4"}, "period", "outside the accepted years 1990"),
        ({"period": "0000Q1"}, "period", "outside the accepted years"),
        ({"period": "1989-12-31"}, "period", "outside the accepted years"),
        ({"period": "٢٠٢٤Q1"}, "period", "not a period"),  # Arabic-Indic digits
        ({"period": "2024-0５"}, "period", "not a period"),  # a full-width digit
        ({"value": "1e999999"}, "value", "at most 1e18"),
        ({"value": "1e300"}, "value", "at most 1e18"),
        ({"value": "1e-999999"}, "value", "at least 1e-18 in magnitude"),
        ({"value": "2e12", "scale": "billions"}, "value", "exceeds 1e18 units"),
        ({"occurred_at": "9999-12-31T23:59:59Z"}, "occurred_at", "in the future"),
        ({"occurred_at": "0001-01-01T00:00:00+01:00"}, "occurred_at", "greater than or equal"),
        ({"occurred_at": "1985-01-01T00:00:00Z"}, "occurred_at", "before 1990"),
        (
            {"period": f"{THIS_YEAR + 1}Q1", "occurred_at": "2024-05-01T00:00:00Z"},
            "period",
            "had not begun",
        ),
        ({"metric": "loan_volume", "value": "-5"}, "value", "loan_volume must be at least 0"),
        ({"metric": "total_net_revenue", "value": "-5"}, "value", "must be at least 0"),
    ],
)
def test_an_implausible_metric_is_refused_naming_the_field(
    changes: dict[str, object], field: str, reason: str
) -> None:
    message = refused(MetricReported, money_metric(**changes))
    assert reason in message
    assert field in message


def test_a_loss_is_plausible_where_the_registry_says_a_metric_may_be_negative() -> None:
    event = MetricReported.model_validate_json(json.dumps(money_metric(value="-250.3")))
    assert event.value == Decimal("-250.3")
    assert METRICS["net_income"].may_be_negative
    assert not METRICS["loan_volume"].may_be_negative


def test_the_year_window_and_clock_tolerance_come_from_the_validation_context() -> None:
    narrow = Plausibility(first_year=2020, years_ahead=0, occurred_at_tolerance=timedelta(0))
    assert "2020–" in refused(MetricReported, money_metric(period="2019Q4"), plausibility=narrow)
    wide = Plausibility(first_year=1900, occurred_at_tolerance=timedelta(days=2))
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    document = money_metric(period="1950Q1", occurred_at=tomorrow)
    event = MetricReported.model_validate_json(json.dumps(document), context=wide.as_context())
    assert event.period == "1950Q1"


def test_guidance_may_name_a_period_up_to_the_window_but_not_past_it() -> None:
    base = {
        "company": "ACME",
        "metric": "net_income",
        "basis": "gaap",
        "low": "1170",
        "high": "1230",
        "currency": "CNY",
        "scale": "millions",
    }
    ahead = f"FY{THIS_YEAR + 2}"
    assert GuidanceIssued.model_validate({**base, "period": ahead}).period == ahead
    message = refused(GuidanceIssued, {**base, "period": f"FY{THIS_YEAR + 3}"})
    assert "period" in message
    assert "outside the accepted years" in message
    assert "low" in refused(GuidanceIssued, {**base, "period": "2024Q2", "low": "1e400"})


def results(period: str, **statement: object) -> dict[str, object]:
    return {
        "company": "ACME",
        "occurred_at": "2024-05-30T06:00:00Z",
        "statement": {
            "period": period,
            "currency": "CNY",
            "scale": "thousands",
            "net_income": "1000",
            **statement,
        },
    }


def test_results_for_a_period_not_yet_begun_or_with_implausible_amounts_are_refused() -> None:
    assert "statement.period" in refused(ResultsPublished, results("2100Q1"))
    assert "had not begun" in refused(ResultsPublished, results("2024Q3"))
    message = refused(ResultsPublished, results("2024Q1", total_net_revenue="-1"))
    assert "total_net_revenue" in message
    assert "at least 0" in message
    assert "exceeds 1e18" in refused(ResultsPublished, results("2024Q1", net_income="9e17"))
    accepted = ResultsPublished.model_validate_json(json.dumps(results("2024Q1")))
    assert accepted.statement.net_income == Decimal(1000)
