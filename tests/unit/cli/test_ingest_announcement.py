"""`ingest-announcement`: what it prints, when it refuses, and what it hands the publisher."""

from __future__ import annotations

import json
import sys
import types
from collections.abc import Sequence
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from schemas.base import Event
from services.cli.ingest_announcement import (
    EXIT_DISCREPANCIES,
    EXIT_OK,
    EXIT_PUBLISH_FAILED,
    EXIT_UNREADABLE,
    ingest_announcement,
)
from services.common.settings import RedisSettings
from tests.unit.extract.announcement_variants import with_cell, without_tables

pytestmark = pytest.mark.unit


@pytest.fixture
def altered(tmp_path: Path, seed_text: str) -> Path:
    path = tmp_path / "altered.txt"
    path.write_text(with_cell(seed_text, "Financing income", 2, "1,634,986"), encoding="utf-8")
    return path


class FakePublisher:
    """Stands in for services.common.publishing; remembers what it was asked to publish."""

    def __init__(self, fail: bool = False) -> None:
        self.published: list[Event] = []
        self.redis_urls: list[str] = []
        self.fail = fail

    async def publish_events(self, settings: RedisSettings, events: Sequence[Event]) -> int:
        if self.fail:
            raise ConnectionError("Redis is not answering")
        self.redis_urls.append(str(settings.redis_url))
        self.published.extend(events)
        return len(events)


@pytest.fixture
def publisher(monkeypatch: pytest.MonkeyPatch) -> FakePublisher:
    fake = FakePublisher()
    module = types.ModuleType("services.common.publishing")
    module.publish_events = fake.publish_events  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "services.common.publishing", module)
    return fake


def test_dry_run_json_lists_events_provenance_and_no_discrepancies(
    seed_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = ingest_announcement(seed_path, dry_run=True, json_output=True)
    payload = json.loads(capsys.readouterr().out)
    assert code == EXIT_OK
    assert [record["stream"] for record in payload["events"]].count("metrics") == 11
    assert len(payload["events"]) == 14
    assert payload["discrepancies"] == []
    assert {"line", "span", "text", "column"} <= set(payload["provenance"][0])
    assert payload["unplaced"]


def test_dry_run_prints_a_table_for_people(
    seed_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = ingest_announcement(seed_path, dry_run=True)
    assert code == EXIT_OK
    assert "Events to publish" in capsys.readouterr().out


def test_a_discrepancy_fails_the_ingest_with_a_report(
    altered: Path, publisher: FakePublisher, capsys: pytest.CaptureFixture[str]
) -> None:
    code = ingest_announcement(altered, json_output=True)
    payload = json.loads(capsys.readouterr().out)
    assert code == EXIT_DISCREPANCIES
    assert publisher.published == []
    assert "credit_driven_services.financing_income" in {
        d["figure"] for d in payload["discrepancies"]
    }


def test_force_publishes_despite_discrepancies(altered: Path, publisher: FakePublisher) -> None:
    code = ingest_announcement(altered, force=True, redis_url="redis://example:6390/0")
    assert code == EXIT_OK
    assert len(publisher.published) == 14
    assert publisher.redis_urls == ["redis://example:6390/0"]


def test_a_clean_document_is_published(seed_path: Path, publisher: FakePublisher) -> None:
    assert ingest_announcement(seed_path) == EXIT_OK
    assert [type(e).__name__ for e in publisher.published][:2] == [
        "ResultsPublished",
        "MetricReported",
    ]


def test_a_publishing_failure_is_its_own_exit_code(
    seed_path: Path, publisher: FakePublisher, capsys: pytest.CaptureFixture[str]
) -> None:
    publisher.fail = True
    assert ingest_announcement(seed_path) == EXIT_PUBLISH_FAILED
    assert "Redis is not answering" in capsys.readouterr().err


def test_an_unreadable_document_fails_loudly(
    tmp_path: Path, seed_text: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "no_tables.txt"
    path.write_text(without_tables(seed_text), encoding="utf-8")
    assert ingest_announcement(path, dry_run=True) == EXIT_UNREADABLE
    assert "no statement of operations" in capsys.readouterr().err
    assert ingest_announcement(tmp_path / "missing.txt") == EXIT_UNREADABLE


def test_options_parse_under_typer(seed_path: Path) -> None:
    app = typer.Typer()
    app.command("ingest-announcement")(ingest_announcement)
    result = CliRunner().invoke(app, [str(seed_path), "--dry-run", "--json", "--company", "QFIN"])
    assert result.exit_code == 0
    assert json.loads(result.stdout)["company"] == "QFIN"


def test_an_inverted_guided_range_is_a_discrepancy_not_a_crash(
    tmp_path: Path, seed_text: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "inverted.txt"
    path.write_text(seed_text.replace("RMB1.17 billion", "RMB1.37 billion"), encoding="utf-8")
    code = ingest_announcement(path, dry_run=True, json_output=True)
    payload = json.loads(capsys.readouterr().out)
    assert code == EXIT_DISCREPANCIES
    assert [d["figure"] for d in payload["discrepancies"]] == ["guidance.net_income"]
    assert ingest_announcement(path, dry_run=True, force=True) == EXIT_UNREADABLE
