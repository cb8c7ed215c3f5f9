"""What Guidepost posts to Alertmanager, and how notices are batched: pure functions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from schemas.alerts import Alert, AlertKind, AlertStatus, Severity
from services.alerts.alertmanager import (
    NEWS_KINDS,
    Posted,
    alert_annotations,
    api_url,
    plain_number,
    postable_alert,
)
from services.alerts.lifecycle import fingerprint, group_key
from services.alerts.webhook import notice_batches
from services.common.settings import WorkerSettings

pytestmark = pytest.mark.unit

STARTS = datetime(2024, 8, 1, 9, tzinfo=UTC)


def alert(
    *,
    company: str = "QFIN",
    subject: str = "net_income",
    notification: int = 1,
    status: AlertStatus = AlertStatus.FIRING,
    kind: AlertKind = AlertKind.BAND_CHECK,
    details: dict[str, Any] | None = None,
    ends_at: datetime | None = None,
) -> Alert:
    return Alert(
        event_id=f"{company}-{subject}-{notification}",
        company=company,
        fingerprint=fingerprint(company=company, period="2024Q2", kind=kind.value, subject=subject),
        group_key=group_key(company=company, period="2024Q2"),
        kind=kind,
        status=status,
        severity=Severity.WARNING,
        period="2024Q2",
        subject=subject,
        state="likely_below",
        summary="QFIN net income 2024Q2 is likely below guidance.",
        details={"p_below": 0.62} if details is None else details,
        starts_at=STARTS,
        ends_at=ends_at,
        notification=notification,
    )


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (2.42e11, "242000000000.0"),
        (2.42e16, "24200000000000000"),
        (1e-7, "0.0000001"),
        (Decimal("2.42E+11"), "242000000000"),
        (Decimal("1170.50"), "1170.50"),
        (12, "12"),
        (True, "true"),
    ],
)
def test_numbers_are_written_in_plain_notation(value: float | Decimal, text: str) -> None:
    assert plain_number(value) == text


@pytest.mark.parametrize(
    ("base", "url"),
    [
        ("http://am:9093", "http://am:9093/api/v2/alerts"),
        ("http://am:9093/", "http://am:9093/api/v2/alerts"),
        ("https://ops.example.test/alertmanager/", "https://ops.example.test/alertmanager/api/v2/alerts"),
        ("http://am:9093/api/v2/alerts", "http://am:9093/api/v2/alerts"),
    ],
)  # fmt: skip
def test_the_endpoint_is_found_under_a_route_prefix(base: str, url: str) -> None:
    assert api_url(base) == url


def test_labels_are_the_identity_and_state_severity_and_numbers_are_annotations() -> None:
    posted = postable_alert(
        alert(details={"p_below": 0.62, "point": 2.42e11, "bad-name": 1, "scorecard": [1, 2]}),
        ends_at=STARTS + timedelta(minutes=4),
        constant_labels={"team": "risk"},
        external_url="https://guidepost.example.test/",
    )

    assert posted["labels"] == {
        "team": "risk",
        "alertname": "band_check",
        "company": "QFIN",
        "period": "2024Q2",
        "subject": "net_income",
    }
    annotations = posted["annotations"]
    assert isinstance(annotations, dict)
    assert annotations["state"] == "likely_below"
    assert annotations["severity"] == "warning"
    assert annotations["p_below"] == "0.62"
    assert annotations["point"] == "242000000000.0"
    assert "bad-name" not in annotations, "not a valid annotation name: only in the description"
    assert "scorecard=[1, 2]" in str(annotations["description"])
    assert posted["startsAt"] == "2024-08-01T09:00:00Z"
    assert posted["endsAt"] == "2024-08-01T09:04:00Z"
    assert posted["generatorURL"] == "https://guidepost.example.test/companies/QFIN"


def test_without_an_end_alertmanager_applies_its_resolve_timeout() -> None:
    posted = postable_alert(
        alert(kind=AlertKind.OUTCOME), ends_at=None, constant_labels={}, external_url=""
    )

    assert "endsAt" not in posted


def test_without_an_external_url_no_generator_url_is_sent() -> None:
    posted = postable_alert(alert(), ends_at=STARTS, constant_labels={}, external_url="")

    assert "generatorURL" not in posted


def test_ends_at_is_never_before_starts_at() -> None:
    posted = postable_alert(
        alert(), ends_at=STARTS - timedelta(hours=1), constant_labels={}, external_url=""
    )

    assert posted["endsAt"] == posted["startsAt"]


def test_annotations_are_bounded() -> None:
    details = {f"n{i:03d}": i for i in range(200)} | {"long": "x" * 10_000}

    annotations = alert_annotations(alert(details=details))

    assert len(annotations) <= 6 + 40
    assert all(len(value) <= 4_000 for value in annotations.values())
    assert annotations["description"].endswith("…")


def test_only_lasting_conditions_are_kept_for_reposting() -> None:
    firing = Posted.of(alert(), at=0.0)
    resolved = Posted.of(alert(status=AlertStatus.RESOLVED, ends_at=STARTS), at=0.0)
    news = Posted.of(alert(kind=AlertKind.OUTCOME), at=0.0)

    assert AlertKind.BAND_CHECK not in NEWS_KINDS
    assert (firing.reposted, resolved.reposted, news.reposted) == (True, False, False)
    assert Posted.decode(firing.encode()) == firing


def test_notices_are_batched_by_group_in_order_and_an_alert_never_twice_in_a_batch() -> None:
    a1, b1 = alert(subject="net_income"), alert(subject="non_gaap_net_income")
    other = alert(company="LX")
    a2 = alert(subject="net_income", notification=2)

    batches = notice_batches([a1, other, b1, a2], max_size=10)

    assert batches == [[a1, b1], [other], [a2]]
    assert notice_batches([a1, b1, other], max_size=1) == [[a1], [b1], [other]]
    with pytest.raises(ValueError, match="max_size"):
        notice_batches([a1], max_size=0)


def test_alertmanager_settings_parse_urls_and_constant_labels() -> None:
    settings = WorkerSettings(
        alertmanager_url="http://am-0:9093, http://am-1:9093",  # type: ignore[arg-type]
        alertmanager_labels="team=risk, env = prod",  # type: ignore[arg-type]
    )

    assert [str(url) for url in settings.alertmanager_url] == [
        "http://am-0:9093/",
        "http://am-1:9093/",
    ]
    assert settings.alertmanager_labels == {"team": "risk", "env": "prod"}
    assert WorkerSettings().alertmanager_url == ()


@pytest.mark.parametrize(
    ("labels", "reason"),
    [
        ("team", "expected name=value pairs"),
        ("company=x", "set from each alert"),
        ("1team=x", "must match"),
        ("team=", "is empty"),
    ],
)
def test_a_bad_constant_label_is_refused_naming_it(labels: str, reason: str) -> None:
    with pytest.raises(ValidationError, match=reason):
        WorkerSettings(alertmanager_labels=labels)  # type: ignore[arg-type]


def test_a_bad_alertmanager_url_is_refused_without_echoing_credentials() -> None:
    with pytest.raises(ValidationError) as failure:
        WorkerSettings(alertmanager_url="http://user:s3cret@am:9093, redis://am:6379")  # type: ignore[arg-type]

    assert "s3cret" not in str(failure.value)
    assert "alertmanager_url" in str(failure.value)
