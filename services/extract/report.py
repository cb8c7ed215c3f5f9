"""What an ingest shows a reviewer: events, provenance, unplaced figures, discrepancies."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from rich.console import Console
from rich.table import Table

from schemas import INPUT_EVENTS
from schemas.base import Event
from schemas.guidance import GuidanceIssued
from schemas.metrics import MetricReported
from schemas.results import ResultsPublished
from services.extract.checks import Comparison, Discrepancy
from services.extract.model import Extraction, Figure, Unplaced

STREAM_OF = {event_type: stream for stream, event_type in INPUT_EVENTS.items()}


def stream_of(event: Event) -> str:
    return STREAM_OF[type(event)]


def jsonl_record(event: Event) -> dict[str, Any]:
    """The shape `guidepost publish` reads: {"stream": ..., "event": {...}}."""
    return {"stream": stream_of(event), "event": event.model_dump(mode="json")}


def as_json(
    extraction: Extraction,
    events: Sequence[Event],
    comparisons: Sequence[Comparison],
    discrepancies: Sequence[Discrepancy],
) -> dict[str, Any]:
    return {
        "company": extraction.company,
        "period": extraction.period,
        "digest": extraction.digest,
        "events": [jsonl_record(event) for event in events],
        "provenance": [figure_json(figure) for figure in extraction.figures],
        "unplaced": [unplaced_json(item) for item in extraction.unplaced],
        "checks": len(comparisons),
        "discrepancies": [discrepancy_json(item) for item in discrepancies],
    }


def figure_json(figure: Figure) -> dict[str, Any]:
    where = figure.provenance
    return {
        "name": figure.target.label,
        "kind": figure.target.kind.value,
        "role": figure.role.value,
        "period": figure.period,
        "value": str(figure.value),
        "unit": figure.unit.value,
        "currency": figure.currency,
        "scale": figure.scale.value if figure.scale else None,
        "origin": figure.origin.value,
        "line": where.line,
        "span": [where.start, where.end],
        "text": where.text,
        "column": where.column,
        "label": where.label,
    }


def unplaced_json(item: Unplaced) -> dict[str, Any]:
    return {"line": item.line, "text": item.text, "reason": item.reason}


def discrepancy_json(item: Comparison) -> dict[str, Any]:
    return {
        "rule": item.rule,
        "figure": item.figure,
        "period": item.period,
        "column": item.column,
        "expected": text_of(item.expected),
        "found": text_of(item.found),
        "tolerance": text_of(item.tolerance),
        "lines": list(item.lines),
    }


def text_of(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def render(
    console: Console,
    extraction: Extraction,
    events: Sequence[Event],
    comparisons: Sequence[Comparison],
    discrepancies: Sequence[Discrepancy],
) -> None:
    console.print(
        f"[bold]{extraction.company} {extraction.period}[/bold]: {len(extraction.figures)} "
        f"figures, {len(extraction.unplaced)} unplaced, {len(comparisons)} checks, "
        f"{len(discrepancies)} discrepancies"
    )
    console.print(events_table(events))
    if extraction.unplaced:
        console.print(unplaced_table(extraction.unplaced))
    if discrepancies:
        console.print(discrepancies_table(discrepancies))


def events_table(events: Sequence[Event]) -> Table:
    table = Table(title="Events to publish")
    for column in ("stream", "period", "what", "event id"):
        table.add_column(column)
    for event in events:
        table.add_row(stream_of(event), period_of(event), summary(event), event.event_id)
    return table


def period_of(event: Event) -> str:
    if isinstance(event, ResultsPublished):
        return event.statement.period
    if isinstance(event, MetricReported | GuidanceIssued):
        return event.period
    return ""


def summary(event: Event) -> str:
    if isinstance(event, ResultsPublished):
        others = ", ".join(c.period for c in event.comparatives)
        return f"net income {event.statement.net_income} {event.statement.scale}; vs {others}"
    if isinstance(event, MetricReported):
        return f"{event.metric} = {event.value} {event.scale or event.unit}"
    if isinstance(event, GuidanceIssued):
        return f"{event.metric} {guidance_summary(event)}"
    return type(event).__name__


def guidance_summary(event: GuidanceIssued) -> str:
    """'1.17..1.23 billions', 'growth 10..15% year on year' or both."""
    parts = []
    if event.states_amounts:
        parts.append(f"{event.low}..{event.high} {event.scale or event.unit}")
    if event.states_growth:
        low, high = event.yoy_low_pct, event.yoy_high_pct
        parts.append(f"growth {'' if low is None else low}..{'' if high is None else high}% yoy")
    return "; ".join(parts)


def unplaced_table(items: Sequence[Unplaced]) -> Table:
    table = Table(title="Read but not placed")
    for column in ("line", "text", "reason"):
        table.add_column(column)
    for item in items:
        table.add_row(str(item.line), item.text, item.reason)
    return table


def discrepancies_table(items: Sequence[Discrepancy]) -> Table:
    table = Table(title="Cross-check discrepancies", style="red")
    for column in ("figure", "period", "column", "expected", "found", "rule", "lines"):
        table.add_column(column)
    for item in items:
        lines = ", ".join(str(line) for line in item.lines)
        table.add_row(
            item.figure,
            item.period,
            item.column,
            str(item.expected),
            str(item.found),
            item.rule,
            lines,
        )
    return table
