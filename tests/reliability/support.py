"""Shared pieces of the chaos and fuzz suites: worker processes, synthetic load, checks.

Every test runs its own redis-server on a loopback port (it may kill it) and its workers as
real `guidepost run` processes (they may be killed with SIGKILL).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import redis

from schemas.alerts import Alert
from schemas.deadletter import DeadLetter
from schemas.history import HistoryUpdated
from schemas.metrics import MetricReported
from schemas.registry import Unit
from schemas.streams import DATA_FIELD, Streams
from services.forecast.store import ForecastKeys
from services.ingest.backfill import known_at

B_DATA = DATA_FIELD.encode()
OPERATIONAL_METRIC = "loans_originated"
FIRST_DAY = datetime(2024, 1, 1, tzinfo=UTC)


# --------------------------------------------------------------------------- load


@dataclass(frozen=True)
class Load:
    """Operational-metric events and what the store must hold once they are all processed."""

    events: list[MetricReported]
    expected: dict[tuple[str, str], tuple[Decimal, int]]  # (company, field) → (latest, versions)
    restated: int

    @property
    def restatement_ids(self) -> set[str]:
        return {e.event_id for e in self.events if e.source == "restatement"}


def company_name(index: int) -> str:
    return f"CO{index:04d}"


def daily_metric(company: str, day: int, value: int, *, restated: bool = False) -> MetricReported:
    period = (FIRST_DAY + timedelta(days=day)).date().isoformat()
    seen = known_at(period, 2 if restated else 1)
    return MetricReported(
        event_id=f"{company}-{day}-{'r' if restated else 'o'}",
        company=company,
        metric=OPERATIONAL_METRIC,
        period=period,
        value=Decimal(value),
        unit=Unit.COUNT,
        occurred_at=seen,
        source="restatement" if restated else None,
    )


def operational_load(*, companies: int, days: int, restate_every: int = 0) -> Load:
    """`companies × days` daily facts; every `restate_every`-th one is later restated."""
    events: list[MetricReported] = []
    restatements: list[MetricReported] = []
    expected: dict[tuple[str, str], tuple[Decimal, int]] = {}
    serial = 0
    for day in range(days):
        for index in range(companies):
            company, serial = company_name(index), serial + 1
            original = daily_metric(company, day, 1000 + serial % 997)
            events.append(original)
            key = (company, f"{OPERATIONAL_METRIC}|{original.period}")
            expected[key] = (original.value, 1)
            if restate_every and serial % restate_every == 0:
                restatement = daily_metric(company, day, 5000 + serial % 991, restated=True)
                restatements.append(restatement)
                expected[key] = (restatement.value, 2)
    return Load(events + restatements, expected, len(restatements))


def xadd_all(
    client: redis.Redis, stream: str, bodies: Iterable[str | bytes], *, chunk: int = 1000
) -> int:
    """Append raw entries in pipelined chunks; returns how many were appended."""
    count = 0
    pipe = client.pipeline(transaction=False)
    for body in bodies:
        pipe.xadd(stream, {DATA_FIELD: body})
        count += 1
        if count % chunk == 0:
            pipe.execute()
    pipe.execute()
    return count


# --------------------------------------------------------------------------- workers


@dataclass
class WorkerProcess:
    """`guidepost run` as a child process, configured through GUIDEPOST_* variables."""

    redis_url: str
    namespace: str
    services: str = "ingest,forecast,guidance,alerts"
    settings: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None
    log: Path | None = None

    def start(self, log_dir: Path) -> WorkerProcess:
        env = {
            **os.environ,
            "GUIDEPOST_REDIS_URL": self.redis_url,
            "GUIDEPOST_NAMESPACE": self.namespace,
            "GUIDEPOST_SERVICES": self.services,
            "GUIDEPOST_CLAIM_IDLE_MS": "500",
            "GUIDEPOST_BLOCK_MS": "50",
            "GUIDEPOST_COALESCE_MS": "20",
            "GUIDEPOST_LOG_LEVEL": "WARNING",
            **self.settings,
        }
        self.log = log_dir / f"worker-{time.monotonic_ns()}.log"
        command = [sys.executable, "-m", "services.cli", "run"]
        with self.log.open("wb") as sink:
            self.process = subprocess.Popen(command, env=env, stdout=sink, stderr=sink)
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None, "the worker was not started"
        return self.process.pid

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL: no shutdown hook runs, in-flight entries stay pending."""
        if self.alive:
            os.kill(self.pid, signal.SIGKILL)
            assert self.process is not None
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.alive:
            assert self.process is not None
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def rss_mb(self) -> float:
        """Resident set size of the worker process, from /proc (Linux)."""
        status = Path(f"/proc/{self.pid}/status").read_text()
        line = next(line for line in status.splitlines() if line.startswith("VmRSS:"))
        return int(line.split()[1]) / 1024

    def tail(self, lines: int = 20) -> str:
        if self.log is None or not self.log.exists():
            return ""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def log_records(self) -> list[dict[str, Any]]:
        """The worker's JSON log lines (other output skipped)."""
        if self.log is None or not self.log.exists():
            return []
        records = []
        for line in self.log.read_text(errors="replace").splitlines():
            with contextlib.suppress(ValueError):
                record = json.loads(line)
                if isinstance(record, dict):
                    records.append(record)
        return records


@contextlib.contextmanager
def worker_pool() -> Iterator[list[WorkerProcess]]:
    """Worker processes started into this list are stopped on exit, whatever happened."""
    started: list[WorkerProcess] = []
    try:
        yield started
    finally:
        for worker in started:
            worker.stop()


def start_worker(
    started: list[WorkerProcess], log_dir: Path, redis_url: str, namespace: str, **options: Any
) -> WorkerProcess:
    worker = WorkerProcess(redis_url, namespace, **options).start(log_dir)
    started.append(worker)
    return worker


# --------------------------------------------------------------------------- waiting


def wait_for(
    condition: Callable[[], bool], *, timeout_s: float, what: str, interval_s: float = 0.05
) -> float:
    """Poll until `condition()`; returns the seconds it took, or fails naming `what`."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if condition():
            return time.monotonic() - started
        time.sleep(interval_s)
    raise AssertionError(f"{what}: not reached within {timeout_s:.0f}s")


def group_backlog(client: redis.Redis, stream: str) -> int:
    """Undelivered (lag) plus delivered-but-unacknowledged (pending) entries, all groups;
    a stream no group reads yet counts all its entries."""
    try:
        groups: Any = client.xinfo_groups(stream)
    except redis.ResponseError:
        return 0  # no such stream
    if not groups:
        return int(client.xlen(stream))
    return sum(int(g.get("pending", 0)) + _lag(client, stream, g) for g in groups)


def _lag(client: redis.Redis, stream: str, group: dict[str, Any]) -> int:
    """Redis reports no lag (None) when it cannot count it, e.g. after loading an AOF: then
    whether any entry lies after the group's last delivered id."""
    if group.get("lag") is not None:
        return int(group["lag"])
    last = group["last-delivered-id"].decode()
    after: Any = client.xrange(stream, min=f"({last}", count=1)
    return len(after)


def pipeline_idle(client: redis.Redis, streams: Streams, *, ingest_only: bool = False) -> bool:
    """Nothing waiting on any worker stream and no refit due."""
    watched: tuple[str, ...] = streams.inputs
    if not ingest_only:
        watched += (streams.history, streams.forecasts, streams.signals)
    backlog = sum(group_backlog(client, stream) for stream in watched)
    return backlog == 0 and int(client.zcard(ForecastKeys(streams).dirty)) == 0


def settled(
    client: redis.Redis, streams: Streams, *, settle_s: float = 0.5, ingest_only: bool = False
) -> Callable[[], bool]:
    """Idle, and still idle `settle_s` later (a refit in flight can publish in between)."""

    def check() -> bool:
        if not pipeline_idle(client, streams, ingest_only=ingest_only):
            return False
        time.sleep(settle_s)
        return pipeline_idle(client, streams, ingest_only=ingest_only)

    return check


# --------------------------------------------------------------------------- checks


def fact_dump(client: redis.Redis, namespace: str) -> dict[str, dict[str, list[Any]]]:
    """Every fact version of the namespace, canonically ordered: {company: {field: versions}}."""
    dump: dict[str, dict[str, list[Any]]] = {}
    for key in sorted(client.scan_iter(match=f"{namespace}:{{*}}:versions", count=1000)):
        if client.type(key) != b"hash":  # a scenario's deliberately corrupt key
            continue
        company = key.decode().split("{", 1)[1].split("}", 1)[0]
        raw: Any = client.hgetall(key)
        dump[company] = {
            name.decode(): sorted(json.loads(blob), key=lambda v: (v["t"], v["e"]))
            for name, blob in sorted(raw.items())
        }
    return dump


@dataclass(frozen=True)
class Audit:
    """Losses and duplicates of one run, compared with what the load must leave behind."""

    events: int
    lost: int
    wrong_value: int
    duplicated: int
    history_ids_repeated: int
    history_ids_conflicting: int
    alerts: int
    alert_ids_repeated: int
    dead_lettered: int


def audit(client: redis.Redis, streams: Streams, load: Load) -> Audit:
    dump = fact_dump(client, streams.namespace)
    lost = wrong = duplicated = 0
    for (company, name), (value, versions) in load.expected.items():
        stored = dump.get(company, {}).get(name)
        if stored is None:
            lost += 1
            continue
        if Decimal(stored[-1]["v"]) != value:
            wrong += 1
        duplicated += max(0, len(stored) - versions)
    history = [
        HistoryUpdated.model_validate_json(f[B_DATA]) for _, f in _entries(client, streams.history)
    ]
    alerts = [Alert.model_validate_json(f[B_DATA]) for _, f in _entries(client, streams.alerts)]
    return Audit(
        events=len(load.events),
        lost=lost,
        wrong_value=wrong,
        duplicated=duplicated,
        history_ids_repeated=repeated(h.event_id for h in history),
        history_ids_conflicting=conflicting(history),
        alerts=len(alerts),
        alert_ids_repeated=repeated(a.event_id for a in alerts),
        dead_lettered=int(client.xlen(streams.dead_letters)),
    )


def repeated(ids: Iterable[str]) -> int:
    """How many entries repeat an id seen before."""
    return sum(count - 1 for count in Counter(ids).values())


def conflicting(history: list[HistoryUpdated]) -> int:
    """History update ids published with different content (a repeat must carry the same
    facts)."""
    contents: dict[str, set[str]] = {}
    for update in history:
        content = json.dumps(
            [update.cause_event_id, [f.model_dump(mode="json") for f in update.facts]]
        )
        contents.setdefault(update.event_id, set()).add(content)
    return sum(1 for variants in contents.values() if len(variants) > 1)


@dataclass(frozen=True)
class StoreCount:
    """What the store holds, counted: the events with a version, and the versions that repeat
    an event already recorded for the same fact (an effect applied twice)."""

    recorded_events: set[str]
    applied_twice: int


def store_count(client: redis.Redis, namespace: str) -> StoreCount:
    recorded: set[str] = set()
    twice = 0
    for fields in fact_dump(client, namespace).values():
        for versions in fields.values():
            ids = [version["e"] for version in versions if not version.get("x")]
            recorded.update(ids)
            twice += repeated(ids)
    return StoreCount(recorded, twice)


def dead_letters(client: redis.Redis, streams: Streams) -> list[DeadLetter]:
    return [
        DeadLetter.model_validate_json(f[B_DATA]) for _, f in _entries(client, streams.dead_letters)
    ]


def _entries(client: redis.Redis, stream: str) -> list[tuple[bytes, dict[bytes, bytes]]]:
    raw: Any = client.xrange(stream)
    return list(raw)


def report(record_property: Callable[[str, object], None], name: str, **figures: object) -> None:
    """One JSON line on stdout (pytest -s) and the same figures as junit properties."""
    line = json.dumps({"test": name, **figures}, default=str)
    print(line)
    record_property("figures", line)
