"""Parsing `guidepost silence add --match ... --duration ... --comment ...`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.alerts.silences import (
    SilenceError,
    build_silence,
    parse_duration,
    parse_matcher,
    parse_matchers,
)

pytestmark = pytest.mark.unit

NOW = datetime(2024, 8, 1, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90m", timedelta(minutes=90)),
        ("2h", timedelta(hours=2)),
        ("1d", timedelta(days=1)),
        ("1d12h", timedelta(hours=36)),
        ("45s", timedelta(seconds=45)),
        ("1w", timedelta(weeks=1)),
        (" 2H ", timedelta(hours=2)),
    ],
)
def test_durations_parse_to_timedeltas(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", r"'' is not a duration; expected e.g. 90m"),
        ("2", r"'2' is not a duration"),
        ("2 hours", r"'2 hours' is not a duration"),
        ("-1h", r"'-1h' is not a duration"),
        ("1.5h", r"'1.5h' is not a duration"),
        ("0m", r"'0m' is zero"),
        ("400d", r"'400d' is longer than 366 days"),
    ],
)
def test_bad_durations_are_refused_naming_the_bad_part(text: str, message: str) -> None:
    with pytest.raises(SilenceError, match=message):
        parse_duration(text)


def test_a_matcher_splits_at_the_first_equals_sign() -> None:
    assert parse_matcher("subject=net_income=x") == ("subject", "net_income=x")
    assert parse_matcher(" company = QFIN ") == ("company", "QFIN")


def test_matchers_combine_and_may_use_globs() -> None:
    matchers = parse_matchers(["company=Q*", "kind=band_check", "kind=band_check"])

    assert matchers == {"company": "Q*", "kind": "band_check"}


@pytest.mark.parametrize(
    ("texts", "message"),
    [
        (["companyQFIN"], r"'companyQFIN' has no '='; expected label=value"),
        (["compnay=QFIN"], r"unknown label 'compnay'; expected one of company, period"),
        (["company="], r"'company=' has an empty value"),
        (["company=QFIN", "company=LX"], r"'company=LX' conflicts with company=QFIN"),
        ([], r"needs at least one --match"),
    ],
)
def test_bad_matchers_are_refused_naming_the_bad_part(texts: list[str], message: str) -> None:
    with pytest.raises(SilenceError, match=message):
        parse_matchers(texts)


def test_build_silence_starts_now_and_lasts_the_duration() -> None:
    silence = build_silence(
        silence_id="s-42",
        matches=["company=QFIN", "kind=band_check"],
        duration="2h",
        comment=" guidance call on Monday ",
        created_by="analyst",
        now=NOW,
    )

    assert silence.matchers == {"company": "QFIN", "kind": "band_check"}
    assert (silence.starts_at, silence.ends_at) == (NOW, NOW + timedelta(hours=2))
    assert silence.comment == "guidance call on Monday"
    assert silence.matches({"company": "QFIN", "kind": "band_check"}, at=NOW)


@pytest.mark.parametrize(
    ("comment", "created_by", "now", "message"),
    [
        (" ", "analyst", NOW, "--comment is empty"),
        ("why", "", NOW, "created_by is empty"),
        ("why", "analyst", datetime(2024, 8, 1), "timezone-aware"),
    ],
)
def test_build_silence_requires_a_reason_an_author_and_an_aware_time(
    comment: str, created_by: str, now: datetime, message: str
) -> None:
    with pytest.raises(SilenceError, match=message):
        build_silence(
            silence_id="s-1",
            matches=["company=QFIN"],
            duration="1h",
            comment=comment,
            created_by=created_by,
            now=now,
        )
