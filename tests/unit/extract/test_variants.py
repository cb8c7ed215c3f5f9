"""Variants of the seed built from its text: the parser reads exactly what was printed."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from schemas.guidance import GuidanceIssued
from schemas.metrics import MetricReported
from schemas.results import ResultsPublished
from services.extract import (
    AnnouncementError,
    Extraction,
    cross_check,
    parse_announcement,
    to_events,
)
from services.extract.model import Origin, Role
from tests.unit.extract.announcement_variants import (
    in_millions,
    next_quarter,
    scaled,
    with_cell,
    with_row_after,
    without_tables,
)

pytestmark = pytest.mark.unit


def table_values(extraction: Extraction) -> dict[tuple[str, str, str | None], Decimal]:
    return {
        (f.target.label, f.period, f.currency): f.value
        for f in extraction.figures
        if f.origin is Origin.TABLE
    }


def results(extraction: Extraction) -> ResultsPublished:
    event = to_events(extraction)[0]
    assert isinstance(event, ResultsPublished)
    return event


def test_doubled_figures_are_read_as_printed_and_still_agree(
    seed_text: str, seed: Extraction
) -> None:
    text, replaced = scaled(seed_text, 2)
    variant = parse_announcement(text)
    before, after = table_values(seed), table_values(variant)
    money = [k for k in before if k[2] == "CNY" and "per_" not in k[0]]
    assert all(after[key] == 2 * before[key] for key in money)
    assert cross_check(variant) == []
    assert "RMB4,153.2 million" in replaced
    assert results(variant).statement.net_income == 2 * results(seed).statement.net_income


def test_doubled_prose_matches_the_doubled_tables(seed_text: str) -> None:
    variant = parse_announcement(scaled(seed_text, 2)[0])
    prose = {
        f.target.label: f.value
        for f in variant.figures
        if f.origin is Origin.PROSE
        and f.period == "2024Q1"
        and f.currency == "CNY"
        and f.role is Role.VALUE
        and f.provenance.line > 90
    }
    assert prose["total_net_revenue"] == Decimal("8306.4")
    assert prose["provision_for_accounts_receivable_and_contract_assets"] == Decimal("222.9")


def test_another_quarter_is_dated_from_its_own_headers(seed_text: str, seed: Extraction) -> None:
    variant = parse_announcement(next_quarter(seed_text))
    events = to_events(variant)
    published = results(variant)
    assert variant.period == "2024Q2"
    assert variant.published_at.date() == date(2024, 8, 19)
    assert published.statement.period_end == date(2024, 6, 30)
    assert [c.period for c in published.comparatives] == ["2024Q1", "2023Q2"]
    guidance = [e for e in events if isinstance(e, GuidanceIssued)]
    assert {(g.period, g.issued_in_period) for g in guidance} == {("2024Q3", "2024Q2")}
    metrics = {(e.metric, e.period) for e in events if isinstance(e, MetricReported)}
    assert ("loan_volume", "2023Q2") in metrics
    assert published.statement.net_income == results(seed).statement.net_income
    assert cross_check(variant) == []


def test_statements_in_millions_are_read_at_that_scale(seed_text: str) -> None:
    variant = parse_announcement(in_millions(seed_text))
    statement = results(variant).statement
    assert (variant.scale.value, statement.scale.value) == ("millions", "millions")
    assert statement.net_income == Decimal("1160.1")
    assert statement.total_net_revenue == Decimal("4153.2")
    assert statement.income_tax_expense == Decimal("366.1")
    assert statement.convenience is not None
    assert statement.convenience.figures["total_net_revenue"] == Decimal("575.2")
    assert {p.name: p.amount for p in statement.per_share if p.currency == "CNY"}[
        "net_income_per_ads_diluted"
    ] == Decimal("7.30")
    assert cross_check(variant) == []


def test_one_altered_table_figure_fails_the_cross_check_and_is_named(seed_text: str) -> None:
    altered = with_cell(seed_text, "Financing income", 2, "1,634,986")
    discrepancies = cross_check(parse_announcement(altered))
    named = {(d.figure, d.rule) for d in discrepancies if d.period == "2024Q1"}
    assert ("credit_driven_services.financing_income", "prose figure matches the table") in named
    assert ("credit_driven_services", "revenue lines sum to their subtotal") in named
    assert all(295 in d.lines for d in discrepancies if "financing_income" in d.figure)


def test_an_unknown_statement_row_is_reported_and_breaks_the_sum(seed_text: str) -> None:
    text = with_cell(seed_text, "Other income, net", 1, "23,164")
    text = with_cell(text, "Other income, net", 2, "109,968")
    text = with_cell(text, "Other income, net", 3, "15,230")
    text = with_row_after(text, "Other income, net", "Gain on disposal\t1,000\t2,000\t277")
    variant = parse_announcement(text)
    assert [u.text for u in variant.unplaced if u.text == "Gain on disposal"]
    failed = {(d.figure, d.period) for d in cross_check(variant)}
    assert ("income_before_tax", "2024Q1") in failed


def test_a_document_without_statement_tables_fails_loudly(seed_text: str) -> None:
    with pytest.raises(AnnouncementError, match="no statement of operations"):
        parse_announcement(without_tables(seed_text))


def test_a_garbled_unit_line_fails_loudly(seed_text: str) -> None:
    garbled = seed_text.replace("(Amounts in thousands of", "(Amounts in thousnads of")
    with pytest.raises(AnnouncementError, match=r"unit line .* not understood"):
        parse_announcement(garbled)


def test_a_missing_unit_line_fails_loudly(seed_text: str) -> None:
    missing = seed_text.replace("(Amounts in thousands of", "(Figures of")
    with pytest.raises(AnnouncementError, match="no unit line"):
        parse_announcement(missing)


def test_a_document_without_a_period_fails_loudly(seed_text: str) -> None:
    undated = seed_text.replace("quarter ended March 31, 2024", "quarter")
    with pytest.raises(AnnouncementError, match="no reporting period"):
        parse_announcement(undated)


def test_convenience_columns_without_a_stated_rate_are_a_discrepancy(seed_text: str) -> None:
    unstated = seed_text.replace("at a rate of RMB", "at the rate of the day, RMB")
    discrepancies = cross_check(parse_announcement(unstated))
    assert [d.rule for d in discrepancies] == ["convenience columns need a stated exchange rate"]
