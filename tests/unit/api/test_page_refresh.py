"""The status page reloads itself only when asked (`?refresh=N`), and offers the choice."""

from __future__ import annotations

import re

import pytest

from services.api.pages import company_page, overview_page
from services.api.reader import CompanyState

pytestmark = pytest.mark.unit
STATE = CompanyState("ACME", [], [], [], [], [], 0)


def meta_refresh(page: str) -> list[str]:
    return re.findall(r'<meta http-equiv="refresh" content="([^"]*)">', page)


def test_by_default_the_page_does_not_reload_itself() -> None:
    assert meta_refresh(company_page(STATE, ["ACME"])) == []
    assert meta_refresh(overview_page([STATE])) == []


def test_a_refresh_interval_reloads_the_page_that_often() -> None:
    assert meta_refresh(company_page(STATE, ["ACME"], refresh_s=30)) == ["30"]
    assert meta_refresh(overview_page([STATE], refresh_s=300)) == ["300"]


def test_the_control_links_this_page_with_each_interval_and_marks_the_current_one() -> None:
    page = company_page(STATE, ["ACME"], refresh_s=60)

    (control,) = re.findall(r'<span class="refresh">.*?</span>', page)
    links = re.findall(r'<a href="([^"]+)"', control)
    assert links == [
        "/companies/ACME",
        "/companies/ACME?refresh=30",
        "/companies/ACME?refresh=60",
        "/companies/ACME?refresh=300",
    ]
    assert re.findall(r'<a href="([^"]+)" class="current"', control) == [
        "/companies/ACME?refresh=60"
    ]


def test_navigating_keeps_the_chosen_interval() -> None:
    page = overview_page([STATE], refresh_s=30)

    assert '<a href="/companies/ACME?refresh=30">ACME</a>' in page
    assert '<a href="/companies/ACME?refresh=30">ACME ›</a>' in page
