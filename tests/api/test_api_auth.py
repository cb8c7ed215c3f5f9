"""With a token configured, every route but the probes needs it; the token is never echoed."""

from __future__ import annotations

import logging

import pytest

from tests.api.running import BundledRun, api_client

pytestmark = pytest.mark.integration

TOKEN = "s3cr3t-token-for-the-read-api"
GUARDED = ["/", "/companies/QFIN", "/api/companies", "/api/companies/QFIN/forecasts", "/metrics"]


@pytest.mark.parametrize("path", GUARDED)
async def test_guarded_route_refuses_requests_without_the_right_token_and_serves_with_it(
    bundled_run: BundledRun, path: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with api_client(bundled_run.api_settings(api_token=TOKEN)) as client:
        missing = await client.get(path)
        wrong = await client.get(path, headers={"Authorization": "Bearer not-the-token"})
        basic = await client.get(path, headers={"Authorization": f"Basic {TOKEN}"})
        right = await client.get(path, headers={"Authorization": f"Bearer {TOKEN}"})

    assert [r.status_code for r in (missing, wrong, basic, right)] == [401, 401, 401, 200]
    assert missing.headers["www-authenticate"].startswith("Bearer")
    for response in (missing, wrong, basic, right):
        assert TOKEN not in response.text
        assert all(TOKEN not in value for value in response.headers.values())
    assert all(TOKEN not in record.getMessage() for record in caplog.records)


@pytest.mark.parametrize("path", ["/health", "/ready"])
async def test_probes_stay_open_when_a_token_is_required(
    bundled_run: BundledRun, path: str
) -> None:
    async with api_client(bundled_run.api_settings(api_token=TOKEN)) as client:
        response = await client.get(path)

    assert response.status_code == 200
