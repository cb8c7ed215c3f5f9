"""Every log line the workers write about an event, as JSON, names the event, its company, and
the stream and entry it came from: for an applied event, a refused one and an invalid entry."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from schemas.guidance import GuidanceIssued
from schemas.money import Scale
from schemas.registry import Basis
from services.cli.demo import wait_until_idle
from services.common.logging import ENTRY_FIELDS, JsonFormatter
from services.common.wire import entry_fields
from tests.support.pipeline import pipeline, worker_settings

pytestmark = pytest.mark.integration


class JsonLines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.setFormatter(JsonFormatter())
        self.lines: list[dict[str, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))


@pytest.fixture
def json_logs() -> Iterator[JsonLines]:
    root, handler = logging.getLogger(), JsonLines()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def guidance(low: str) -> GuidanceIssued:
    return GuidanceIssued(
        event_id="guidance-1",
        company="ACME",
        metric="net_income",
        period="2024Q2",
        basis=Basis.GAAP,
        low=Decimal(low),
        high=Decimal(1230),
        currency="CNY",
        scale=Scale.MILLIONS,
    )


@pytest.mark.timeout(120)
async def test_every_line_about_an_event_names_event_company_stream_and_entry(
    redis_url: str, namespace: str, json_logs: JsonLines
) -> None:
    invalid = {"event_id": "bad-1", "company": "ACME", "metric": "net_incme", "period": "2024Q1"}
    async with pipeline(worker_settings(redis_url, namespace)) as workers:
        streams, redis = workers.streams, workers.redis
        applied: Any = await redis.xadd(streams.guidance, entry_fields(guidance("1170")))  # type: ignore[arg-type]
        await wait_until_idle(workers, timeout_s=60, settle_s=0.2)
        conflicting: Any = await redis.xadd(streams.guidance, entry_fields(guidance("1100")))  # type: ignore[arg-type]
        refused: Any = await redis.xadd(streams.metrics, {"__data__": json.dumps(invalid)})
        await wait_until_idle(workers, timeout_s=60, settle_s=0.2)

    about_events = [line for line in json_logs.lines if "event_id" in line]
    for line in about_events:
        assert all(line.get(field) for field in ENTRY_FIELDS), line
    origins = {
        (line["event_id"], line["stream"], line["entry_id"], line["company"])
        for line in about_events
    }
    assert origins == {
        ("guidance-1", streams.guidance, applied.decode(), "ACME"),  # recorded, and the revision
        ("guidance-1", streams.guidance, conflicting.decode(), "ACME"),  # dead-lettered: conflict
        ("bad-1", streams.metrics, refused.decode(), "ACME"),  # dead-lettered: invalid
    }
    messages = " | ".join(line["message"] for line in about_events)
    assert "guidance initial for ACME 2024Q2" in messages
    entry_lines = [line for line in json_logs.lines if refused.decode() in line["message"]]
    assert entry_lines, "the invalid entry was logged"
    assert all(line.get("entry_id") == refused.decode() for line in entry_lines)
