"""The status page's alert timeline places each notice when its fact became known (not when
the alerts worker processed it), and shows informational notices as informational."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import JsonValue

from schemas.alerts import Alert, AlertKind, AlertStatus, Severity
from services.api.pages import alert_timeline, company_page
from services.api.reader import CompanyState
from services.api.timeline import INFORMATIONAL, record_status, timeline

pytestmark = pytest.mark.unit
PROCESSED = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)  # a backlog drained in one go


def known(day: int, hour: int = 9) -> datetime:
    return datetime(2024, 5, day, hour, tzinfo=UTC)


def notice(
    subject: str,
    *,
    starts_at: datetime,
    processed: datetime = PROCESSED,
    status: AlertStatus = AlertStatus.FIRING,
    severity: Severity = Severity.WARNING,
    ends_at: datetime | None = None,
    number: int = 1,
    details: dict[str, JsonValue] | None = None,
) -> Alert:
    return Alert(
        occurred_at=processed, company="ACME", fingerprint=f"fp-{subject}", group_key="g",
        kind=AlertKind.BAND_CHECK, status=status, severity=severity, period="2024Q2",
        subject=subject, summary=f"{subject} notice {number}", starts_at=starts_at,
        ends_at=ends_at, notification=number, details=details or {},
    )  # fmt: skip


def test_notices_are_ordered_by_when_their_fact_became_known_not_when_they_were_processed() -> None:
    # newest processed first, as the stream reads them, but the facts became known the other
    # way round
    alerts = [
        notice("early", starts_at=known(1), processed=PROCESSED + timedelta(minutes=2)),
        notice("late", starts_at=known(20), processed=PROCESSED + timedelta(minutes=1)),
        notice("middle", starts_at=known(10), processed=PROCESSED),
    ]

    entries = timeline(alerts)

    assert [e.subject for e in entries] == ["late", "middle", "early"]
    assert [e.known_at for e in entries] == [known(20), known(10), known(1)]


def test_the_page_places_each_marker_at_its_known_at_and_names_the_processing_time_apart() -> None:
    alerts = [
        notice("early", starts_at=known(1), processed=PROCESSED + timedelta(minutes=2)),
        notice("late", starts_at=known(20), processed=PROCESSED),
    ]

    html = alert_timeline(alerts)

    assert re.findall(r'<time datetime="([^"]+)">', html) == [
        known(20).isoformat(),
        known(1).isoformat(),
    ]
    assert "known 2024-05-20 09:00:00 UTC" in html
    assert "processed 2026-12-05 09:00:00 UTC" in html
    assert html.index("late notice") < html.index("early notice")


def test_a_resolved_notice_is_placed_when_the_clearing_fact_became_known() -> None:
    resolved = notice(
        "cleared", starts_at=known(1), ends_at=known(15), status=AlertStatus.RESOLVED, number=2
    )
    firing = notice("opened", starts_at=known(10))

    entries = timeline([firing, resolved])

    assert [(e.subject, e.known_at) for e in entries] == [
        ("cleared", known(15)),
        ("opened", known(10)),
    ]


def test_a_later_notice_of_an_episode_comes_after_its_first_and_says_since_when() -> None:
    first = notice("band", starts_at=known(1), number=1)
    change = notice("band", starts_at=known(1), number=2)

    entries = timeline([first, change])
    html = alert_timeline([first, change])

    assert [e.notification for e in entries] == [2, 1]
    assert "episode known 2024-05-01 09:00:00 UTC" in html
    assert "known 2024-05-01 09:00:00 UTC" in html


def test_a_revision_notice_is_placed_when_its_statement_became_known() -> None:
    # the second statement of one guidance episode: its own time is in its details
    first = notice("guidance", starts_at=known(1), details={"known_at": "2024-05-01T09:00:00Z"})
    raised = notice(
        "guidance", starts_at=known(1), number=2, details={"known_at": "2024-08-20T09:00:00Z"}
    )
    undated = notice("other", starts_at=known(5), number=2, details={"known_at": "soon"})

    entries = timeline([first, raised, undated])

    assert [(e.subject, e.notification, e.known_at) for e in entries] == [
        ("guidance", 2, datetime(2024, 8, 20, 9, tzinfo=UTC)),
        ("other", 2, known(5)),
        ("guidance", 1, known(1)),
    ]
    assert [e.at_episode_start for e in entries] == [False, True, False]


def test_an_informational_notice_is_shown_as_informational_not_firing() -> None:
    info = notice("inside", starts_at=known(3), severity=Severity.INFO)
    warning = notice("below", starts_at=known(2))

    html = alert_timeline([info, warning])

    (info_item,) = re.findall(r'<li class="[^"]*">(?:(?!</li>).)*inside notice', html)
    assert "status-informational" in info_item
    assert "status-firing" not in info_item
    assert " · informational · info · " in info_item
    assert 'class="alert severity-warning status-firing"' in html


@pytest.mark.parametrize(
    ("status", "severity", "shown"),
    [
        ("firing", "warning", "firing"),
        ("firing", "critical", "firing"),
        ("firing", "info", INFORMATIONAL),
        ("resolved", "info", "resolved"),
        ("resolved", "warning", "resolved"),
    ],
)
def test_stored_records_count_as_firing_only_when_not_informational(
    status: str, severity: str, shown: str
) -> None:
    assert record_status(status, severity) == shown


def test_the_summary_counts_informational_notices_apart_from_firing_alerts() -> None:
    state = CompanyState("ACME", [], [], [], [], [], firing=1, informational=3)

    page = company_page(state, ["ACME"])

    assert "<span>firing alerts <b>1</b></span>" in page
    assert "<span>informational notices <b>3</b></span>" in page
