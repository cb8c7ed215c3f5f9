"""Malformed, truncated, oversized, wrong-unit and wrong-type entries, written straight to every
input stream between valid events: each bad one is dead-lettered with a reason, every valid one
is processed, and the worker keeps running. A property test then gives the worker hostile
values in every field (huge exponents, far-off or ancient dates, other scripts' digits, negative
volumes): each entry is either applied or dead-lettered on its first delivery, never retried."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import redis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from schemas.base import Event
from schemas.deadletter import FailureReason
from schemas.guidance import GuidanceIssued
from schemas.metrics import MetricReported
from schemas.results import ResultsPublished
from schemas.streams import DATA_FIELD, Streams
from services.cli.demo import DEFAULT_DATA_DIR, DemoInputs, announcement_events
from services.common.embedded import EmbeddedRedis
from tests.reliability.support import (
    WorkerProcess,
    dead_letters,
    repeated,
    report,
    settled,
    start_worker,
    store_count,
    wait_for,
    worker_pool,
)

pytestmark = pytest.mark.reliability
NAMESPACE = "gp-fuzz"
MAX_PAYLOAD = 65_536  # above the largest valid event here (a full results release, ~13 kB)
STREAMS = Streams(NAMESPACE)


def templates() -> dict[str, dict[str, Any]]:
    """One valid event per input stream, as JSON documents to mutate."""
    events = announcement_events(DemoInputs.load(DEFAULT_DATA_DIR))
    by_type = {type(e).__name__: json.loads(e.model_dump_json()) for e in events}
    metric = next(
        json.loads(e.model_dump_json())
        for e in events
        if type(e).__name__ == "MetricReported"
        and json.loads(e.model_dump_json())["unit"] == "money"
    )
    return {
        STREAMS.results: by_type["ResultsPublished"],
        STREAMS.metrics: metric,
        STREAMS.guidance: by_type["GuidanceIssued"],
    }


TEMPLATES = templates()
TEMPLATE_COMPANY = TEMPLATES[STREAMS.results]["company"]
EVENT_TYPES: dict[str, type[Event]] = {
    STREAMS.results: ResultsPublished,
    STREAMS.metrics: MetricReported,
    STREAMS.guidance: GuidanceIssued,
}


def accepted(stream: str, fields: dict[bytes | str, bytes | str]) -> str | None:
    """The event id if the entry is a valid event (a mutation can leave it valid), else None."""
    body = fields.get(DATA_FIELD)
    raw = body.encode() if isinstance(body, str) else body
    if raw is None or len(raw) > MAX_PAYLOAD:
        return None
    try:
        return EVENT_TYPES[stream].model_validate_json(raw).event_id
    except ValidationError:
        return None


counter = iter(range(1, 10**9))


def with_fresh_event_id(fields: dict[bytes | str, bytes | str]) -> dict[bytes | str, bytes | str]:
    """The entry with the template's event id and company made unique, where the body still
    carries them: a mutation that leaves the event valid is then a new event about a new
    company, so it must show in the history, rather than a conflicting reuse of an id or a
    no-change repeat of figures an earlier example recorded (both have their own tests)."""
    body = fields.get(DATA_FIELD)
    if not isinstance(body, str) or len(body) > MAX_PAYLOAD:
        return fields
    try:
        document = json.loads(body)
    except ValueError:
        return fields
    if not isinstance(document, dict) or not isinstance(document.get("event_id"), str):
        return fields
    serial = next(counter)
    document["event_id"] = f"{document['event_id']}-{serial}"
    if document.get("company") == TEMPLATE_COMPANY:
        document["company"] = f"FM{serial}"
    return {**fields, DATA_FIELD: json.dumps(document)}


def valid(stream: str) -> dict[str, Any]:
    """A fresh valid event: a new id and company, so each one must be recorded anew."""
    serial = next(counter)
    return {**TEMPLATES[stream], "event_id": f"valid-{serial}", "company": f"FZ{serial}"}


def mutations(stream: str) -> st.SearchStrategy[tuple[str, dict[bytes | str, bytes | str]]]:
    body = json.dumps(TEMPLATES[stream])
    document = TEMPLATES[stream]
    field = st.sampled_from(sorted(document))
    wrong_value = st.one_of(
        st.none(), st.integers(), st.lists(st.integers(), max_size=2), st.text(max_size=5)
    )
    return st.one_of(
        st.text(max_size=60).map(lambda t: ("malformed", {DATA_FIELD: "{" + t})),
        st.integers(1, len(body) - 1).map(lambda n: ("truncated", {DATA_FIELD: body[:n]})),
        st.just(("oversized", {DATA_FIELD: body[:-1] + " " * MAX_PAYLOAD + "}"})),
        st.text(min_size=1, max_size=20).map(lambda t: ("undecodable", {"other": t})),
        st.tuples(field, wrong_value).map(
            lambda fv: ("wrong_type", {DATA_FIELD: json.dumps({**document, fv[0]: fv[1]})})
        ),
        st.just(("wrong_unit", {DATA_FIELD: json.dumps(wrong_unit(stream))})),
    )


def wrong_unit(stream: str) -> dict[str, Any]:
    document = dict(TEMPLATES[stream])
    if stream == STREAMS.metrics:
        return {**document, "unit": "percent"}
    if stream == STREAMS.guidance:
        return {**document, "scale": "furlongs"}
    statement = {**document["statement"], "currency": "C$"}
    return {**document, "statement": statement}


batches = st.lists(
    st.sampled_from(sorted(TEMPLATES)).flatmap(
        lambda stream: st.tuples(st.just(stream), st.booleans(), mutations(stream))
    ),
    min_size=1,
    max_size=8,
)


@pytest.fixture(scope="module")
def fuzz_redis() -> Iterator[EmbeddedRedis]:
    with EmbeddedRedis() as server:
        yield server


@pytest.fixture(scope="module")
def ingest_worker(
    fuzz_redis: EmbeddedRedis, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerProcess]:
    log_dir: Path = tmp_path_factory.mktemp("fuzz")
    with worker_pool() as pool:
        yield start_worker(
            pool,
            log_dir,
            fuzz_redis.url,
            NAMESPACE,
            services="ingest",
            settings={"GUIDEPOST_MAX_PAYLOAD_BYTES": str(MAX_PAYLOAD)},
        )


totals = {"events": 0, "bad": 0, "dead_lettered": 0, "valid_processed": 0}
valid_sent: set[str] = set()


@pytest.mark.timeout(180)
@settings(
    max_examples=30,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],  # shrinking against a live worker is slow
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(batch=batches)
def test_bad_entries_are_dead_lettered_and_valid_ones_processed(
    fuzz_redis: EmbeddedRedis, ingest_worker: WorkerProcess, batch: list[Any]
) -> None:
    client = redis.Redis.from_url(fuzz_redis.url)
    letters_before = len(dead_letters(client, STREAMS))
    bad: dict[tuple[str, str], str] = {}  # (stream, entry id) → kind
    good: list[str] = []
    for stream, with_valid, (kind, mutated) in batch:
        fields = with_fresh_event_id(mutated)
        entry_id = client.xadd(stream, fields)  # type: ignore[arg-type]
        event_id = accepted(stream, fields)
        if event_id is None:
            bad[(stream, entry_id.decode())] = kind  # type: ignore[union-attr]
        else:
            good.append(event_id)
        if with_valid:
            event = valid(stream)
            client.xadd(stream, {DATA_FIELD: json.dumps(event)})
            good.append(event["event_id"])
    wait_for(settled(client, STREAMS, settle_s=0.05, ingest_only=True), timeout_s=30, what="ingest")

    letters = dead_letters(client, STREAMS)[letters_before:]
    assert ingest_worker.alive, ingest_worker.tail()
    assert sorted((d.source_stream, d.entry_id) for d in letters) == sorted(bad)
    assert all(letter.reason and letter.error for letter in letters)
    history: Any = client.xrange(STREAMS.history)
    told = {json.loads(fields[DATA_FIELD.encode()])["cause_event_id"] for _, fields in history}
    assert set(good) <= told, "a valid event between bad ones was not processed"
    totals["events"] += len(batch) + sum(1 for _, with_valid, _ in batch if with_valid)
    totals["bad"] += len(bad)
    totals["dead_lettered"] += len(letters)
    totals["valid_processed"] += len(set(good) & told)
    valid_sent.update(good)
    client.close()


# --------------------------------------------------------------------------- hostile values

hostile_totals = {"entries": 0, "applied": 0, "dead_lettered_at_once": 0}
NON_ASCII_DIGITS = "٠١٢٣٤٥٦٧٨٩０１２３４５６７８９"
# each strategy mixes plausible values in, so that entries apply as well as fail
hostile_numbers = st.one_of(
    st.sampled_from(["1e999999", "-1e999999", "1e-999999", "1e300", "1e400", "1e18", "-0",
                     "99999999999999999999999999999999999", "0.000000000000000000001"]),
    st.decimals(allow_nan=False, allow_infinity=False).map(str),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=False, allow_infinity=False),
    st.decimals(min_value=0, max_value=10**6, places=2).map(str),
    st.decimals(min_value=0, max_value=10**6, places=2).map(str),
)  # fmt: skip
hostile_periods = st.one_of(
    st.sampled_from(["9999Q4", "0000Q1", "2100Q1", "1989Q4", "FY9999", "2024-13", "2024-02-30"]),
    st.from_regex(r"\A[0-9]{4}Q[1-4]\Z"),
    st.from_regex(rf"\A[0-9{NON_ASCII_DIGITS}]{{4}}Q[1-4]\Z"),
    st.from_regex(r"\A(199|20[012])[0-9]-(0[1-9]|1[0-2])(-(0[1-9]|1[0-9]|2[0-8]))?\Z"),
    st.builds(lambda y, q: f"{y}Q{q}", st.integers(1990, 2024), st.integers(1, 4)),
)
hostile_times = st.one_of(
    st.sampled_from(["9999-12-31T23:59:59Z", "0001-01-01T00:00:00+01:00", "1970-01-01T00:00:00Z"]),
    st.datetimes(timezones=st.just(UTC)).map(lambda moment: moment.isoformat()),
    st.datetimes(min_value=datetime(2024, 6, 1), max_value=datetime(2025, 12, 31),
                 timezones=st.just(UTC)).map(lambda moment: moment.isoformat()),
)  # fmt: skip
HOSTILE_FIELDS: dict[str, dict[str, st.SearchStrategy[Any]]] = {
    STREAMS.metrics: {"value": hostile_numbers, "period": hostile_periods,
                      "occurred_at": hostile_times},
    STREAMS.guidance: {"low": hostile_numbers, "high": hostile_numbers, "period": hostile_periods,
                       "occurred_at": hostile_times, "yoy_low_pct": hostile_numbers},
    STREAMS.results: {"occurred_at": hostile_times},
}  # fmt: skip
STATEMENT_FIELDS = {"net_income": hostile_numbers, "total_net_revenue": hostile_numbers,
                    "period": hostile_periods}  # fmt: skip


@st.composite
def hostile_entry(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    """A valid event with some fields replaced by hostile values (a fresh id and company)."""
    stream = draw(st.sampled_from(sorted(TEMPLATES)))
    document = valid(stream)
    fields = HOSTILE_FIELDS[stream]
    for name in draw(st.sets(st.sampled_from(sorted(fields)), min_size=1)):
        document[name] = draw(fields[name])
    if stream == STREAMS.results:
        statement = dict(document["statement"])
        for name in draw(st.sets(st.sampled_from(sorted(STATEMENT_FIELDS)))):
            statement[name] = draw(STATEMENT_FIELDS[name])
        document["statement"] = statement
    return stream, document


@pytest.mark.timeout(180)
@settings(
    max_examples=30,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(entries=st.lists(hostile_entry(), min_size=1, max_size=6))
def test_any_entry_is_applied_or_dead_lettered_on_its_first_delivery(
    fuzz_redis: EmbeddedRedis, ingest_worker: WorkerProcess, entries: list[Any]
) -> None:
    client = redis.Redis.from_url(fuzz_redis.url)
    letters_before = len(dead_letters(client, STREAMS))
    sent: dict[tuple[str, str], str] = {}  # (stream, entry id) → event id
    for stream, document in entries:
        entry_id: Any = client.xadd(stream, {DATA_FIELD: json.dumps(document)})
        sent[(stream, entry_id.decode())] = document["event_id"]
    wait_for(settled(client, STREAMS, settle_s=0.05, ingest_only=True), timeout_s=30,
             what="ingest")  # fmt: skip

    letters = {
        (d.source_stream, d.entry_id): d for d in dead_letters(client, STREAMS)[letters_before:]
    }
    causes = set(history_update_causes(client))
    assert ingest_worker.alive, ingest_worker.tail()
    for (stream, entry_id), event_id in sent.items():
        letter = letters.get((stream, entry_id))
        applied = event_id in causes
        assert applied != (letter is not None), f"{stream} {entry_id}: applied and dead-lettered?"
        if letter is not None:
            assert letter.reason is FailureReason.INVALID, letter.error
            assert letter.delivery_count == 1, "dead-lettered on its first delivery"
            assert letter.field, letter.error
        valid_locally = accepted(stream, {DATA_FIELD: json.dumps(_doc(entries, event_id))})
        assert applied == (valid_locally is not None), (stream, event_id, letter and letter.error)
    hostile_totals["entries"] += len(sent)
    hostile_totals["applied"] += sum(1 for event_id in sent.values() if event_id in causes)
    hostile_totals["dead_lettered_at_once"] += len(letters)
    valid_sent.update(event_id for event_id in sent.values() if event_id in causes)
    client.close()


def _doc(entries: list[Any], event_id: str) -> dict[str, Any]:
    return next(document for _, document in entries if document["event_id"] == event_id)


@pytest.mark.timeout(30)
def test_fuzz_figures(
    fuzz_redis: EmbeddedRedis,
    ingest_worker: WorkerProcess,
    record_property: Callable[[str, object], None],
) -> None:
    """Runs after the fuzz tests (file order): the worker is still up; the totals reported,
    lost and duplicated effects counted from the store and the history stream."""
    client = redis.Redis.from_url(fuzz_redis.url)
    causes = history_update_causes(client)
    lost = len(valid_sent - set(causes))
    duplicated = store_count(client, NAMESPACE).applied_twice + guidance_applied_twice(client)
    client.close()
    report(record_property, "fuzz_inputs", lost=lost, duplicated=duplicated, **totals,
           hostile=hostile_totals)  # fmt: skip
    assert ingest_worker.alive
    assert totals["bad"] == totals["dead_lettered"] > 0
    assert (lost, duplicated) == (0, 0)


def history_update_causes(client: redis.Redis) -> list[str]:
    history: Any = client.xrange(STREAMS.history)
    return [json.loads(fields[DATA_FIELD.encode()])["cause_event_id"] for _, fields in history]


def guidance_applied_twice(client: redis.Redis) -> int:
    """Guidance versions repeating an event already recorded for the same metric and period."""
    twice = 0
    for key in client.scan_iter(match=f"{NAMESPACE}:{{*}}:guidance", count=1000):
        for blob in client.hvals(key):
            twice += repeated(version["event_id"] for version in json.loads(blob))
    return twice


@pytest.mark.timeout(60)
def test_an_entry_of_invalid_utf8_without_the_event_field_is_dead_lettered(
    fuzz_redis: EmbeddedRedis, ingest_worker: WorkerProcess
) -> None:
    client = redis.Redis.from_url(fuzz_redis.url)
    entry_id: Any = client.xadd(STREAMS.metrics, {b"other": b"\xe0\xff"})
    try:
        wait_for(
            lambda: entry_id.decode() in {d.entry_id for d in dead_letters(client, STREAMS)},
            timeout_s=8,
            what="the invalid UTF-8 entry dead-lettered",
        )
    finally:
        client.xack(STREAMS.metrics, "ingest", entry_id)  # do not leave it looping
        client.close()
