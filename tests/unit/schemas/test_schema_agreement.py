"""The exported JSON Schema of each input event and the service's model agree on what is valid.

One corpus of inputs goes to both: the pydantic model (as the consumer validates an entry) and a
JSON Schema validator with the schema `guidepost schemas export` writes. Where JSON Schema cannot
say a rule (listed in `schemas.json_schema.BEYOND_JSON_SCHEMA`), the model must still refuse what
the schema lets through; where the model's lax parsing accepts a form the contract does not
promise, the schema must refuse it. Either list shrinking or growing is a decision, not drift.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from pydantic import BaseModel, ValidationError

from schemas import GuidanceIssued, MetricReported, ResultsPublished
from services.cli.contracts import json_schemas

pytestmark = pytest.mark.unit

KNOWN = "2024-05-01T00:00:00Z"
METRIC = {
    "company": "ACME",
    "metric": "dpd90_rate_pct",
    "period": "2024Q1",
    "value": "2.1",
    "unit": "percent",
    "occurred_at": KNOWN,
}
MONEY_METRIC = {**METRIC, "metric": "loan_volume", "unit": "money", "value": "99237"} | {
    "currency": "CNY",
    "scale": "millions",
}
COUNT_METRIC = {**METRIC, "metric": "cumulative_borrowers", "unit": "count", "value": 5_000_000}
GUIDANCE = {
    "company": "ACME",
    "metric": "net_income",
    "period": "2024Q2",
    "basis": "gaap",
    "low": "1170",
    "high": "1230",
    "currency": "CNY",
    "scale": "millions",
    "occurred_at": KNOWN,
}
GROWTH = {k: v for k, v in GUIDANCE.items() if k not in ("low", "high", "currency", "scale")}
COUNT_GUIDANCE = {**GROWTH, "metric": "cumulative_borrowers", "basis": "operational"} | {
    "unit": "count",
    "low": 100,
    "high": 120,
}
STATEMENT = {"period": "2024Q1", "currency": "CNY", "scale": "thousands", "net_income": "1000"}
RESULTS = {"company": "ACME", "occurred_at": KNOWN, "statement": STATEMENT}


def results(**statement: object) -> dict[str, object]:
    return {**RESULTS, "statement": {**STATEMENT, **statement}}


def without(event: dict[str, Any], *names: str) -> dict[str, Any]:
    return {k: v for k, v in event.items() if k not in names}


Case = tuple[str, type[BaseModel], dict[str, Any]]

VALID: list[Case] = [
    ("a rate as text", MetricReported, METRIC),
    ("a rate as a JSON number", MetricReported, {**METRIC, "value": 2.1}),
    ("a whole number", MetricReported, {**METRIC, "value": 2}),
    ("a number text with an exponent", MetricReported, {**METRIC, "value": "1e1"}),
    ("a number text with blanks", MetricReported, {**METRIC, "value": " 2.1 "}),
    ("a month", MetricReported, {**METRIC, "period": "2024-02"}),
    ("a day", MetricReported, {**METRIC, "period": "2024-02-29"}),
    ("a company with blanks", MetricReported, {**METRIC, "company": " ACME "}),
    ("money in millions of RMB", MetricReported, {**MONEY_METRIC, "currency": "RMB"}),
    ("a currency alias", MetricReported, {**MONEY_METRIC, "currency": "us$"}),
    ("minus zero where negatives are not", MetricReported, {**MONEY_METRIC, "value": "-0"}),
    ("a loss", MetricReported, {**MONEY_METRIC, "metric": "net_income", "value": -5}),
    ("a count", MetricReported, COUNT_METRIC),
    ("a metric name with blanks", MetricReported, {**MONEY_METRIC, "metric": " loan_volume "}),
    ("an offset time", MetricReported, {**METRIC, "occurred_at": "2024-05-01T08:00:00+08:00"}),
    ("the largest number", MetricReported, {**MONEY_METRIC, "scale": "units", "value": 1e18}),
    ("an amount band", GuidanceIssued, GUIDANCE),
    ("a band of JSON numbers", GuidanceIssued, {**GUIDANCE, "low": 1170, "high": 1230.5}),
    ("growth alone", GuidanceIssued, {**GROWTH, "yoy_low_pct": "10"}),
    ("a growth band", GuidanceIssued, {**GROWTH, "yoy_low_pct": -5, "yoy_high_pct": 15}),
    ("a withdrawal", GuidanceIssued, {**GROWTH, "status": "withdrawn"}),
    ("a fiscal year", GuidanceIssued, {**GUIDANCE, "period": "FY2024"}),
    ("a count band", GuidanceIssued, COUNT_GUIDANCE),
    ("a version one band", GuidanceIssued, {**GUIDANCE, "schema_version": 1}),
    ("an operational metric", GuidanceIssued, {**GUIDANCE, "metric": "loan_volume"}),
    ("results", ResultsPublished, RESULTS),
    ("revenue as a number", ResultsPublished, results(total_net_revenue=5000)),
    (
        "lines and comparatives",
        ResultsPublished,
        {
            **results(revenue_lines=[{"name": "loan_facilitation", "amount": 10}]),
            "comparatives": [{**STATEMENT, "period": "2023Q1"}],
        },
    ),
]

INVALID: list[Case] = [
    ("an unknown metric", MetricReported, {**METRIC, "metric": "net_incme"}),
    ("a fifth quarter", MetricReported, {**METRIC, "period": "2024Q5"}),
    ("a thirteenth month", MetricReported, {**METRIC, "period": "2024-13"}),
    ("NaN", MetricReported, {**METRIC, "value": "NaN"}),
    ("a word for a number", MetricReported, {**METRIC, "value": "two"}),
    ("other scripts' digits", MetricReported, {**METRIC, "value": "١٢"}),
    ("digit separators", MetricReported, {**METRIC, "value": "1_000"}),
    ("a boolean for a number", MetricReported, {**METRIC, "value": True}),
    ("a null value", MetricReported, {**METRIC, "value": None}),
    ("a rate above 100", MetricReported, {**METRIC, "value": 335}),
    ("a negative rate", MetricReported, {**METRIC, "value": -1}),
    ("a negative volume as text", MetricReported, {**MONEY_METRIC, "value": "-0.5"}),
    ("a negative volume", MetricReported, {**MONEY_METRIC, "value": -2}),
    ("beyond 1e18", MetricReported, {**MONEY_METRIC, "value": 1e19}),
    ("a rate in money", MetricReported, {**METRIC, "unit": "money"}),
    ("money without its scale", MetricReported, without(MONEY_METRIC, "scale")),
    ("money with a null currency", MetricReported, {**MONEY_METRIC, "currency": None}),
    ("a count with a currency", MetricReported, {**COUNT_METRIC, "currency": "CNY"}),
    ("an unknown field", MetricReported, {**METRIC, "colour": "red"}),
    ("a lower-case company", MetricReported, {**METRIC, "company": "acme corp"}),
    ("a two-letter currency", MetricReported, {**MONEY_METRIC, "currency": "CN"}),
    ("an unknown scale", MetricReported, {**MONEY_METRIC, "scale": "hundreds"}),
    ("a future contract version", MetricReported, {**METRIC, "schema_version": 2}),
    ("no company", MetricReported, without(METRIC, "company")),
    ("a time without offset", MetricReported, {**METRIC, "occurred_at": "2024-05-01T00:00:00"}),
    ("an empty event id", MetricReported, {**METRIC, "event_id": ""}),
    ("an unknown guided metric", GuidanceIssued, {**GUIDANCE, "metric": "profit"}),
    ("a gaap metric guided non-gaap", GuidanceIssued, {**GUIDANCE, "basis": "non_gaap"}),
    ("a low bound alone", GuidanceIssued, without(GUIDANCE, "high")),
    ("nothing stated", GuidanceIssued, GROWTH),
    ("a month guided", GuidanceIssued, {**GUIDANCE, "period": "2024-05"}),
    ("a fall beyond -100%", GuidanceIssued, {**GROWTH, "yoy_low_pct": -150}),
    ("a money band without currency", GuidanceIssued, without(GUIDANCE, "currency")),
    ("a count band with currency", GuidanceIssued, {**COUNT_GUIDANCE, "currency": "CNY"}),
    ("income in percent", GuidanceIssued, {**GUIDANCE, "unit": "percent"}),
    ("a count without its unit", GuidanceIssued, without(COUNT_GUIDANCE, "unit")),
    ("an unknown status", GuidanceIssued, {**GUIDANCE, "status": "maybe"}),
    ("a version three", GuidanceIssued, {**GUIDANCE, "schema_version": 3}),
    (
        "a negative volume band",
        GuidanceIssued,
        {**GUIDANCE, "metric": "loan_volume", "low": -5, "high": 5},
    ),
    ("results without net income", ResultsPublished, results(net_income=None)),
    ("negative revenue", ResultsPublished, results(total_net_revenue=-5)),
    ("negative revenue as text", ResultsPublished, results(total_net_revenue="-5")),
    (
        "a line name with spaces",
        ResultsPublished,
        results(cost_lines=[{"name": "Bad Name", "amount": 1}]),
    ),
    ("a month of results", ResultsPublished, results(period="2024-03")),
    ("an unknown statement field", ResultsPublished, results(ebitda=5)),
    (
        "a margin of 2000%",
        ResultsPublished,
        results(stated_ratios=[{"name": "net_income_margin", "percent": 2000}]),
    ),
    (
        "a zero exchange rate",
        ResultsPublished,
        results(convenience={"currency": "USD", "rate": 0, "figures": {}}),
    ),
]

# Refused by the model for reasons a JSON Schema cannot state (BEYOND_JSON_SCHEMA)
BEYOND_SCHEMA: list[Case] = [
    ("a rate above 100 as text", MetricReported, {**METRIC, "value": "335"}),
    ("below 1e-18", MetricReported, {**METRIC, "value": 1e-20}),
    ("a day not in the calendar", MetricReported, {**METRIC, "period": "2024-02-30"}),
    ("a year before the window", MetricReported, {**METRIC, "period": "1900Q1"}),
    ("known in the future", MetricReported, {**METRIC, "occurred_at": "2999-01-01T00:00:00Z"}),
    ("a period not begun", MetricReported, {**METRIC, "period": "2024Q3"}),
    (
        "past 1e18 units once scaled",
        MetricReported,
        {**MONEY_METRIC, "scale": "billions", "value": 2e9},
    ),
    ("low above high", GuidanceIssued, {**GUIDANCE, "low": "1230", "high": "1170"}),
    ("growth bounds reversed", GuidanceIssued, {**GROWTH, "yoy_low_pct": 15, "yoy_high_pct": 10}),
    ("a fall beyond -100% as text", GuidanceIssued, {**GROWTH, "yoy_low_pct": "-150"}),
    (
        "a comparative of the same period",
        ResultsPublished,
        {**RESULTS, "comparatives": [STATEMENT]},
    ),
    (
        "a line twice",
        ResultsPublished,
        results(cost_lines=[{"name": "funding", "amount": 1}, {"name": "funding", "amount": 2}]),
    ),
]

# Accepted by the model's lax parsing, not promised by the contract
LAX_ONLY: list[Case] = [
    ("a version as text", MetricReported, {**METRIC, "schema_version": "1"}),
    ("a time as epoch seconds", MetricReported, {**METRIC, "occurred_at": 1714521600}),
]


def model_accepts(model: type[BaseModel], payload: dict[str, Any]) -> bool:
    try:
        model.model_validate_json(json.dumps(payload))
    except ValidationError:
        return False
    return True


@pytest.fixture(scope="module")
def validators() -> dict[type[BaseModel], Draft202012Validator]:
    exported = json_schemas()
    models: list[type[BaseModel]] = [MetricReported, GuidanceIssued, ResultsPublished]
    found = {}
    for model in models:
        schema = exported[model.__name__]
        Draft202012Validator.check_schema(schema)
        found[model] = Draft202012Validator(schema)
    return found


def ids(cases: list[Case]) -> list[str]:
    return [label for label, _, _ in cases]


@pytest.mark.parametrize(("label", "model", "payload"), VALID + INVALID, ids=ids(VALID + INVALID))
def test_the_schema_and_the_model_agree(
    label: str,
    model: type[BaseModel],
    payload: dict[str, Any],
    validators: dict[type[BaseModel], Draft202012Validator],
) -> None:
    expected = (label, model, payload) in VALID
    assert model_accepts(model, payload) is expected, f"the model on {label}"
    errors = [error.message for error in validators[model].iter_errors(payload)]
    assert (not errors) is expected, f"the schema on {label}: {errors}"


@pytest.mark.parametrize(("label", "model", "payload"), BEYOND_SCHEMA, ids=ids(BEYOND_SCHEMA))
def test_what_no_json_schema_can_say_the_model_still_refuses(
    label: str,
    model: type[BaseModel],
    payload: dict[str, Any],
    validators: dict[type[BaseModel], Draft202012Validator],
) -> None:
    assert not model_accepts(model, payload)
    assert validators[model].is_valid(payload), f"{label}: now expressed; move it to INVALID"


@pytest.mark.parametrize(("label", "model", "payload"), LAX_ONLY, ids=ids(LAX_ONLY))
def test_forms_only_the_models_lax_parsing_takes_are_not_in_the_contract(
    label: str,
    model: type[BaseModel],
    payload: dict[str, Any],
    validators: dict[type[BaseModel], Draft202012Validator],
) -> None:
    assert model_accepts(model, payload)
    assert not validators[model].is_valid(payload)
