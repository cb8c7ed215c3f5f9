"""The bundled Q1 2024 announcement: every figure placed, traceable, and consistent."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from services.extract import Extraction, compare_all, cross_check
from services.extract.model import Kind, Origin, Role, Target

pytestmark = pytest.mark.unit


def table_rows(text: str, title: str) -> list[tuple[int, list[str]]]:
    """(line number, value cells) of a table's data rows, read naively as the oracle."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == title)
    rows, index = [], start + 1
    while index < len(lines) and not (
        lines[index].strip() and "\t" in lines[index] and lines[index].split("\t")[0].strip()
    ):
        index += 1
    while index < len(lines) and "\t" in lines[index]:
        rows.append((index + 1, [c.strip() for c in lines[index].split("\t")[1:]]))
        index += 1
    return rows


def placed_lines(extraction: Extraction) -> Counter[int]:
    return Counter(f.provenance.line for f in extraction.figures if f.origin is Origin.TABLE)


def test_document_facts_are_read_from_the_text(seed: Extraction) -> None:
    assert (seed.company, seed.period, seed.currency, seed.scale.value) == (
        "QFIN",
        "2024Q1",
        "CNY",
        "thousands",
    )
    assert seed.published_at == datetime(2024, 5, 19, tzinfo=timezone(timedelta(hours=8)))
    assert seed.exchange_rate is not None
    assert (seed.exchange_rate.currency, seed.exchange_rate.rate) == ("USD", Decimal("7.2203"))


@pytest.mark.parametrize(
    "title",
    [
        "Unaudited Condensed Consolidated Statements of Operations",
        "Unaudited Reconciliations of GAAP and Non-GAAP Results",
    ],
)
def test_every_printed_cell_of_the_read_tables_becomes_a_figure(
    seed_text: str, seed: Extraction, title: str
) -> None:
    rows = table_rows(seed_text, title)
    printed = Counter({line: sum(1 for cell in cells if cell) for line, cells in rows})
    placed = placed_lines(seed)
    assert {line: placed[line] for line in printed} == dict(printed)
    assert not [u for u in seed.unplaced if u.line in printed]


def test_every_figure_points_at_its_exact_text(seed_text: str, seed: Extraction) -> None:
    lines = seed_text.splitlines()
    for figure in seed.figures:
        where = figure.provenance
        assert lines[where.line - 1][where.start : where.end] == where.text, figure


def test_contract_sign_conventions_apply(seed: Extraction) -> None:
    def table_value(name: str, period: str, kind: Kind = Kind.COST_LINE) -> Decimal:
        return next(
            f.value
            for f in seed.figures
            if f.target == Target(kind, name)
            and f.period == period
            and f.currency == "CNY"
            and f.origin is Origin.TABLE
        )

    assert table_value("income_tax_expense", "2024Q1", Kind.HEADLINE) == Decimal(366065)
    provision = "provision_for_accounts_receivable_and_contract_assets"
    assert table_value(provision, "2023Q1") == Decimal(-2236)
    assert table_value("investment_loss", "2024Q1", Kind.OTHER_LINE) == Decimal(0)


def test_the_two_other_services_fees_lines_keep_their_parents(seed: Extraction) -> None:
    parents = {
        f.target.parent
        for f in seed.figures
        if f.target.name == "other_services_fees" and f.origin is Origin.TABLE
    }
    assert parents == {"credit_driven_services", "platform_services"}


def test_business_highlights_and_risk_metrics_are_placed(seed: Extraction) -> None:
    metrics = {
        (f.target.name, f.period): (f.value, f.scale.value if f.scale else None)
        for f in seed.figures
        if f.target.kind is Kind.METRIC and f.role is Role.VALUE
    }
    assert metrics == {
        ("cumulative_borrowers", "2024Q1"): (Decimal("31.2"), "millions"),
        ("cumulative_borrowers", "2023Q1"): (Decimal("27.7"), "millions"),
        ("loans_originated", "2024Q1"): (Decimal(17524872), "units"),
        ("loan_volume", "2024Q1"): (Decimal(99237), "millions"),
        ("loan_volume", "2023Q1"): (Decimal(109456), "millions"),
        ("outstanding_balance", "2024Q1"): (Decimal(169920), "millions"),
        ("outstanding_balance", "2023Q1"): (Decimal(171302), "millions"),
        ("dpd90_rate_pct", "2024Q1"): (Decimal("3.35"), None),
        ("repeat_borrower_contribution_pct", "2024Q1"): (Decimal("91.5"), None),
        ("day1_delinquency_pct", "2024Q1"): (Decimal("4.9"), None),
        ("collection_30d_pct", "2024Q1"): (Decimal("85.1"), None),
    }


def test_outlook_gives_both_guided_ranges(seed: Extraction) -> None:
    guided = {
        (f.target.name, f.role.value): (f.period, f.value)
        for f in seed.figures
        if f.target.kind is Kind.GUIDANCE
    }
    assert guided == {
        ("net_income", "low"): ("2024Q2", Decimal("1.17")),
        ("net_income", "high"): ("2024Q2", Decimal("1.23")),
        ("net_income", "yoy_low"): ("2024Q2", Decimal("7.0")),
        ("net_income", "yoy_high"): ("2024Q2", Decimal("12.5")),
        ("non_gaap_net_income", "low"): ("2024Q2", Decimal("1.22")),
        ("non_gaap_net_income", "high"): ("2024Q2", Decimal("1.28")),
        ("non_gaap_net_income", "yoy_low"): ("2024Q2", Decimal("6.4")),
        ("non_gaap_net_income", "yoy_high"): ("2024Q2", Decimal("11.6")),
    }


def test_prose_prior_quarter_figures_are_read_at_millions(seed: Extraction) -> None:
    prior = {
        f.target.label: f.value
        for f in seed.figures
        if f.period == "2023Q4"
        and f.unit.value == "money"
        and f.scale is not None
        and f.scale.value == "millions"
    }
    assert prior["total_net_revenue"] == Decimal("4495.5")
    assert prior["platform_services.other_services_fees"] == Decimal("103.8")
    assert prior["net_income"] == Decimal("1107.7")
    assert len(prior) == 26


def test_every_identity_holds_and_each_rule_is_exercised(seed: Extraction) -> None:
    comparisons = compare_all(seed)
    rules = Counter(c.rule for c in comparisons)
    assert cross_check(seed) == []
    assert len(rules) == 17
    assert rules["prose figure matches the table"] > 100
    assert rules["convenience figure is the statement figure at the stated rate"] == 38


def test_figures_without_a_contract_name_are_listed_not_dropped(seed: Extraction) -> None:
    texts = {u.text for u in seed.unplaced}
    assert {"241.4 million", "RMB60,506 million", "10.10 months", "RMB1.96 billion"} <= texts
    skipped = {u.text for u in seed.unplaced if u.reason.startswith("table not read")}
    assert len(skipped) == 3


def test_every_business_highlight_figure_is_placed_or_listed(seed: Extraction) -> None:
    read = [(f.provenance.line, f.provenance.text) for f in seed.figures]
    read += [(u.line, u.text) for u in seed.unplaced]
    highlights = Counter(text for line, text in read if 36 <= line <= 45)
    assert highlights == Counter(
        [
            *("159", "241.4 million", "12.5%", "214.5 million"),
            *("52.3 million", "13.8%", "46.0 million"),
            *("31.2 million", "12.6%", "27.7 million"),
            *("17,524,872", "RMB109,456 million", "RMB99,237 million", "9.3%"),
            *("1.4%", "61.0%", "RMB60,506 million", "RMB61,342 million"),
            *("0.8%", "RMB169,920 million", "RMB171,302 million"),
            *("2.9%", "RMB104,523 million", "RMB107,597 million"),
            *("10.10 months", "11.21 months"),
            "3.35%",
            "91.5%",
        ]
    )
