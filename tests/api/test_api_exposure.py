"""Who may reach what: beyond loopback a token is required unless explicitly waived; the
probes stay open; /metrics may carry a token of its own that opens nothing else."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from services.common.settings import ApiSettings, is_loopback
from tests.api.running import BundledRun, api_client

TOKEN = "api-token-for-the-pages-and-json"
METRICS_TOKEN = "scraper-token-for-metrics-only"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.unit
@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.0.53", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.0.2.10", False),
        ("api.example.internal", False),
    ],
)
def test_loopback_is_told_apart_from_every_other_interface(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


@pytest.mark.unit
@pytest.mark.parametrize(
    ("values", "refused"),
    [
        ({"http_host": "127.0.0.1"}, False),
        ({"http_host": "0.0.0.0"}, True),
        ({"http_host": "0.0.0.0", "metrics_token": METRICS_TOKEN}, True),  # pages still open
        ({"http_host": "0.0.0.0", "api_token": TOKEN}, False),
        ({"http_host": "0.0.0.0", "http_allow_unauthenticated": True}, False),
    ],
    ids=["loopback", "open", "metrics-token-only", "token", "explicitly-allowed"],
)
def test_serving_beyond_loopback_needs_a_token_or_an_explicit_waiver(
    values: dict[str, object], refused: bool
) -> None:
    problem = ApiSettings.model_validate(values).exposure_problem()

    assert (problem is not None) is refused
    if problem:
        assert "GUIDEPOST_API_TOKEN" in problem
        assert "--allow-unauthenticated" in problem


@pytest.mark.integration
@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("args", "env"),
    [
        (["--host", "0.0.0.0"], {}),
        ([], {"GUIDEPOST_HTTP_HOST": "::"}),
    ],
    ids=["flag", "environment"],
)
def test_serve_refuses_to_open_beyond_loopback_without_a_token(
    args: list[str], env: dict[str, str]
) -> None:
    """Refused before anything listens (and before Redis is contacted): exit status 2."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("GUIDEPOST_")}
    result = subprocess.run(
        [sys.executable, "-m", "services.cli", "serve", *args],
        env={**clean, **env, "GUIDEPOST_REDIS_URL": "redis://127.0.0.1:1/0"},
        capture_output=True,
        text=True,
        timeout=50,
        check=False,
    )

    assert result.returncode == 2, result.stderr
    assert "refusing to serve" in result.stderr
    assert "without a token" in result.stderr


@pytest.mark.integration
@pytest.mark.timeout(60)
def test_serve_reports_invalid_settings_without_the_password_in_the_url() -> None:
    secret = "url-password-7f3a"
    clean = {k: v for k, v in os.environ.items() if not k.startswith("GUIDEPOST_")}
    result = subprocess.run(
        [sys.executable, "-m", "services.cli", "serve"],
        env={**clean, "GUIDEPOST_REDIS_URL": f"redis://guidepost:{secret}@redis:port/0"},
        capture_output=True,
        text=True,
        timeout=50,
        check=False,
    )

    assert result.returncode == 2
    assert "GUIDEPOST_REDIS_URL: Input should be a valid URL" in result.stderr
    assert secret not in result.stdout + result.stderr


@pytest.mark.integration
async def test_a_metrics_token_opens_metrics_and_nothing_else(bundled_run: BundledRun) -> None:
    settings = bundled_run.api_settings(api_token=TOKEN, metrics_token=METRICS_TOKEN)
    async with api_client(settings) as client:
        scrape = await client.get("/metrics", headers=bearer(METRICS_TOKEN))
        scrape_with_api_token = await client.get("/metrics", headers=bearer(TOKEN))
        page_with_metrics_token = await client.get("/", headers=bearer(METRICS_TOKEN))
        json_with_metrics_token = await client.get("/api/companies", headers=bearer(METRICS_TOKEN))
        page = await client.get("/", headers=bearer(TOKEN))
        probes = [await client.get(path) for path in ("/health", "/ready")]

    assert scrape.status_code == 200
    assert "guidepost_stream_length" in scrape.text
    assert scrape_with_api_token.status_code == 401
    assert page_with_metrics_token.status_code == 401
    assert json_with_metrics_token.status_code == 401
    assert page.status_code == 200
    assert [probe.status_code for probe in probes] == [200, 200]


@pytest.mark.integration
async def test_a_metrics_token_alone_guards_metrics_and_leaves_the_pages_as_configured(
    bundled_run: BundledRun,
) -> None:
    """Loopback with no API token: the pages are open (as before); only /metrics is guarded."""
    async with api_client(bundled_run.api_settings(metrics_token=METRICS_TOKEN)) as client:
        anonymous_scrape = await client.get("/metrics")
        scrape = await client.get("/metrics", headers=bearer(METRICS_TOKEN))
        page = await client.get("/")

    assert [anonymous_scrape.status_code, scrape.status_code, page.status_code] == [401, 200, 200]
