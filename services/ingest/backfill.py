"""The history CSV format (one row per quarter, one column per metric) as input events.

Each value becomes a `MetricReported` known at the quarter's end plus a reporting lag, so a
replay sees history as it was reported, not as it is known today. Ids derive from the content:
backfilling the same file twice publishes nothing new.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TextIO

from pydantic import ValidationError

from schemas.base import Event
from schemas.guidance import GuidanceIssued
from schemas.metrics import MetricReported
from schemas.money import Scale
from schemas.periods import FISCAL_YEAR_PATTERN, Quarter, period_end
from schemas.registry import METRICS, Unit, metric_spec
from services.common.ids import derived_id

PRODUCER = "guidepost-backfill"
NON_METRIC_COLUMNS = {"quarter", "period_end", "source_url"}


@dataclass(frozen=True)
class CsvUnits:
    """The unit of the CSV's money columns; the bundled format states RMB million."""

    currency: str = "CNY"
    scale: Scale = Scale.MILLIONS
    reporting_lag_days: int = 50


class BackfillError(ValueError):
    pass


def _rows(handle: TextIO, path: Path, *, required: tuple[str, ...]) -> csv.DictReader[str]:
    """The CSV's rows, refused up front when its header lacks a column every row needs."""
    reader = csv.DictReader(handle)
    missing = [column for column in required if column not in (reader.fieldnames or ())]
    if missing:
        found = ", ".join(reader.fieldnames or ()) or "nothing"
        raise BackfillError(f"{path.name}: no {', '.join(missing)} column (found: {found})")
    return reader


def known_at(period: str, lag_days: int) -> datetime:
    return datetime.combine(period_end(period) + timedelta(days=lag_days), time(), tzinfo=UTC)


def history_events(
    path: Path, *, company: str, units: CsvUnits, until: str | None = None
) -> Iterator[Event]:
    with path.open(newline="", encoding="utf-8") as handle:
        for line_number, row in enumerate(_rows(handle, path, required=("quarter",)), start=2):
            quarter = (row.get("quarter") or "").strip()
            if until is not None and Quarter.parse(quarter) > Quarter.parse(until):
                continue
            yield from _row_events(row, line_number, company=company, units=units, path=path)


def _row_events(
    row: dict[str, str], line: int, *, company: str, units: CsvUnits, path: Path
) -> Iterator[Event]:
    period = row["quarter"].strip()
    for column, cell in row.items():
        if column in NON_METRIC_COLUMNS or cell is None or not cell.strip():
            continue
        if column not in METRICS:
            raise BackfillError(f"{path.name} line {line}: unknown metric column {column!r}")
        value = _decimal(cell, f"{path.name} line {line}, column {column}")
        yield _metric_event(company, column, period, value, units, source=row.get("source_url"))


def _metric_event(
    company: str, metric: str, period: str, value: Decimal, units: CsvUnits, source: str | None
) -> MetricReported:
    money = metric_spec(metric).unit is Unit.MONEY
    return MetricReported(
        event_id=derived_id(company, "backfill", metric, period, str(value)),
        occurred_at=known_at(period, units.reporting_lag_days),
        producer=PRODUCER,
        company=company,
        metric=metric,
        period=period,
        value=value,
        unit=metric_spec(metric).unit,
        currency=units.currency if money else None,
        scale=units.scale if money else None,
        source=(source or None) and source[:500],
    )


def guidance_events(
    path: Path, *, company: str, units: CsvUnits, until: str | None = None
) -> Iterator[GuidanceIssued]:
    required = ("metric", "for_quarter", "issued_in_quarter")
    with path.open(newline="", encoding="utf-8") as handle:
        for line_number, row in enumerate(_rows(handle, path, required=required), start=2):
            issued_in = row["issued_in_quarter"].strip()
            if until is not None and Quarter.parse(issued_in) > Quarter.parse(until):
                continue
            yield _guidance_event(row, f"{path.name} line {line_number}", company, units)


def _guidance_event(
    row: dict[str, str], where: str, company: str, units: CsvUnits
) -> GuidanceIssued:
    """A row states an amount band (low, high), a growth band (yoy_low_pct, yoy_high_pct; an
    empty low and high mean the band is derived from the prior year), or both."""
    metric, period = row["metric"].strip(), row["for_quarter"].strip()
    spec = metric_spec(metric)
    money = spec.unit is Unit.MONEY
    stated = {column: _optional(row.get(column), where) for column in GUIDANCE_RANGE_COLUMNS}
    issued_in = row["issued_in_quarter"].strip()
    try:
        return GuidanceIssued(
            event_id=_guidance_id(company, metric, period, issued_in, stated),
            occurred_at=known_at(issued_in, units.reporting_lag_days),
            producer=PRODUCER,
            company=company,
            metric=metric,
            period=period,
            basis=spec.basis,
            unit=spec.unit,
            currency=units.currency if money else None,
            scale=units.scale if money else None,
            issued_in_period=issued_in if not FISCAL_YEAR_PATTERN.match(issued_in) else None,
            source=(row.get("source_url") or None) and row["source_url"][:500],
            low=stated["low"],
            high=stated["high"],
            yoy_low_pct=stated["yoy_low_pct"],
            yoy_high_pct=stated["yoy_high_pct"],
        )
    except ValidationError as error:
        raise BackfillError(f"{where}: {validation_problems(error)}") from None


GUIDANCE_RANGE_COLUMNS = ("low", "high", "yoy_low_pct", "yoy_high_pct")


def _guidance_id(
    company: str, metric: str, period: str, issued_in: str, stated: dict[str, Decimal | None]
) -> str:
    parts = [str(stated["low"]), str(stated["high"])]
    if stated["low"] is None and stated["high"] is None:  # growth alone: it names the statement
        parts.append(f"yoy {stated['yoy_low_pct']} {stated['yoy_high_pct']}")
    return derived_id(company, "backfill-guidance", metric, period, issued_in, *parts)


def validation_problems(error: ValidationError) -> str:
    """'field: reason' for each problem pydantic found, in one line."""
    return "; ".join(
        (".".join(str(part) for part in e["loc"]) + ": " if e["loc"] else "")
        + e["msg"].removeprefix("Value error, ")
        for e in error.errors()
    )


def _decimal(text: str, where: str) -> Decimal:
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise BackfillError(f"{where}: {text!r} is not a number") from None
    if not value.is_finite():
        raise BackfillError(f"{where}: {text!r} is not a finite number")
    return value


def _optional(text: str | None, where: str) -> Decimal | None:
    return _decimal(text, where) if text and text.strip() else None
