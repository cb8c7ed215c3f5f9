"""The events match what an analyst typed from the document, and ids are deterministic."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from schemas import INPUT_EVENTS
from services.extract import Extraction, parse_announcement, to_events
from services.extract.report import stream_of

pytestmark = pytest.mark.unit

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "qfin_2024q1_events.jsonl"


def hand_written() -> list[tuple[str, dict[str, Any]]]:
    records = [json.loads(line) for line in FIXTURE.read_text().splitlines() if line.strip()]
    return [
        (
            r["stream"],
            INPUT_EVENTS[r["stream"]]
            .model_validate(r["event"])
            .model_dump(mode="json", exclude={"event_id"}),
        )
        for r in records
    ]


def test_parser_yields_the_hand_written_events(seed: Extraction) -> None:
    parsed = [
        (stream_of(event), event.model_dump(mode="json", exclude={"event_id"}))
        for event in to_events(seed)
    ]
    assert parsed == hand_written()


def test_ingesting_the_same_document_twice_yields_the_same_ids(seed_text: str) -> None:
    first = [event.event_id for event in to_events(parse_announcement(seed_text))]
    second = [event.event_id for event in to_events(parse_announcement(seed_text))]
    assert first == second
    assert len(set(first)) == len(first)


def test_a_changed_document_yields_new_ids(seed_text: str) -> None:
    before = {e.event_id for e in to_events(parse_announcement(seed_text))}
    edited = seed_text.replace("E-mail:", "Email:")
    after = {e.event_id for e in to_events(parse_announcement(edited))}
    assert before.isdisjoint(after)


def test_company_given_on_the_command_line_wins(seed_text: str) -> None:
    events = to_events(parse_announcement(seed_text, company="qfin.hk"))
    assert {event.company for event in events} == {"QFIN.HK"}
