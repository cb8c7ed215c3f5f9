"""Outlook prose that states guidance as year-on-year growth alone becomes growth guidance."""

from __future__ import annotations

from decimal import Decimal

import pytest

from schemas.guidance import GuidanceIssued
from services.extract import parse_announcement, to_events
from services.extract.checks import cross_check

pytestmark = pytest.mark.unit
SEED_OUTLOOK_START = "As such, for the second quarter of 2024, the Company expects"
SEED_OUTLOOK_END = "between 6.4% and 11.6%."


def with_outlook(seed_text: str, sentence: str) -> str:
    start = seed_text.index(SEED_OUTLOOK_START)
    end = seed_text.index(SEED_OUTLOOK_END, start) + len(SEED_OUTLOOK_END)
    return seed_text[:start] + sentence + seed_text[end:]


def growth_guidance(text: str) -> dict[str, tuple[str, Decimal | None, Decimal | None]]:
    extraction = parse_announcement(text)
    assert cross_check(extraction) == []
    events = [e for e in to_events(extraction) if isinstance(e, GuidanceIssued)]
    assert all((e.low, e.high, e.currency, e.scale) == (None,) * 4 for e in events)
    return {e.metric: (e.period, e.yoy_low_pct, e.yoy_high_pct) for e in events}


@pytest.mark.parametrize(
    ("sentence", "expected"),
    [
        (
            "For the second quarter of 2024, the Company expects net income to grow 10% to 15% "
            "year over year.",
            {"net_income": ("2024Q2", Decimal(10), Decimal(15))},
        ),
        (
            "For the second quarter of 2024, the Company expects net income to grow by 10.5% to "
            "15.0% year-over-year and non-GAAP net income to grow by 9% to 14% year-over-year.",
            {
                "net_income": ("2024Q2", Decimal("10.5"), Decimal("15.0")),
                "non_gaap_net_income": ("2024Q2", Decimal(9), Decimal(14)),
            },
        ),
        (
            "For the second quarter of 2024, the Company expects net income to increase by at "
            "least 10% year on year, and non-GAAP net income to grow by up to 12% year on year.",
            {
                "net_income": ("2024Q2", Decimal(10), None),
                "non_gaap_net_income": ("2024Q2", None, Decimal(12)),
            },
        ),
        (
            "For the second quarter of 2024, the Company expects net income to decline 5% to 10% "
            "compared with the same quarter of last year.",
            {"net_income": ("2024Q2", Decimal(-10), Decimal(-5))},
        ),
        (
            "For the full year 2024, the Company expects net income to grow 10% to 15% year over "
            "year.",
            {"net_income": ("FY2024", Decimal(10), Decimal(15))},
        ),
    ],
)
def test_growth_stated_alone_becomes_growth_guidance(
    seed_text: str, sentence: str, expected: dict[str, tuple[str, Decimal | None, Decimal | None]]
) -> None:
    assert growth_guidance(with_outlook(seed_text, sentence)) == expected


def test_growth_that_is_not_year_on_year_is_not_guidance(seed_text: str) -> None:
    text = with_outlook(
        seed_text,
        "For the second quarter of 2024, the Company expects net income to grow 10% to 15% "
        "quarter over quarter.",
    )

    extraction = parse_announcement(text)

    assert not [e for e in to_events(extraction) if isinstance(e, GuidanceIssued)]
    assert any(u.text == "10%" for u in extraction.unplaced)


def test_the_seed_keeps_its_amount_band_and_the_growth_it_states(seed_text: str) -> None:
    events = [e for e in to_events(parse_announcement(seed_text)) if isinstance(e, GuidanceIssued)]

    net_income = next(e for e in events if e.metric == "net_income")
    assert (net_income.low, net_income.high) == (Decimal("1.17"), Decimal("1.23"))
    assert (net_income.yoy_low_pct, net_income.yoy_high_pct) == (Decimal("7.0"), Decimal("12.5"))
