"""Log lines inside the handling of an event carry its fields; outside, they do not."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest

from services.common.logging import JsonFormatter, batch_entries, handling, log_context

pytestmark = pytest.mark.unit


class Event:
    def __init__(self, event_id: str, company: str) -> None:
        self.event_id, self.company = event_id, company


def formatted(message: str) -> dict[str, str]:
    record = logging.LogRecord("test", logging.INFO, __file__, 1, message, None, None)
    document: dict[str, str] = json.loads(JsonFormatter().format(record))
    return document


def test_a_line_inside_handling_names_the_event_and_its_entry_and_none_after() -> None:
    origins = {"e-1": {"stream": "ns:in:metrics", "entry_id": "1-0"}}
    with batch_entries(origins), handling(Event("e-1", "ACME")):
        inside = formatted("applied")
    outside = formatted("idle")

    assert {k: inside[k] for k in ("event_id", "company", "stream", "entry_id")} == {
        "event_id": "e-1",
        "company": "ACME",
        "stream": "ns:in:metrics",
        "entry_id": "1-0",
    }
    assert not {"event_id", "company", "stream", "entry_id"} & set(outside)


async def test_concurrent_handlings_keep_their_own_fields() -> None:
    async def handle(event_id: str) -> dict[str, str]:
        with log_context(event_id=event_id):
            await asyncio.sleep(0)  # let the other task run inside its own block
            return formatted("handling")

    first, second = await asyncio.gather(handle("a"), handle("b"))

    assert (first["event_id"], second["event_id"]) == ("a", "b")
