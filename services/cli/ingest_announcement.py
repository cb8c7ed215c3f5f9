"""`guidepost ingest-announcement FILE`: read, cross-check, then publish (or show) the events.

Exit codes (the command's table, `failures.EXIT_CODES`): 0 published or shown, 1 publishing
failed (Redis unreachable or refusing), 2 the document cannot be read or breaks the contracts,
3 cross-checks disagree (without --force).
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console

from schemas.base import Event
from services.cli import failures
from services.extract.checks import compare_all, cross_check
from services.extract.events import to_events
from services.extract.model import AnnouncementError, Extraction
from services.extract.parser import parse_announcement
from services.extract.report import as_json, render

EXIT_OK = failures.EXIT_OK
EXIT_DISCREPANCIES = failures.EXIT_CHECKS_DISAGREE
EXIT_UNREADABLE = failures.EXIT_BAD_INPUT
EXIT_PUBLISH_FAILED = failures.EXIT_FAILED
COMMAND = "guidepost ingest-announcement"
DEFAULT_MAX_BYTES = 5_000_000  # a results announcement is a few hundred kB at most


def ingest_announcement(
    file: Annotated[Path, typer.Argument(help="The announcement as UTF-8 text.")],
    company: Annotated[
        str | None,
        typer.Option("--company", help="Ticker to use instead of the one the document names."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would be published; publish nothing.")
    ] = False,
    json_output: Annotated[
        bool,
        typer.Option(
            "--json", help="Print one JSON object: events, provenance, unplaced, discrepancies."
        ),
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Publish even when cross-checks disagree.")
    ] = False,
    redis_url: Annotated[
        str | None,
        typer.Option("--redis-url", help="Redis URL; defaults to GUIDEPOST_REDIS_URL."),
    ] = None,
    max_bytes: Annotated[
        int,
        typer.Option("--max-bytes", min=1, help="Refuse a larger document (5 MB by default)."),
    ] = DEFAULT_MAX_BYTES,
) -> int:
    """Parse an earnings announcement, cross-check its figures, and publish its events."""
    try:
        text = read_bounded(file, max_bytes)
        extraction = parse_announcement(text, company=company)
    except (OSError, UnicodeDecodeError, AnnouncementError) as error:
        return fail(f"cannot ingest {file}: {error}", EXIT_UNREADABLE, json_output=json_output)
    if cross_check(extraction) and not force:
        show(extraction, events_or_none(extraction), json_output=json_output)
        return fail(
            "cross-checks disagree; nothing published (--force overrides)",
            EXIT_DISCREPANCIES,
            json_output=json_output,
        )
    try:
        events = to_events(extraction)
    except ValidationError as error:
        problem = failures.describe_failure(error).message
        return fail(
            f"the figures of {file} break the event contracts: {problem}",
            EXIT_UNREADABLE,
            json_output=json_output,
        )
    if dry_run:
        show(extraction, events, json_output=json_output)
        return EXIT_OK
    return publish(extraction, events, redis_url=redis_url, json_output=json_output)


def fail(message: str, code: int, *, json_output: bool) -> int:
    failure = failures.Failure(message, code)
    return failures.report_failure(failure, command=COMMAND, as_json=json_output)


def read_bounded(file: Path, max_bytes: int) -> str:
    """The document as text, refused (AnnouncementError) above `max_bytes`: parsing and
    cross-checking take time and memory in proportion to its size."""
    with file.open("rb") as handle:
        raw = handle.read(max_bytes + 1)
    if len(raw) > max_bytes:
        raise AnnouncementError(
            f"the document is larger than {max_bytes:,} bytes; --max-bytes raises the limit"
        )
    return raw.decode("utf-8")


def events_or_none(extraction: Extraction) -> list[Event]:
    """The events for a report on a failed ingest; none when the contracts reject them."""
    try:
        return to_events(extraction)
    except ValidationError:
        return []


def show(extraction: Extraction, events: Sequence[Event], *, json_output: bool) -> None:
    comparisons, discrepancies = compare_all(extraction), cross_check(extraction)
    if json_output:
        write_json(as_json(extraction, events, comparisons, discrepancies))
    else:
        render(Console(), extraction, events, comparisons, discrepancies)


def write_json(payload: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(payload, ensure_ascii=False) + "\n")


def publish(
    extraction: Extraction, events: Sequence[Event], *, redis_url: str | None, json_output: bool
) -> int:
    # Imported here so parsing and --dry-run work without the Redis stack.
    from services.common.publishing import publish_events
    from services.common.settings import RedisSettings

    overrides: dict[str, Any] = {} if redis_url is None else {"redis_url": redis_url}
    try:
        settings = RedisSettings(**overrides)
        published = asyncio.run(publish_events(settings, events))
    except Exception as error:
        failure = failures.describe_failure(error)
        return fail(f"publishing failed: {failure.message}", failure.exit_code,
                    json_output=json_output)  # fmt: skip
    if json_output:
        write_json(
            {**as_json(extraction, events, compare_all(extraction), []), "published": published}
        )
    else:
        Console().print(
            f"published {published} events for {extraction.company} {extraction.period}"
        )
    return EXIT_OK
