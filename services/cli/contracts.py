"""JSON Schemas for every event and the AsyncAPI document, generated from the models."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from faststream.redis import RedisBroker
from faststream.specification import AsyncAPI
from pydantic import BaseModel

from schemas import ALL_EVENTS
from schemas.deadletter import DeadLetter
from schemas.streams import Streams

API_VERSION = "1.0.0"


def stream_contracts(streams: Streams) -> list[tuple[str, type[Any], str]]:
    """Each stream, the one event type it carries, and what it is for."""
    from schemas import (
        Alert,
        AlertSignal,
        ForecastUpdated,
        GuidanceIssued,
        HistoryUpdated,
        MetricReported,
        ResultsPublished,
        TrendUpdated,
    )

    return [
        (streams.results, ResultsPublished, "Upstream: a company's published results."),
        (streams.metrics, MetricReported, "Upstream: operational metrics at any frequency."),
        (streams.guidance, GuidanceIssued, "Upstream: guidance as the company stated it."),
        (streams.history, HistoryUpdated, "Ingest → forecast, guidance: what changed."),
        (streams.forecasts, ForecastUpdated, "Forecast → guidance: predictive distributions."),
        (streams.trends, TrendUpdated, "Forecast: delinquency and collection trends."),
        (streams.signals, AlertSignal, "Workers → alerts: conditions observed."),
        (streams.alerts, Alert, "Alerts for subscribers (one consumer group each)."),
        (streams.dead_letters, DeadLetter, "Entries no worker could handle, with reasons."),
    ]


def json_schemas() -> dict[str, dict[str, Any]]:
    models: list[type[BaseModel]] = [*ALL_EVENTS, DeadLetter]
    return {model.__name__: model.model_json_schema(mode="serialization") for model in models}


def asyncapi_document(streams: Streams | None = None) -> dict[str, Any]:
    broker = RedisBroker()
    for stream, event_type, description in stream_contracts(streams or Streams()):
        broker.publisher(stream=stream, schema=event_type, title=stream, description=description)
    spec = AsyncAPI(
        broker,
        title="Guidepost",
        version=API_VERSION,
        description="Event-driven forecasts of company results against their guidance.",
    )
    document: dict[str, Any] = json.loads(spec.to_specification().to_json())
    return document


def export(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, schema in json_schemas().items():
        written.append(_write(directory / f"{name}.schema.json", schema))
    written.append(_write(directory / "asyncapi.json", asyncapi_document()))
    return written


def _write(path: Path, document: dict[str, Any]) -> Path:
    path.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path
