"""`to_events`: an extraction as the contract's events, with deterministic ids."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

from schemas.base import Event
from schemas.guidance import GuidanceIssued
from schemas.metrics import MetricReported
from schemas.money import Scale
from schemas.periods import period_end
from schemas.registry import Unit, metric_spec
from schemas.results import (
    ConvenienceTranslation,
    IncomeStatement,
    PerShareFigure,
    ResultsPublished,
    ShareCount,
    StatedRatio,
    StatementLine,
)
from services.extract.model import Extraction, Figure, Kind, Origin, Role, Target

PRODUCER = "announcement-ingest"
ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "guidepost:announcement-ingest")
LINE_KINDS = {
    Kind.REVENUE_LINE: "revenue_lines",
    Kind.COST_LINE: "cost_lines",
    Kind.OTHER_LINE: "other_lines",
}
AMOUNT_KINDS = frozenset({*LINE_KINDS, Kind.HEADLINE})
GUIDED_ROLES = {
    Role.LOW: "low",
    Role.HIGH: "high",
    Role.YOY_LOW: "yoy_low_pct",
    Role.YOY_HIGH: "yoy_high_pct",
}


def to_events(extraction: Extraction) -> list[Event]:
    """One ResultsPublished, then a MetricReported per metric and period, then the guidance."""
    return [
        results_event(extraction),
        *metric_events(extraction),
        *guidance_events(extraction),
    ]


def event_id(extraction: Extraction, event_type: str, period: str, name: str = "") -> str:
    """The same document always yields the same ids: re-ingesting it is a no-op downstream."""
    key = "|".join((extraction.company, event_type, period, name, extraction.digest))
    return uuid.uuid5(ID_NAMESPACE, key).hex


def source_of(extraction: Extraction) -> str:
    return f"{extraction.title} (sha256 {extraction.digest[:16]})"


def envelope(
    extraction: Extraction, event_type: str, period: str, name: str = ""
) -> dict[str, Any]:
    """The fields every event of this document shares."""
    return {
        "event_id": event_id(extraction, event_type, period, name),
        "occurred_at": extraction.published_at,
        "producer": PRODUCER,
        "company": extraction.company,
        "source": source_of(extraction),
    }


def first_values(figures: Iterable[Figure]) -> dict[Target, Figure]:
    """The first figure printed per name (later copies are cross-checked, not published)."""
    chosen: dict[Target, Figure] = {}
    for figure in figures:
        if figure.role is Role.VALUE:
            chosen.setdefault(figure.target, figure)
    return chosen


def results_event(extraction: Extraction) -> ResultsPublished:
    current = table_statement(extraction, extraction.period)
    prior = [
        table_statement(extraction, p) for p in table_periods(extraction) if p != extraction.period
    ]
    prose = [prose_statement(extraction, p) for p in prose_only_periods(extraction)]
    comparatives = sorted(
        [*prior, *(s for s in prose if s is not None)], key=lambda s: s.period, reverse=True
    )
    return ResultsPublished(
        **envelope(extraction, ResultsPublished.EVENT_TYPE, extraction.period),
        statement=current,
        comparatives=tuple(comparatives),
    )


def statement_figures(extraction: Extraction, origin: Origin, period: str) -> list[Figure]:
    return [f for f in extraction.select(origin=origin) if f.period == period]


def table_periods(extraction: Extraction) -> list[str]:
    periods = [f.period for f in extraction.select(origin=Origin.TABLE)]
    return list(dict.fromkeys(periods))


def prose_only_periods(extraction: Extraction) -> list[str]:
    printed = set(table_periods(extraction))
    found = [
        f.period
        for f in extraction.select(origin=Origin.PROSE)
        if f.target == Target(Kind.HEADLINE, "net_income") and f.role is Role.VALUE
    ]
    return [p for p in dict.fromkeys(found) if p not in printed]


def table_statement(extraction: Extraction, period: str) -> IncomeStatement:
    figures = statement_figures(extraction, Origin.TABLE, period)
    convenience = convenience_of(extraction, figures)
    return statement(extraction, period, figures, extraction.scale, convenience)


def prose_statement(extraction: Extraction, period: str) -> IncomeStatement | None:
    """A period only the prose states ('... in the prior quarter'), at the prose's scale."""
    figures = [
        f
        for f in statement_figures(extraction, Origin.PROSE, period)
        if f.target.kind in AMOUNT_KINDS | {Kind.PER_SHARE, Kind.RATIO}
    ]
    scales = [f.scale for f in figures if f.target.kind in AMOUNT_KINDS and f.scale is not None]
    if not scales:
        return None
    finest = min(scales, key=lambda scale: scale.factor)
    return statement(extraction, period, figures, finest, None)


def statement(
    extraction: Extraction,
    period: str,
    figures: Sequence[Figure],
    scale: Scale,
    convenience: ConvenienceTranslation | None,
) -> IncomeStatement:
    chosen = first_values(f for f in figures if f.currency in (extraction.currency, None))
    amounts = {t: f for t, f in chosen.items() if t.kind in AMOUNT_KINDS}
    lines: dict[str, Any] = {
        group: tuple(line(f, scale) for t, f in amounts.items() if t.kind is kind)
        for kind, group in LINE_KINDS.items()
    }
    headlines: dict[str, Any] = {
        t.name: f.value_in(scale) for t, f in amounts.items() if t.kind is Kind.HEADLINE
    }
    return IncomeStatement(
        period=period,
        period_end=period_end(period),
        currency=extraction.currency,
        scale=scale,
        **lines,
        **headlines,
        per_share=per_share(figures),
        share_counts=share_counts(chosen.values()),
        stated_ratios=tuple(
            StatedRatio(name=t.name, percent=f.value)
            for t, f in chosen.items()
            if t.kind is Kind.RATIO
        ),
        convenience=convenience,
    )


def line(figure: Figure, scale: Scale) -> StatementLine:
    return StatementLine(
        name=figure.target.name,
        amount=figure.value_in(scale),
        parent=figure.target.parent,
        label=figure.provenance.label,
    )


def per_share(figures: Sequence[Figure]) -> tuple[PerShareFigure, ...]:
    """Per-share figures in every currency printed (the statement's and the convenience one)."""
    chosen: dict[tuple[str, str | None], Figure] = {}
    for f in figures:
        if f.target.kind is Kind.PER_SHARE and f.role is Role.VALUE:
            chosen.setdefault((f.target.name, f.currency), f)
    return tuple(
        PerShareFigure(name=name, amount=f.value, currency=currency or "")
        for (name, currency), f in chosen.items()
    )


def share_counts(figures: Iterable[Figure]) -> tuple[ShareCount, ...]:
    return tuple(
        ShareCount(name=f.target.name, value=whole(f.value_in(Scale.UNITS)))
        for f in figures
        if f.target.kind is Kind.SHARE_COUNT
    )


def whole(value: Decimal) -> int:
    return int(value.to_integral_value())


def convenience_of(
    extraction: Extraction, figures: Sequence[Figure]
) -> ConvenienceTranslation | None:
    rate = extraction.exchange_rate
    if rate is None:
        return None
    chosen = first_values(f for f in figures if f.currency == rate.currency)
    amounts = {
        convenience_key(t): f.value_in(extraction.scale)
        for t, f in chosen.items()
        if t.kind in AMOUNT_KINDS
    }
    if not amounts:
        return None
    return ConvenienceTranslation(currency=rate.currency, rate=rate.rate, figures=amounts)


def convenience_key(target: Target) -> str:
    """Line names are unique per parent; the translation's flat map joins them with '__'."""
    return f"{target.parent}__{target.name}" if target.parent else target.name


def metric_events(extraction: Extraction) -> list[MetricReported]:
    chosen = first_by_period(f for f in extraction.figures if f.target.kind is Kind.METRIC)
    return [metric_event(extraction, figure) for figure in chosen]


def first_by_period(figures: Iterable[Figure]) -> list[Figure]:
    chosen: dict[tuple[Target, str], Figure] = {}
    for figure in figures:
        if figure.role is Role.VALUE:
            chosen.setdefault((figure.target, figure.period), figure)
    return list(chosen.values())


def metric_event(extraction: Extraction, figure: Figure) -> MetricReported:
    """Money keeps its stated scale; counts ('12.5 million') become whole numbers."""
    money = figure.unit is Unit.MONEY
    return MetricReported(
        **envelope(extraction, MetricReported.EVENT_TYPE, figure.period, figure.target.name),
        metric=figure.target.name,
        period=figure.period,
        value=figure.value if money else integral(figure.value_in(Scale.UNITS)),
        unit=figure.unit,
        currency=figure.currency if money else None,
        scale=figure.scale if money else None,
    )


def integral(value: Decimal) -> Decimal:
    """12500000.0 as 12500000; 1.25 unchanged."""
    return Decimal(whole(value)) if value == value.to_integral_value() else value


def guidance_events(extraction: Extraction) -> list[GuidanceIssued]:
    ranges: dict[tuple[str, str], dict[Role, Figure]] = {}
    for figure in extraction.figures:
        if figure.target.kind is Kind.GUIDANCE:
            ranges.setdefault((figure.target.name, figure.period), {}).setdefault(
                figure.role, figure
            )
    return [
        guidance_event(extraction, name, period, bounds)
        for (name, period), bounds in ranges.items()
    ]


def guidance_event(
    extraction: Extraction, name: str, period: str, bounds: dict[Role, Figure]
) -> GuidanceIssued:
    low = bounds.get(Role.LOW)
    scale = low.scale if low is not None else None
    values: dict[str, Any] = {
        GUIDED_ROLES[role]: f.value_in(scale) if f.unit is Unit.MONEY and scale else f.value
        for role, f in bounds.items()
    }
    return GuidanceIssued(
        **envelope(extraction, GuidanceIssued.EVENT_TYPE, period, name),
        metric=name,
        period=period,
        basis=metric_spec(name).basis,
        unit=metric_spec(name).unit,
        currency=low.currency if low is not None else None,
        scale=scale,
        issued_in_period=extraction.period,
        **values,
    )
