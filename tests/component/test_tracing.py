"""With tracing on, every message handled through the broker leaves an OpenTelemetry span."""

from __future__ import annotations

from decimal import Decimal

import pytest
from faststream.redis import BinaryMessageFormatV1, TestRedisBroker
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from schemas.metrics import MetricReported
from schemas.money import Scale
from schemas.registry import Unit
from services.common.settings import WorkerSettings
from services.common.transport import create_broker

pytestmark = pytest.mark.component


async def test_tracing_setting_adds_a_span_per_message() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    settings = WorkerSettings.model_validate({"tracing": True, "namespace": "traced"})
    # FastStream's own format here: the in-memory broker tracks entries by its headers
    broker = create_broker(settings, tracer_provider=provider, message_format=BinaryMessageFormatV1)
    seen: list[str] = []

    @broker.subscriber(stream="traced:in:metrics")
    async def handle(body: str) -> None:
        seen.append(body)

    event = MetricReported(company="ACME", metric="loan_volume", period="2024-05", value=Decimal(1),
                           unit=Unit.MONEY, currency="CNY", scale=Scale.MILLIONS)  # fmt: skip
    async with TestRedisBroker(broker) as test_broker:
        await test_broker.publish(event.model_dump_json(), stream="traced:in:metrics")

    assert len(seen) == 1
    names = [span.name for span in exporter.get_finished_spans()]
    assert any("traced:in:metrics" in name for name in names), names
