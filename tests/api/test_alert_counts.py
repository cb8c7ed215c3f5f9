"""Informational notices are counted apart from firing alerts, on the status page and in
/metrics, read from the alert service's records in a real Redis."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry, generate_latest

from schemas.streams import Streams
from services.alerts.lifecycle import AlertRecord
from services.alerts.store import encode_record
from services.api.collectors import CompanyCollector
from services.api.reader import StatusReader
from services.common.metrics import create_sync_redis
from services.common.settings import ApiSettings
from tests.api.test_metrics import samples, value

pytestmark = pytest.mark.integration
SEEN = datetime(2024, 5, 20, 9, tzinfo=UTC)


def record(subject: str, *, status: str, severity: str) -> AlertRecord:
    return AlertRecord(
        fingerprint=f"fp-{subject}", company="ACME", period="2024Q2", kind="band_check",
        subject=subject, status=status, severity=severity, state=None,  # type: ignore[arg-type]
        summary=subject, details_digest="d", starts_at=SEEN, observed_at=SEEN,
    )  # fmt: skip


RECORDS = [
    record("below", status="firing", severity="warning"),
    record("critical", status="firing", severity="critical"),
    record("inside", status="firing", severity="info"),
    record("outcome", status="firing", severity="info"),
    record("informational-then-cleared", status="resolved", severity="info"),
    record("cleared", status="resolved", severity="warning"),
]


@pytest.fixture
async def stored(redis_client: aioredis.Redis, streams: Streams) -> Streams:
    await redis_client.sadd(streams.key("companies"), "ACME")
    key = streams.company_key("ACME", "alerts")
    await redis_client.hset(key, mapping={r.fingerprint: encode_record(r) for r in RECORDS})
    return streams


async def test_the_status_page_counts_informational_notices_apart_from_firing(
    redis_client: aioredis.Redis, stored: Streams
) -> None:
    state = await StatusReader(redis_client, stored).state("ACME")

    assert (state.firing, state.informational) == (2, 2)


async def test_metrics_count_informational_notices_under_their_own_status(
    redis_url: str, stored: Streams
) -> None:
    registry = CollectorRegistry()
    client = create_sync_redis(ApiSettings(redis_url=redis_url, namespace=stored.namespace))
    registry.register(CompanyCollector(client, stored))

    try:
        found = samples(generate_latest(registry).decode())
    finally:
        client.close()

    counts = {
        status: value(found, "guidepost_company_alerts", company="ACME", status=status)
        for status in ("firing", "informational", "resolved")
    }
    assert counts == {"firing": 2, "informational": 2, "resolved": 2}
