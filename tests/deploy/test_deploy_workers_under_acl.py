"""The workers run the whole path as the least-privilege `guidepost` user, and a wrong password
fails fast with a clear message and no secret in the output."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from schemas.alerts import AlertKind
from services.common.embedded import EmbeddedRedis
from services.common.settings import WorkerSettings
from tests.deploy.test_deploy_redis_integration import PASSWORD, acl_server  # noqa: F401 — fixture
from tests.support.pipeline import all_alerts, pipeline, publish_and_settle, synthetic_company

pytestmark = [pytest.mark.deploy, pytest.mark.integration]


def as_guidepost(server: EmbeddedRedis, password: str) -> WorkerSettings:
    return WorkerSettings.model_validate(
        {
            "redis_url": server.url,
            "redis_username": "guidepost",
            "redis_password": password,
            "namespace": "guidepost",  # the ACL grants ~guidepost:* only
            "claim_idle_ms": 500,
            "coalesce_ms": 20,
            "block_ms": 50,
        }
    )


@pytest.mark.timeout(120)
async def test_workers_run_the_whole_path_under_the_least_privilege_acl(
    acl_server: EmbeddedRedis,  # noqa: F811
) -> None:
    events = synthetic_company(
        "ACLCO", first="2021Q1", values=[10, 11, 12, 12, 13, 14, 15, 15], guided=(15, 17)
    )
    async with pipeline(as_guidepost(acl_server, PASSWORD)) as workers:
        await publish_and_settle(workers, events)
        alerts = await all_alerts(workers)
    assert [a.kind for a in alerts if a.company == "ACLCO"].count(AlertKind.BAND_CHECK) == 1


@pytest.mark.timeout(60)
def test_a_wrong_password_fails_fast_with_a_clear_message_and_no_secret(
    acl_server: EmbeddedRedis,  # noqa: F811
) -> None:
    secret = "wrong-but-secret-7f3a"
    env = {
        **os.environ,
        "GUIDEPOST_REDIS_URL": acl_server.url,
        "GUIDEPOST_REDIS_USERNAME": "guidepost",
        "GUIDEPOST_REDIS_PASSWORD": secret,
        "GUIDEPOST_NAMESPACE": "guidepost",
    }
    command = [sys.executable, "-m", "services.cli", "run", "--services", "ingest"]
    result = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=30, check=False
    )
    output = result.stdout + result.stderr
    assert result.returncode == 2
    assert "Redis refused the credentials of user 'guidepost'" in output
    assert secret not in output
