"""Publishing input events onto their streams (the path `guidepost publish` and others use)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from schemas import INPUT_EVENTS
from schemas.base import Event
from schemas.guidance import GuidanceIssued
from schemas.metrics import MetricReported
from schemas.results import ResultsPublished
from schemas.streams import Streams
from services.common.consumer import describe_validation_error
from services.common.redis import create_redis
from services.common.settings import RedisSettings
from services.common.streams import publish

INPUT_STREAM_OF: dict[type[Event], str] = {
    ResultsPublished: "results",
    MetricReported: "metrics",
    GuidanceIssued: "guidance",
}
DEFAULT_MAX_LENGTH = 1_000_000


def logical_stream_for(streams: Streams, event: Event) -> str:
    kind = INPUT_STREAM_OF.get(type(event))
    if kind is None:
        raise TypeError(f"{type(event).__name__} is not an input event")
    return str(getattr(streams, kind))


def stream_for(streams: Streams, event: Event) -> str:
    return streams.for_company(logical_stream_for(streams, event), event.company)


async def publish_events(settings: RedisSettings, events: Sequence[Event]) -> int:
    """Append each event to its input stream; returns how many were published."""
    streams = settings.streams()
    redis = create_redis(settings)
    try:
        for event in events:
            stream = logical_stream_for(streams, event)
            await publish(redis, stream, [event], max_length=DEFAULT_MAX_LENGTH, streams=streams)
    finally:
        await redis.aclose()
    return len(events)


@dataclass(frozen=True)
class LineError:
    line: int
    field: str | None
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


def parse_jsonl(lines: Iterable[str]) -> tuple[list[Event], list[LineError]]:
    """Each line: {"stream": "results"|"metrics"|"guidance", "event": {...}}. All or nothing."""
    events: list[Event] = []
    errors: list[LineError] = []
    for number, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        outcome = _parse_line(number, text)
        if isinstance(outcome, LineError):
            errors.append(outcome)
        else:
            events.append(outcome)
    return events, errors


def _parse_line(number: int, text: str) -> Event | LineError:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        return LineError(number, None, f"not JSON ({error.msg} at column {error.colno})")
    if not isinstance(document, dict) or set(document) != {"stream", "event"}:
        return LineError(number, None, 'expected {"stream": ..., "event": {...}}')
    event_type = INPUT_EVENTS.get(document["stream"])
    if event_type is None:
        known = ", ".join(INPUT_EVENTS)
        return LineError(number, "stream", f"stream: {document['stream']!r} is not one of {known}")
    try:
        return event_type.model_validate(document["event"])
    except ValidationError as error:
        rejection = describe_validation_error(error)
        return LineError(number, rejection.field, f"event.{rejection.error}")


def read_jsonl(path: Path) -> tuple[list[Event], list[LineError]]:
    with path.open(encoding="utf-8") as handle:
        return parse_jsonl(handle)
