"""Derived ids and the store's time stamps keep their exact text: both are compared across
processes and across releases (dedupe marks, bitemporal order)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from uuid import NAMESPACE_URL, uuid5

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.common.histories.facts import known_at_text
from services.common.ids import derived_id

pytestmark = pytest.mark.unit


@given(st.lists(st.text(), min_size=1, max_size=4))
def test_a_derived_id_is_the_uuid5_of_its_parts(parts: list[str]) -> None:
    assert derived_id(*parts) == uuid5(NAMESPACE_URL, "/".join(parts)).hex


def test_the_same_cause_gives_the_same_id_and_another_cause_another() -> None:
    assert derived_id("event-1", "history") == derived_id("event-1", "history")
    assert derived_id("event-1", "history") != derived_id("event-2", "history")


@given(
    st.datetimes(
        min_value=datetime(1990, 1, 1),
        max_value=datetime(2100, 1, 1),
        timezones=st.sampled_from(
            [UTC, timezone(timedelta(hours=8)), timezone(-timedelta(hours=5))]
        ),
    )
)
def test_known_at_text_is_fixed_width_utc(moment: datetime) -> None:
    text = known_at_text(moment)
    assert text == moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert len(text) == 27


def test_text_order_is_time_order() -> None:
    earlier = datetime(2024, 5, 30, 14, 0, tzinfo=timezone(timedelta(hours=8)))  # 06:00 UTC
    later = datetime(2024, 5, 30, 7, 0, tzinfo=UTC)
    assert known_at_text(earlier) < known_at_text(later)
