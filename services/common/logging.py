"""Structured logs: one JSON object per line carrying, on every line written while an entry is
handled, the event's id and company and the stream and entry it came from.

The consumer knows the stream and entry, the event knows its id and company; they reach every
log line in between through a context variable (`log_context`, `handling`), so a handler's own
lines need no `extra=`. asyncio copies the context into each task, so concurrent batches keep
their own.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, Protocol

CONTEXT_FIELDS = ("event_id", "company", "stream", "entry_id", "error")
ENTRY_FIELDS = ("event_id", "company", "stream", "entry_id")

NOTHING: Mapping[str, Any] = MappingProxyType({})
_context: ContextVar[Mapping[str, str]] = ContextVar("guidepost_log_context", default=NOTHING)
# the entries of the batch being handled, by event id: where each event came from
_entries: ContextVar[Mapping[str, Mapping[str, str]]] = ContextVar(
    "guidepost_batch_entries", default=NOTHING
)


class AboutAnEvent(Protocol):
    @property
    def event_id(self) -> str: ...

    @property
    def company(self) -> str: ...


@contextlib.contextmanager
def log_context(**fields: object) -> Iterator[None]:
    """Every log line inside the block carries these fields (None values are left out)."""
    added = {name: str(value) for name, value in fields.items() if value is not None}
    token = _context.set({**_context.get(), **added})
    try:
        yield
    finally:
        _context.reset(token)


@contextlib.contextmanager
def batch_entries(entries: Mapping[str, Mapping[str, str]]) -> Iterator[None]:
    """While a batch is handled: each event id's stream and entry id."""
    token = _entries.set(entries)
    try:
        yield
    finally:
        _entries.reset(token)


@contextlib.contextmanager
def handling(event: AboutAnEvent) -> Iterator[None]:
    """Lines about this event carry its id, company, stream and entry id."""
    entry = _entries.get().get(event.event_id, {})
    with log_context(event_id=event.event_id, company=event.company, **entry):
        yield


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        document = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        document.update(_context.get())
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                document[name] = str(value)
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        return json.dumps(document)


def configure_logging(level: str = "INFO", *, as_json: bool = True) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(
        JsonFormatter() if as_json else logging.Formatter("%(levelname)s %(name)s: %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # httpx logs full request URLs at INFO, and webhook URLs can carry tokens
    logging.getLogger("httpx").setLevel(logging.WARNING)
