"""The JSON Schema of each contract as a producer must meet it.

Input events are described in pydantic's validation mode (what the service accepts: a Decimal
as a JSON number or a numeric text, blanks around text fields), then tightened with what the
models check in Python but pydantic does not put in a schema: the number form and the 1e18
bound, the period patterns, the metric registry (names, units, currency and scale, plausible
ranges) and the guidance rules that name fields rather than compare them. What a JSON Schema
cannot say (comparisons between fields, the clock, calendar days, the accepted years, bounds on
numbers sent as text) is listed in BEYOND_JSON_SCHEMA; the models still refuse it.

Events Guidepost writes are described as it writes them (serialization mode).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from schemas.guidance import GuidanceIssued
from schemas.metrics import MetricReported
from schemas.money import NUMBER_TEXT
from schemas.plausibility import MAX_MAGNITUDE
from schemas.registry import METRICS, Basis, MetricSpec, Unit
from schemas.results import ResultsPublished

JsonSchema = dict[str, Any]

BEYOND_JSON_SCHEMA = (
    "a comparison between fields: low above high, yoy_low_pct above yoy_high_pct, intervals "
    "that do not nest, a period repeated among comparatives or lines repeated in a statement",
    "the clock and the deployment's window: occurred_at in the future or before the first "
    "accepted year, a period outside the accepted years, a period not begun when it was known",
    "calendar days: a day like 2024-02-30 has the form of a day",
    "bounds on numbers sent as text: '335' for a rate (at most 100), '-150' for a growth bound "
    "(the sign of a text is checked where a value may not be negative)",
    "magnitudes: a non-zero number smaller than 1e-18, and an amount whose scale takes it past "
    "1e18 whole units of its currency",
    "lengths after blanks are stripped: a text at its maximum length with blanks around it",
)

# a date-time names its offset from UTC (the models refuse one without)
AWARE_TIME = r"([Zz]|[+-][0-9]{2}:?[0-9]{2})\s*$"
_NEGATIVE_TEXT = r"^\s*-[0-9]*\.?[0-9]*[1-9]"  # a text with a minus sign and a non-zero digit


def input_schema(model: type[BaseModel]) -> JsonSchema:
    """What the service accepts for `model`, as far as JSON Schema can say it."""
    schema = model.model_json_schema(mode="validation")
    _tolerate_blanks_and_bound_numbers(schema)
    rules = INPUT_RULES.get(model)
    if rules is not None:
        rules(schema)
    schema["$comment"] = "Also checked by the service, beyond this schema: " + "; ".join(
        BEYOND_JSON_SCHEMA
    )
    return schema


def output_schema(model: type[BaseModel]) -> JsonSchema:
    """What Guidepost writes for `model`."""
    return model.model_json_schema(mode="serialization")


def _tolerate_blanks_and_bound_numbers(node: Any) -> None:
    """Decimals get the number form and bounds; patterns of text fields allow the blanks the
    models strip."""
    if isinstance(node, list):
        for item in node:
            _tolerate_blanks_and_bound_numbers(item)
        return
    if not isinstance(node, dict):
        return
    if _is_decimal(node):
        _describe_decimal(node)
    elif node.get("type") == "string" and "pattern" in node and node["pattern"] != NUMBER_TEXT:
        node["pattern"] = padded(node["pattern"])
    elif node.get("type") == "string" and node.get("format") == "date-time":
        node["pattern"] = AWARE_TIME
    for value in node.values():
        _tolerate_blanks_and_bound_numbers(value)


def padded(pattern: str) -> str:
    """`^X$` as `^\\s*(?:X)\\s*$`: the models strip blanks around text before checking it."""
    inner = pattern.removeprefix("^").removesuffix("$")
    return rf"^\s*(?:{inner})\s*$"


def _is_decimal(node: dict[str, Any]) -> bool:
    members = node.get("anyOf", [])
    types = [str(member.get("type")) for member in members if isinstance(member, dict)]
    return sorted(types) == ["number", "string"]


_BOUNDS = {"ge": "minimum", "le": "maximum", "gt": "exclusiveMinimum", "lt": "exclusiveMaximum"}


def _describe_decimal(node: dict[str, Any]) -> None:
    """pydantic leaves the text unconstrained and, behind a validator, writes field bounds as
    `ge`/`le` (not JSON Schema keywords): move them onto the number."""
    number = next(member for member in node["anyOf"] if member.get("type") == "number")
    text = next(member for member in node["anyOf"] if member.get("type") == "string")
    for keyword, json_keyword in _BOUNDS.items():
        if keyword in node:
            number[json_keyword] = float(node.pop(keyword))
    number.setdefault("minimum", -float(MAX_MAGNITUDE))
    number.setdefault("maximum", float(MAX_MAGNITUDE))
    text["pattern"] = NUMBER_TEXT


def one_of_words(words: list[str]) -> JsonSchema:
    """Exactly one of `words`, blanks around it allowed (as the models strip them)."""
    alternatives = "|".join(word.replace(".", r"\.") for word in sorted(words))
    return {"type": "string", "pattern": padded(f"^({alternatives})$")}


def _present(*names: str) -> JsonSchema:
    """Each named field given and not null."""
    return {
        "required": list(names),
        "properties": {name: {"not": {"type": "null"}} for name in names},
    }


def _absent_or_null(*names: str) -> JsonSchema:
    return {"properties": {name: {"type": "null"} for name in names}}


def _not_negative() -> JsonSchema:
    return {"minimum": 0, "not": {"type": "string", "pattern": _NEGATIVE_TEXT}}


def _plausible(spec: MetricSpec) -> JsonSchema:
    """A metric's plausible range; the maximum binds numbers only."""
    bounds: JsonSchema = {}
    if spec.plausible_min is not None:
        bounds["minimum"] = spec.plausible_min
        if spec.plausible_min >= 0:
            bounds["not"] = {"type": "string", "pattern": _NEGATIVE_TEXT}
    if spec.plausible_max is not None:
        bounds["maximum"] = spec.plausible_max
    return bounds


def _when_metric(name: str, then: JsonSchema) -> JsonSchema:
    return {
        "if": {"required": ["metric"], "properties": {"metric": one_of_words([name])}},
        "then": then,
    }


def _add_rules(schema: JsonSchema, rules: list[JsonSchema]) -> None:
    schema.setdefault("allOf", []).extend(rules)


def _metric_rules(schema: JsonSchema) -> None:
    """A registry name; its unit; money with currency and scale, other units without; the
    value within the metric's plausible range."""
    schema["properties"]["metric"].update(one_of_words(list(METRICS)))
    rules = []
    for name, spec in METRICS.items():
        then: JsonSchema = {"properties": {"unit": {"const": spec.unit.value}}}
        if spec.unit is Unit.MONEY:
            then = _merge(then, _present("currency", "scale"))
        else:
            then = _merge(then, _absent_or_null("currency", "scale"))
        bounds = _plausible(spec)
        if bounds:
            then = _merge(then, {"properties": {"value": bounds}})
        rules.append(_when_metric(name, then))
    _add_rules(schema, rules)


def _guidance_rules(schema: JsonSchema) -> None:
    """A registry name with its unit and basis; issued guidance states an amount band (both
    bounds) or growth; money amounts name currency and scale; other units name neither."""
    schema["properties"]["metric"].update(one_of_words(list(METRICS)))
    rules = [_when_metric(name, _guidance_metric_rule(spec)) for name, spec in METRICS.items()]
    issued = {"not": {"required": ["status"], "properties": {"status": {"const": "withdrawn"}}}}
    states_something = {
        "anyOf": [
            _present("low"),
            _present("high"),
            _present("yoy_low_pct"),
            _present("yoy_high_pct"),
        ]
    }
    rules.append({"if": issued, "then": states_something})
    for bound, other in (("low", "high"), ("high", "low")):
        rules.append({"if": _merge(issued, _present(bound)), "then": _present(other)})
    _add_rules(schema, rules)


def _guidance_metric_rule(spec: MetricSpec) -> JsonSchema:
    unit: JsonSchema = {"properties": {"unit": {"const": spec.unit.value}}}
    if spec.unit is not Unit.MONEY:  # the default unit is money
        unit["required"] = ["unit"]
    then = unit
    if spec.basis is not Basis.OPERATIONAL:
        then = _merge(then, {"properties": {"basis": {"const": spec.basis.value}}})
    if spec.unit is not Unit.MONEY:
        return _merge(then, _absent_or_null("currency", "scale"))
    names_amounts = {"anyOf": [_present(name) for name in ("low", "high", "currency", "scale")]}
    amounts = {"if": names_amounts, "then": _present("currency", "scale")}
    if spec.plausible_min is not None and spec.plausible_min >= 0:
        amounts["then"] = _merge(
            amounts["then"], {"properties": {"low": _not_negative(), "high": _not_negative()}}
        )
    return _merge(then, {"allOf": [amounts]})


def _results_rules(schema: JsonSchema) -> None:
    """Revenue cannot be negative (the registry's bound on the one headline that has one)."""
    statement = schema["$defs"]["IncomeStatement"]["properties"]
    for name, spec in METRICS.items():
        if name in statement and (bounds := _plausible(spec)):
            statement[name] = {"allOf": [statement[name], bounds]}


def _merge(first: JsonSchema, second: JsonSchema) -> JsonSchema:
    """Both schemas' constraints (properties merged field by field)."""
    merged = copy.deepcopy(first)
    for keyword, value in second.items():
        if keyword == "properties":
            properties = merged.setdefault("properties", {})
            for name, constraint in value.items():
                properties[name] = {**properties.get(name, {}), **constraint}
        elif keyword in ("required", "allOf"):
            merged[keyword] = [*merged.get(keyword, []), *value]
        else:
            merged[keyword] = value
    return merged


INPUT_RULES: dict[type[BaseModel], Callable[[JsonSchema], None]] = {
    MetricReported: _metric_rules,
    GuidanceIssued: _guidance_rules,
    ResultsPublished: _results_rules,
}
