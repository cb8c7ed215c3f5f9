"""Settings errors and representations never show a password or token, and still say what is
wrong with which variable."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from services.common.settings import (
    ApiSettings,
    RedisSettings,
    WorkerSettings,
    describe_settings_error,
    redacted_url,
)

pytestmark = pytest.mark.unit

SECRET = "s3cr3t-in-the-url"


def failure(cls: type, monkeypatch: pytest.MonkeyPatch, **env: str) -> ValidationError:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError) as caught:
        cls()
    return caught.value


@pytest.mark.parametrize(
    "url",
    [
        f"redis://guidepost:{SECRET}@redis:notaport/0",  # bad port
        f"http://guidepost:{SECRET}@redis:6379/0",  # wrong scheme
        f"redis://:{SECRET}@/0?password={SECRET}",  # no host
    ],
    ids=["bad-port", "wrong-scheme", "no-host"],
)
def test_an_invalid_redis_url_is_reported_without_its_password(
    monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    error = failure(RedisSettings, monkeypatch, GUIDEPOST_REDIS_URL=url)
    described = describe_settings_error(error)

    assert SECRET not in str(error)
    assert SECRET not in described
    assert described.startswith("GUIDEPOST_REDIS_URL: ")
    assert "***@" in described


def test_the_reason_is_still_given(monkeypatch: pytest.MonkeyPatch) -> None:
    error = failure(
        RedisSettings, monkeypatch, GUIDEPOST_REDIS_URL=f"http://u:{SECRET}@redis:6379/0"
    )

    assert "URL scheme should be 'redis', 'rediss' or 'unix'" in describe_settings_error(error)
    assert "(given: http://***@redis:6379/…)" in describe_settings_error(error)


def test_a_webhook_url_token_in_path_or_query_is_cut(monkeypatch: pytest.MonkeyPatch) -> None:
    error = failure(
        WorkerSettings,
        monkeypatch,
        GUIDEPOST_WEBHOOK_URL=f"hooks.example/services/{SECRET}?token={SECRET}",
    )

    assert SECRET not in str(error)
    assert describe_settings_error(error).startswith("GUIDEPOST_WEBHOOK_URL: ")


def test_no_field_echoes_its_input(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any field, not only URLs: a misplaced secret in a wrong variable stays hidden too."""
    error = failure(
        ApiSettings, monkeypatch, GUIDEPOST_HTTP_PORT=SECRET, GUIDEPOST_PARTITIONS=SECRET
    )

    assert SECRET not in str(error)
    assert sorted(describe_settings_error(error).splitlines()) == [
        "GUIDEPOST_HTTP_PORT: Input should be a valid integer, unable to parse string as an "
        "integer",
        "GUIDEPOST_PARTITIONS: Input should be a valid integer, unable to parse string as an "
        "integer",
    ]


def test_valid_settings_show_a_url_password_redacted() -> None:
    settings = RedisSettings(redis_url=f"redis://guidepost:{SECRET}@redis:6379/0")

    assert SECRET not in repr(settings)
    assert SECRET not in str(settings)
    assert settings.redis_url.password == SECRET  # still used to connect


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (f"redis://user:{SECRET}@host:6379/0", "redis://***@host:6379/…"),
        (f"rediss://{SECRET}@host", "rediss://***@host"),
        ("redis://host:6379", "redis://host:6379"),
        (f"https://hooks.example/T0/{SECRET}", "https://hooks.example/…"),
        (f"https://hooks.example/?sig={SECRET}", "https://hooks.example/…"),
        ("unix:///run/redis.sock", "unix:///…"),
    ],
)
def test_redacted_url_keeps_scheme_host_and_port_only(url: str, shown: str) -> None:
    assert redacted_url(url) == shown
