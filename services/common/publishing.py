"""Publishing input events onto their streams (the path `guidepost publish` and others use)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from pydantic import ValidationError

from schemas import INPUT_EVENTS
from schemas.base import Event
from schemas.guidance import GuidanceIssued
from schemas.metrics import MetricReported
from schemas.results import ResultsPublished
from schemas.streams import Streams
from services.common.consumer import describe_validation_error
from services.common.settings import RedisSettings
from services.common.streams import publish
from services.common.transport import create_redis

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


MAX_LINE_BYTES = 1_048_576  # far above any one event; a larger line is refused, not parsed


def read_jsonl(path: Path) -> tuple[list[Event], list[LineError]]:
    """`parse_jsonl` of a file, each line decoded on its own: a line that is not UTF-8 or is
    too long is an error of that line (naming it), not of the whole file."""
    events: list[Event] = []
    errors: list[LineError] = []
    with path.open("rb") as handle:
        for number, raw in enumerate(_bounded_lines(handle), start=1):
            if raw is None:
                errors.append(LineError(number, None, f"longer than {MAX_LINE_BYTES:,} bytes"))
                continue
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                errors.append(LineError(number, None, f"not UTF-8 (byte {error.start + 1})"))
                continue
            found, problems = parse_jsonl([text])
            events += found
            errors += [LineError(number, p.field, p.message) for p in problems]
    return events, errors


def _bounded_lines(handle: BinaryIO) -> Iterable[bytes | None]:
    """Each line's bytes, or None for a line longer than MAX_LINE_BYTES (skipped unread)."""
    while True:
        line = handle.readline(MAX_LINE_BYTES + 1)
        if not line:
            return
        if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
            while line and not line.endswith(b"\n"):  # the rest of the long line
                line = handle.readline(MAX_LINE_BYTES)
            yield None
            continue
        yield line
