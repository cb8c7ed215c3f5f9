"""Numbers leave Guidepost in plain notation: 242000000000, never 2.42E+11."""

from __future__ import annotations

import json
from dataclasses import asdict
from decimal import Decimal

import pytest

from schemas import GuidanceIssued, MetricReported
from schemas.money import plain_decimal
from services.common.histories.guidance import version_from_event

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (Decimal("2.42E+11"), "242000000000"),
        (Decimal("1E-7"), "0.0000001"),
        (Decimal("-1.5E+3"), "-1500"),
        (Decimal("1170.50"), "1170.50"),
    ],
)
def test_a_decimal_is_written_without_an_exponent(value: Decimal, text: str) -> None:
    assert plain_decimal(value) == text


def test_an_event_carries_its_amount_in_plain_notation_on_the_wire() -> None:
    event = MetricReported(
        company="ACME",
        metric="loan_volume",
        period="2024Q1",
        value=Decimal("2.42E+11"),
        unit="money",  # type: ignore[arg-type]
        currency="CNY",
        scale="units",  # type: ignore[arg-type]
    )

    assert json.loads(event.model_dump_json())["value"] == "242000000000"
    assert MetricReported.model_validate_json(event.model_dump_json()).value == event.value


def test_guidance_recorded_in_whole_units_reaches_alert_details_in_plain_notation() -> None:
    """A revision alert's details are the recorded statement: 242,000 millions stated, whole
    units recorded (its trailing zeros once made the recorded text 2.42E+11)."""
    guidance = GuidanceIssued.model_validate(
        {
            "company": "ACME",
            "metric": "loan_volume",
            "period": "FY2024",
            "basis": "operational",
            "low": "242000",
            "high": "250000.500",
            "currency": "CNY",
            "scale": "millions",
        }
    )

    details = asdict(version_from_event(guidance))

    assert (details["low"], details["high"]) == ("242000000000", "250000500000")
