"""One full path with every part logged in as its own Redis user, as a deployment runs it.

- `publisher`: `guidepost backfill` and `guidepost publish` (the CLI an upstream system can
  use), and a raw XADD of a malformed entry, as any client library would send it;
- `ingest`, `forecast`, `guidance`, `alerts`: the four workers, each alone in its own process
  state (own clients, own metrics exporter and readiness probe, both scraped), the alerts
  worker with a webhook and an Alertmanager sink; and, under each worker's role, the exporter
  of the Redis-derived gauges a worker serves when it is the one designated to
  (GUIDEPOST_STREAM_METRICS);
- `api`: every page and JSON route of `guidepost serve`, its `/metrics`, and `guidepost plot`;
- `subscriber`: a consumer group of its own on the alerts stream, read and acknowledged;
- `operator`: `dlq list/replay/purge`, `history` and `history retract`, `silence
  add/list/expire`, `alerts tail`;
- `scaler`: what KEDA's redis-streams scaler reads (group lag, pending count, length).

Rarer paths are provoked on purpose: an entry a dead consumer left pending is claimed and
retried by ingest, a guidance statement is repeated under a new id (a WATCH given up) and its
first id reused with other content (a conflict), a malformed entry is dead-lettered, replayed
by the operator and dead-lettered again. The webhook receiver and the Alertmanager are down
while the pipeline runs: the alerts worker schedules each sink's notices for redelivery,
retries them with backoff and, past a short horizon, dead-letters them as `delivery_failed`
(and the Alertmanager repost loop fails its rounds); once they are back the operator replays
them (`dlq replay --reason delivery_failed`), the webhook gets each notice once and the
Alertmanager each alert's newest notice, kept firing by the repost loop. A second company's
stray far-off period makes its refit span too many quarters: the forecast worker quarantines
it; the operator retracts the fact (`history retract`) and replays the refit letter (`dlq
replay --reason refit_failed`), and the refit runs again.

The CLI runs as shipped (`python -m services.cli`), in subprocesses with the role's environment.
Idleness is observed by the test administrator, so no role sends a command only the test needs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import redis.asyncio as aioredis

from schemas.alerts import Alert
from schemas.metrics import MetricReported
from schemas.money import Scale
from schemas.registry import Unit
from schemas.streams import Groups, Streams
from services.app import Workers, build_workers, running
from services.cli.demo import DEFAULT_DATA_DIR
from services.common.embedded import free_port
from services.common.metrics import all_streams, create_metrics, serve_metrics
from services.common.settings import ApiSettings, Service, WorkerSettings
from services.common.streams import backlog
from services.common.wire import as_text, entry_body, entry_fields
from tests.api.running import api_client
from tests.deploy.acl_servers import NAMESPACE, AclServer
from tests.support.pipeline import client_under_test

REPO = Path(__file__).resolve().parents[2]
DATA = DEFAULT_DATA_DIR
COMPANY = "QFIN"
UNTIL = "2024Q1"
STRAY = "ACME"  # a second company, one of whose facts is a stray far-off period
STRAY_METRIC = "loan_volume"
STRAY_PERIOD = "1990Q1"
STRAY_QUARTERS = ("2023Q1", "2023Q2", "2023Q3", "2023Q4", "2024Q1")
MAX_HISTORY_QUARTERS = 100  # the stray period spans 137 quarters; the bundled history 21
SUBSCRIBER_GROUP = "acl-test-subscriber"
API_PATHS = (
    "/health",
    "/ready",
    "/",
    f"/companies/{COMPANY}",
    "/api/companies",
    f"/api/companies/{COMPANY}/forecasts",
    f"/api/companies/{COMPANY}/bands",
    f"/api/companies/{COMPANY}/trends",
    f"/api/companies/{COMPANY}/alerts",
    f"/api/companies/{COMPANY}/history",
    "/metrics",
)
MALFORMED = {"__data__": '{"company": "QFIN", "metric": '}  # cut short: not JSON
IDLE_TIMEOUT_S = 60
# The receiver's outage outlasts this: every notice sent meanwhile ends as `delivery_failed`.
WEBHOOK_HORIZON_S = 1.0


@dataclass(frozen=True)
class CliRun:
    role: str
    args: tuple[str, ...]
    returncode: int
    output: str


@dataclass(frozen=True)
class MonitorLine:
    """One command as MONITOR reports it: when, from which client ("lua" inside a script),
    and its arguments exactly as sent."""

    time: float
    client: str
    args: tuple[bytes, ...]

    @classmethod
    def parse(cls, raw: bytes) -> MonitorLine:
        """`1700000000.123456 [0 127.0.0.1:50000] "SET" "k" "v"` (arguments quoted and
        escaped as Redis's sdscatrepr does)."""
        moment, rest = raw.split(b" ", 1)
        match = re.match(rb"\[\d+ (.*?)\] (.*)", rest, re.DOTALL)
        assert match, raw
        quoted = re.findall(rb'"((?:[^"\\]|\\.)*)"', match[2], re.DOTALL)
        return cls(float(moment), match[1].decode(), tuple(_unescape(arg) for arg in quoted))

    @property
    def name(self) -> str:
        """The command's ACL name: `hset`, or `xgroup|create` for a container's subcommand."""
        name = self.args[0].decode().lower()
        if name in CONTAINERS and len(self.args) > 1:
            return f"{name}|{self.args[1].decode().lower()}"
        return name


CONTAINERS = frozenset({"client", "cluster", "config", "object", "script", "xgroup", "xinfo"})
ESCAPES = {b"n": b"\n", b"r": b"\r", b"t": b"\t", b"a": b"\a", b"b": b"\b"}


def _unescape(quoted: bytes) -> bytes:
    def one(match: re.Match[bytes]) -> bytes:
        code = match[1]
        if code.startswith(b"x"):
            return bytes([int(code[1:], 16)])
        return ESCAPES.get(code, code)

    return re.sub(rb"\\(x[0-9a-fA-F]{2}|.)", one, quoted, flags=re.DOTALL)


@dataclass
class KeysTouched:
    """Keys a user named, and those of them a command declared it writes (the keys that
    need a `~` pattern rather than a read-only `%R~` one)."""

    named: set[str] = field(default_factory=set)
    written: set[str] = field(default_factory=set)


class CommandRecorder:
    """Which user sent which command on which keys, from MONITOR (every command the server
    executes, with the client's address) and CLIENT LIST polled meanwhile (address -> user).
    A command run inside a script is the script caller's: MONITOR shows it right after the
    caller's EVALSHA. Which arguments are keys, and which keys a command writes, the server
    says (COMMAND GETKEYSANDFLAGS), afterwards.

    A connection that opens and closes between two polls (a command-line run takes a few
    milliseconds) is attributed by time instead: each role's short-lived clients run inside
    an `acting(role)` window, and no two roles' windows overlap. Every other client (the
    workers', the administrator's) lives long enough for the poll to see it."""

    WRITE_FLAGS = frozenset({"RW", "OW", "RM"})

    def __init__(self, server: AclServer) -> None:
        self._server = server
        self._stop = threading.Event()
        self._raw: list[bytes] = []
        self._users: dict[str, str] = {}
        self._windows: list[tuple[str, float, float]] = []
        self._acting: str | None = None
        self._threads = [
            threading.Thread(target=self._monitor, daemon=True),
            threading.Thread(target=self._poll, daemon=True),
        ]
        self._monitoring = threading.Event()

    def __enter__(self) -> CommandRecorder:
        for thread in self._threads:
            thread.start()
        if not self._monitoring.wait(timeout=10):
            raise TimeoutError("MONITOR did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        with self._server.admin() as admin:
            admin.ping()  # one more line, so the monitor thread sees the stop flag
        for thread in self._threads:
            thread.join(timeout=10)

    @contextlib.asynccontextmanager
    async def acting(self, role: str) -> AsyncIterator[None]:
        """Clients of `role` that the poll may miss run inside this window."""
        if self._acting is not None:
            raise RuntimeError(f"{role} cannot act while {self._acting} does")
        self._acting, started = role, time.time()
        try:
            yield
        finally:
            self._acting = None
            self._windows.append((role, started, time.time()))

    def _monitor(self) -> None:
        with self._server.admin() as admin, admin.monitor() as monitor:
            self._monitoring.set()
            while True:
                self._raw.append(monitor.connection.read_response())
                if self._stop.is_set():
                    return

    def _poll(self) -> None:
        with self._server.admin(decode_responses=True) as admin:
            while not self._stop.is_set():
                for client in admin.client_list():
                    if client["user"] != "default":  # not yet authenticated
                        self._users[client["addr"]] = client["user"]
                time.sleep(0.002)

    def lines_by_user(self) -> list[tuple[str, MonitorLine]]:
        attributed = []
        caller = None
        for line in map(MonitorLine.parse, self._raw):
            if line.client == "lua":
                user = caller
            else:
                user = caller = self._users.get(line.client) or self._acting_at(line.time)
            if user is not None:
                attributed.append((user, line))
        return attributed

    def commands_by_user(self) -> dict[str, set[str]]:
        by_user: dict[str, set[str]] = {}
        for user, line in self.lines_by_user():
            by_user.setdefault(user, set()).add(line.name)
        return by_user

    def keys_by_user(self) -> dict[str, KeysTouched]:
        """Asked of the server once per distinct command line (a command naming no key is
        answered with an error, and names none)."""
        distinct = sorted({(user, line.args) for user, line in self.lines_by_user()})
        by_user: dict[str, KeysTouched] = {}
        with self._server.admin() as admin:
            pipe = admin.pipeline(transaction=False)
            for _, args in distinct:
                pipe.execute_command("COMMAND GETKEYSANDFLAGS", *args)
            replies = pipe.execute(raise_on_error=False)
        for (user, _), reply in zip(distinct, replies, strict=True):
            touched = by_user.setdefault(user, KeysTouched())
            for key, flags in [] if isinstance(reply, Exception) else reply:
                name = as_text(key)
                touched.named.add(name)
                if self.WRITE_FLAGS & {as_text(flag) for flag in flags}:
                    touched.written.add(name)
        return by_user

    def _acting_at(self, moment: float) -> str | None:
        roles = {role for role, start, end in self._windows if start <= moment <= end}
        return roles.pop() if len(roles) == 1 else None


Notice = tuple[str, datetime, int]
"""One notice of one alert: its fingerprint, episode start and number (an `Alert`'s identity,
as both sinks' bodies carry it)."""


def notice_of(alert: Alert) -> Notice:
    return (alert.fingerprint, alert.starts_at, alert.notification)


def posted_notices(body: Any) -> list[Notice]:
    """The notices in a webhook body (`alerts`, with a fingerprint each) or an Alertmanager
    post (a list of alerts, the fingerprint among their annotations)."""
    if isinstance(body, dict):
        return [
            (a["fingerprint"], _moment(a["startsAt"]), int(a["annotations"]["notification"]))
            for a in body["alerts"]
        ]
    return [
        (
            a["annotations"]["fingerprint"],
            _moment(a["startsAt"]),
            int(a["annotations"]["notification"]),
        )
        for a in body
    ]


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text)


@dataclass
class Received:
    """What one sink's receiver refused (down) and the notices of the POSTs it accepted."""

    refused: int = 0
    accepted: list[Notice] = field(default_factory=list)

    def copy(self) -> Received:
        return Received(self.refused, list(self.accepted))


@dataclass
class PathReport:
    cli: list[CliRun] = field(default_factory=list)
    api_status: dict[str, int] = field(default_factory=dict)
    api_metrics: str = ""
    worker_metrics: dict[str, str] = field(default_factory=dict)
    worker_ready: dict[str, int] = field(default_factory=dict)
    exporter_metrics: dict[str, str] = field(default_factory=dict)  # each worker role, designated
    alerts_in_stream: int = 0
    subscriber_received: int = 0
    subscriber_pending_after_ack: int = -1
    webhook: Received = field(default_factory=Received)
    alertmanager: Received = field(default_factory=Received)
    stream_alerts: list[Alert] = field(default_factory=list)  # the alerts stream, in order
    scaler_groups: dict[str, list[str]] = field(default_factory=dict)
    letters_by_reason: dict[str, int] = field(default_factory=dict)
    undelivered_by_sink: dict[str, int] = field(default_factory=dict)  # delivery_failed letters
    replayed: dict[str, dict[str, Any]] = field(default_factory=dict)  # --json, per command
    quarantined_before_release: list[str] = field(default_factory=list)
    quarantined_at_end: int = -1
    refit_attempts_at_end: int = -1
    retraction: dict[str, Any] = field(default_factory=dict)
    stray_history: list[dict[str, Any]] = field(default_factory=list)
    dead_letters_after_purge: int = -1
    history_rows: int = 0
    tailed_alerts: int = 0
    plots: list[str] = field(default_factory=list)
    commands_by_user: dict[str, set[str]] = field(default_factory=dict)
    keys_by_user: dict[str, KeysTouched] = field(default_factory=dict)

    def failed_cli(self) -> list[CliRun]:
        return [run for run in self.cli if run.returncode != 0]

    @property
    def stream_notices(self) -> list[Notice]:
        return [notice_of(alert) for alert in self.stream_alerts]

    def newest_notices(self) -> list[Alert]:
        """Each alert's newest notice in the alerts stream."""
        newest: dict[str, Alert] = {}
        for alert in self.stream_alerts:
            seen = newest.get(alert.fingerprint)
            if seen is None or notice_of(alert)[1:] > notice_of(seen)[1:]:
                newest[alert.fingerprint] = alert
        return list(newest.values())


class WebhookReceiver:
    """An HTTP endpoint for both sinks of the alerts worker: the webhook (`/hook`, a body per
    alert group) and an Alertmanager (`/alertmanager/api/v2/alerts`, a list of alerts). It is
    down (503) until `recover()`, then accepts every POST; it counts refusals and keeps the
    notices of each accepted POST."""

    def __init__(self) -> None:
        self.webhook = Received()
        self.alertmanager = Received()
        self._up = threading.Event()
        self._lock = threading.Lock()

    def recover(self) -> None:
        self._up.set()

    @contextlib.contextmanager
    def serving(self) -> Iterator[str]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))))
                with receiver._lock:
                    received = receiver.webhook if self.path == "/hook" else receiver.alertmanager
                    if receiver._up.is_set():
                        received.accepted.extend(posted_notices(body))
                        status = 200
                    else:
                        received.refused += 1
                        status = 503
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}"
        finally:
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)


def worker_settings(server: AclServer, kind: Service, receiver_url: str) -> WorkerSettings:
    values: dict[str, Any] = {
        "redis_url": server.url,
        "redis_username": kind.value,
        "redis_password": server.passwords[kind.value],
        "namespace": NAMESPACE,
        "services": [kind.value],
        "claim_idle_ms": 500,
        "coalesce_ms": 20,
        "block_ms": 50,
        "metrics_port": free_port(),
        "max_history_quarters": MAX_HISTORY_QUARTERS,
    }
    if kind is Service.ALERTS:
        values |= {
            "webhook_url": f"{receiver_url}/hook",
            "webhook_secret": "acl-test-webhook-secret",
            "alertmanager_url": f"{receiver_url}/alertmanager",
            "alertmanager_repost_interval_s": 0.5,
            "webhook_max_attempts": 1,  # straight to the redelivery schedule (both sinks)
            "webhook_timeout_s": 5,
            "webhook_retry_horizon_s": WEBHOOK_HORIZON_S,
            "webhook_retry_base_s": 0.1,
            "webhook_retry_max_delay_s": 0.3,
        }
    return WorkerSettings.model_validate(client_under_test() | values)


async def run_cli(server: AclServer, role: str, *args: str, report: PathReport) -> CliRun:
    env = {**os.environ, **server.role_env(role)}
    command = [sys.executable, "-m", "services.cli", *args]
    result = await asyncio.to_thread(
        subprocess.run, command, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    run = CliRun(role, args, result.returncode, result.stdout + result.stderr)
    report.cli.append(run)
    return run


async def wait_until_idle(admin: aioredis.Redis, streams: Streams) -> None:
    """Nothing undelivered or unacknowledged in any group, no refit due, no notice waiting
    for redelivery to either sink: seen twice."""
    names = all_streams(streams)
    dirty = streams.key("{forecast}", "dirty")
    redelivery = [streams.key(tag, "due") for tag in ("{webhook}", "{alertmanager}")]
    deadline = time.monotonic() + IDLE_TIMEOUT_S
    calm = 0
    while calm < 2:
        if time.monotonic() > deadline:
            raise TimeoutError(f"the pipeline did not go idle within {IDLE_TIMEOUT_S}s")
        idle = (
            await backlog(admin, names) == 0
            and await admin.zcard(dirty) == 0
            and all([await admin.zcard(schedule) == 0 for schedule in redelivery])
        )
        calm = calm + 1 if idle else 0
        await asyncio.sleep(0.2 if idle else 0.05)


async def run_full_path(server: AclServer, workdir: Path) -> PathReport:
    report = PathReport()
    streams = Streams(NAMESPACE)
    receiver = WebhookReceiver()
    admin = aioredis.Redis(
        port=server.port, username="gp-test-admin", password=server.admin_password
    )
    try:
        with receiver.serving() as receiver_url, CommandRecorder(server) as recorder:
            async with contextlib.AsyncExitStack() as stack:
                await abandon_an_entry(server, admin, streams)
                workers = await start_workers(server, receiver_url, stack)
                async with recorder.acting("publisher"):
                    await publish_as_publisher(server, workdir, report)
                await wait_until_idle(admin, streams)  # every notice so far: delivery_failed
                receiver.recover()
                async with recorder.acting("operator"):
                    await operate_as_operator(server, admin, streams, report)
                await wait_until_idle(admin, streams)
                await scrape_workers(workers, report)
                for kind in Service:
                    async with recorder.acting(kind.value):
                        await scrape_as_designated_exporter(server, kind, receiver_url, report)
                async with recorder.acting("api"):
                    await read_as_api(server, workdir, report)
                async with recorder.acting("subscriber"):
                    await subscribe_as_subscriber(server, streams, report)
                async with recorder.acting("scaler"):
                    await scale_as_scaler(server, streams, report)
            report.webhook = receiver.webhook.copy()
            report.alertmanager = receiver.alertmanager.copy()
        report.commands_by_user = recorder.commands_by_user()
        report.keys_by_user = recorder.keys_by_user()
        report.alerts_in_stream = int(await admin.xlen(streams.alerts))
        entries: Any = await admin.xrange(streams.alerts)
        report.stream_alerts = [
            Alert.model_validate_json(entry_body(fields)) for _, fields in entries
        ]
    finally:
        await admin.aclose()
    return report


async def start_workers(
    server: AclServer, receiver_url: str, stack: contextlib.AsyncExitStack
) -> dict[str, Workers]:
    started = {}
    for kind in Service:
        workers = build_workers(worker_settings(server, kind, receiver_url))
        stack.push_async_callback(workers.redis.aclose)
        await stack.enter_async_context(running(workers))
        started[kind.value] = workers
    return started


async def publish_as_publisher(server: AclServer, workdir: Path, report: PathReport) -> None:
    history, guidance = DATA / "qfin_quarterly.csv", DATA / "qfin_guidance.csv"
    await run_cli(
        server,
        "publisher",
        *("backfill", "--history", str(history), "--guidance", str(guidance)),
        *("--company", COMPANY, "--until", UNTIL),
        report=report,
    )
    lines = workdir / "events.jsonl"
    said_twice = [guidance_event("acl-test-guidance-a"), guidance_event("acl-test-guidance-b")]
    conflicting = guidance_event("acl-test-guidance-a", high="1250")  # the first id, reused
    stray = [stray_event(period) for period in (*STRAY_QUARTERS, STRAY_PERIOD)]
    lines.write_text(
        "".join(
            json.dumps({"stream": stream, "event": event}) + "\n"
            for stream, event in (
                *(("guidance", e) for e in [*said_twice, conflicting]),
                *(("metrics", e) for e in stray),
            )
        )
    )
    await run_cli(server, "publisher", "publish", str(lines), report=report)
    async with as_role(server, "publisher") as publisher:
        await publisher.xadd(Streams(NAMESPACE).metrics, MALFORMED)  # type: ignore[arg-type]


def as_role(server: AclServer, role: str) -> aioredis.Redis:
    return aioredis.Redis(port=server.port, username=role, password=server.passwords[role])


def guidance_event(event_id: str, *, high: str = "1230") -> dict[str, Any]:
    """The same statement under two ids (a producer that retried with a fresh id)."""
    return {
        "company": COMPANY,
        "metric": "net_income",
        "period": "2024Q2",
        "basis": "gaap",
        "low": "1170",
        "high": high,
        "currency": "CNY",
        "scale": "millions",
        "issued_in_period": UNTIL,
        "occurred_at": "2024-05-20T09:00:00Z",
        "event_id": event_id,
    }


def stray_event(period: str) -> dict[str, Any]:
    """A second company's loan volume; one period decades before the others."""
    return {
        "company": STRAY,
        "metric": STRAY_METRIC,
        "period": period,
        "value": "1000",
        "unit": "money",
        "currency": "USD",
        "scale": "millions",
        "occurred_at": "2024-05-20T09:00:00Z",
        "event_id": f"acl-test-{STRAY.lower()}-{period}",
    }


def loan_volume_event() -> MetricReported:
    return MetricReported(
        company=COMPANY,
        metric="loan_volume",
        period="2019Q1",
        value=Decimal("41202"),
        unit=Unit.MONEY,
        currency="CNY",
        scale=Scale.MILLIONS,
        occurred_at=datetime(2019, 5, 20, 9, tzinfo=UTC),
        event_id="acl-test-abandoned-loan-volume",
    )


async def abandon_an_entry(server: AclServer, admin: aioredis.Redis, streams: Streams) -> None:
    """A consumer of ingest's group took an entry and died: ingest must claim and retry it."""
    await admin.xgroup_create(streams.metrics, Groups.INGEST, id="0", mkstream=True)
    async with as_role(server, "publisher") as publisher:
        await publisher.xadd(streams.metrics, entry_fields(loan_volume_event()))  # type: ignore[arg-type]
    taken: Any = await admin.xreadgroup(Groups.INGEST, "died", {streams.metrics: ">"}, count=1)
    assert len(taken[0][1]) == 1


async def scrape_workers(workers: dict[str, Workers], report: PathReport) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        for kind, running_workers in workers.items():
            port = running_workers.settings.metrics_port
            response = await client.get(f"http://127.0.0.1:{port}/metrics")
            report.worker_metrics[kind] = response.text
            ready = await client.get(f"http://127.0.0.1:{port}/ready")
            report.worker_ready[kind] = ready.status_code


async def scrape_as_designated_exporter(
    server: AclServer, kind: Service, receiver_url: str, report: PathReport
) -> None:
    """The Redis-derived gauges come from one process, the API by default; any worker can be
    the one instead (GUIDEPOST_STREAM_METRICS). Its exporter, as that worker would serve it,
    scraped once under the worker's role: the streams, groups and refit ledger it reads."""
    settings = worker_settings(server, kind, receiver_url).model_copy(
        update={"stream_metrics": True}
    )
    assert settings.metrics_port is not None
    exporter = serve_metrics(
        create_metrics(),
        port=settings.metrics_port,
        settings=settings,
        streams=settings.streams(),
        host="127.0.0.1",
        redis_gauges=settings.stream_metrics,
    )
    try:
        async with httpx.AsyncClient(timeout=10) as client:
            response = await client.get(f"http://127.0.0.1:{exporter.port}/metrics")
        report.exporter_metrics[kind.value] = response.text
    finally:
        await asyncio.to_thread(exporter.close)


async def read_as_api(server: AclServer, workdir: Path, report: PathReport) -> None:
    settings = ApiSettings.model_validate(
        {
            "redis_url": server.url,
            "redis_username": "api",
            "redis_password": server.passwords["api"],
            "namespace": NAMESPACE,
        }
    )
    async with api_client(settings) as client:
        for path in API_PATHS:
            response = await client.get(path)
            report.api_status[path] = response.status_code
            if path == "/metrics":
                report.api_metrics = response.text
    plots = workdir / "plots"
    await run_cli(server, "api", "plot", "--company", COMPANY, "--out", str(plots), report=report)
    report.plots = sorted(path.name for path in plots.glob("*.png"))


async def subscribe_as_subscriber(server: AclServer, streams: Streams, report: PathReport) -> None:
    """What deploy/README.md shows a subscriber: its own group from the stream's start."""
    async with as_role(server, "subscriber") as subscriber:
        await subscriber.xgroup_create(streams.alerts, SUBSCRIBER_GROUP, id="0")
        while True:
            read: Any = await subscriber.xreadgroup(
                SUBSCRIBER_GROUP, "reader-1", {streams.alerts: ">"}, count=100, block=100
            )
            if not read:
                break
            ids = [entry_id for _stream, entries in read for entry_id, _fields in entries]
            report.subscriber_received += len(ids)
            await subscriber.xack(streams.alerts, SUBSCRIBER_GROUP, *ids)
        summary: Any = await subscriber.xpending(streams.alerts, SUBSCRIBER_GROUP)
        report.subscriber_pending_after_ack = int(summary["pending"])
        # a subscriber that restarts takes over what a dead reader of its group left pending
        await subscriber.xautoclaim(streams.alerts, SUBSCRIBER_GROUP, "reader-2", min_idle_time=0)


async def scale_as_scaler(server: AclServer, streams: Streams, report: PathReport) -> None:
    """KEDA's redis-streams scaler: a group's lag (XINFO GROUPS), its pending count
    (XPENDING), a stream's length (XLEN), for every stream a worker consumes."""
    consumed = (*streams.inputs, streams.history, streams.forecasts, streams.signals)
    async with as_role(server, "scaler") as scaler:
        for stream in consumed:
            groups: Any = await scaler.xinfo_groups(stream)
            names = [as_text(group["name"]) for group in groups]
            for name in names:
                await scaler.xpending(stream, name)
            await scaler.xlen(stream)
            report.scaler_groups[stream] = sorted(names)


async def operate_as_operator(
    server: AclServer, admin: aioredis.Redis, streams: Streams, report: PathReport
) -> None:
    async def operator(*args: str) -> CliRun:
        return await run_cli(server, "operator", *args, report=report)

    await handle_dead_letters(operator, admin, streams, report)
    added = await operator(
        "silence",
        "add",
        "--match",
        f"company={COMPANY}",
        "--duration",
        "1h",
        "--comment",
        "ACL test",
    )
    silence_id = added.output.split()[1] if added.returncode == 0 else "none"
    _listed, history, stray, tail = await asyncio.gather(
        operator("silence", "list", "--json"),
        operator("history", "--company", COMPANY, "--json"),
        operator("history", "--company", STRAY, "--period", STRAY_PERIOD, "--json"),
        operator("alerts", "tail", "--from-beginning", "--count", "1", "--json", "--timeout", "10"),
    )
    await operator("silence", "expire", silence_id)
    report.history_rows = len(json.loads(history.output)) if history.returncode == 0 else 0
    report.stray_history = json.loads(stray.output) if stray.returncode == 0 else []
    report.tailed_alerts = len(tail.output.splitlines()) if tail.returncode == 0 else 0
    later = (datetime.now(UTC) + timedelta(seconds=5)).strftime("%Y-%m-%dT%H:%M:%S")
    await operator("dlq", "purge", "--before", later)
    report.dead_letters_after_purge = int(await admin.xlen(streams.dead_letters))


async def handle_dead_letters(
    operator: Any, admin: aioredis.Redis, streams: Streams, report: PathReport
) -> None:
    """Every kind of dead letter the path made, each handled as deploy/README.md says: the
    malformed entry replayed (and dead-lettered again), the stray fact retracted and the
    quarantined refit rerun, the notices neither sink took resent."""
    letters = json.loads((await operator("dlq", "list", "--json")).output or "[]")
    for letter in letters:
        report.letters_by_reason[letter["reason"]] = (
            report.letters_by_reason.get(letter["reason"], 0) + 1
        )
        if letter["reason"] == "delivery_failed":
            sink = letter["group"]
            report.undelivered_by_sink[sink] = report.undelivered_by_sink.get(sink, 0) + 1
    malformed = [letter["id"] for letter in letters if letter["reason"] == "invalid"]
    if malformed:
        replayed = await operator("dlq", "replay", "--id", malformed[0], "--json")
        report.replayed["invalid"] = _json_or_empty(replayed)
    quarantine = streams.key("{forecast}", "quarantine")
    report.quarantined_before_release = sorted(as_text(c) for c in await admin.hkeys(quarantine))
    retracted = await operator(
        *("history", "retract", "--company", STRAY, "--metric", STRAY_METRIC),
        *("--period", STRAY_PERIOD, "--json"),
    )
    report.retraction = _json_or_empty(retracted)
    for reason in ("refit_failed", "delivery_failed"):
        replayed = await operator("dlq", "replay", "--reason", reason, "--json")
        report.replayed[reason] = _json_or_empty(replayed)
    await wait_until_idle(admin, streams)
    report.quarantined_at_end = int(await admin.hlen(quarantine))
    report.refit_attempts_at_end = int(await admin.hlen(streams.key("{forecast}", "attempts")))


def _json_or_empty(run: CliRun) -> dict[str, Any]:
    if run.returncode != 0:
        return {}
    loaded: dict[str, Any] = json.loads(run.output)
    return loaded
