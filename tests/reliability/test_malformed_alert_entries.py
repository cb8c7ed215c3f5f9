"""Anyone can XADD to the alerts and dead-letter streams: malformed entries between real alerts
(not JSON, JSON that is no alert, no event field at all, invalid UTF-8) once broke `alerts
tail`, the alerts API and every company page, and `dlq list`. Each reader now skips them, logs
them and shows the rest: the real `guidepost serve` and `guidepost` commands against the real
workers' output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import redis

from schemas.streams import Streams
from services.common.embedded import EmbeddedRedis, free_port
from tests.reliability.support import (
    report,
    settled,
    start_worker,
    wait_for,
    worker_pool,
    xadd_all,
)
from tests.support.pipeline import synthetic_company

pytestmark = pytest.mark.reliability
NAMESPACE = "gp-malformed-alerts"
NET_INCOME = [410, 425, 433, 452, 470, 468, 490, 505, 512, 530, 541, 560]
MALFORMED: list[dict[bytes, bytes]] = [
    {b"__data__": b"{not json"},
    {b"__data__": json.dumps({"company": "MA0", "kind": "band_check"}).encode()},
    {b"other": b"no event field"},
    {b"__data__": b"\xff\xfe\xfd"},
]


def env(redis_url: str, **extra: str) -> dict[str, str]:
    return {**os.environ, "GUIDEPOST_REDIS_URL": redis_url, "GUIDEPOST_NAMESPACE": NAMESPACE,
            "GUIDEPOST_LOG_LEVEL": "WARNING", **extra}  # fmt: skip


@contextmanager
def serving(redis_url: str, log: Path) -> Iterator[str]:
    port = free_port()
    with log.open("wb") as sink:
        server = subprocess.Popen(
            [sys.executable, "-m", "services.cli", "serve", "--port", str(port)],
            env=env(redis_url), stdout=sink, stderr=sink,
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: answers(f"{base}/ready"), timeout_s=60, what="guidepost serve")
        yield base
    finally:
        server.terminate()
        server.wait(timeout=10)


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def guidepost(redis_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "services.cli", *args],
        env=env(redis_url), capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


@pytest.mark.timeout(150)
def test_malformed_entries_in_the_alerts_and_dead_letter_streams_break_no_reader(
    private_redis: EmbeddedRedis,
    client: redis.Redis,
    log_dir: Path,
    record_property: Callable[[str, object], None],
) -> None:
    streams = Streams(NAMESPACE)
    events = [
        e
        for n in range(3)
        for e in synthetic_company(f"MA{n}", first="2021Q1", values=NET_INCOME, guided=(570, 590))
    ]
    with worker_pool() as pool:
        worker = start_worker(pool, log_dir, private_redis.url, NAMESPACE)
        for entry in MALFORMED[:2]:  # before the real alerts, and after them
            client.xadd(streams.alerts, entry)  # type: ignore[arg-type]
        metrics = [e for e in events if type(e).__name__ == "MetricReported"]
        guidance = [e for e in events if type(e).__name__ == "GuidanceIssued"]
        xadd_all(client, streams.metrics, (e.model_dump_json() for e in metrics))
        xadd_all(client, streams.guidance, (e.model_dump_json() for e in guidance))
        wait_for(settled(client, streams), timeout_s=60, what="the pipeline settled")
        for entry in MALFORMED[2:]:
            client.xadd(streams.alerts, entry)  # type: ignore[arg-type]
        for entry in MALFORMED:
            client.xadd(streams.dead_letters, entry)  # type: ignore[arg-type]
        alerts_in_stream = client.xlen(streams.alerts) - len(MALFORMED)

        with serving(private_redis.url, log_dir / "serve.log") as base:
            pages = {
                path: httpx.get(base + path, timeout=30)
                for path in ("/", "/companies/MA0", "/api/companies/MA0/alerts?limit=1000")
            }
        tail = guidepost(private_redis.url, "alerts", "tail", "--from-beginning", "--json",
                         "--count", str(alerts_in_stream), "--timeout", "20")  # fmt: skip
        listed = guidepost(private_redis.url, "dlq", "list", "--json")
        assert worker.alive, worker.tail()

    api_alerts = pages["/api/companies/MA0/alerts?limit=1000"].json()
    tailed = [json.loads(line) for line in tail.stdout.splitlines() if line.strip()]
    letters = json.loads(listed.stdout) if listed.returncode == 0 else []
    serve_log = (log_dir / "serve.log").read_text(errors="replace")
    report(
        record_property,
        "malformed_alert_entries",
        events=len(events),
        malformed_alert_entries=len(MALFORMED),
        malformed_dead_letter_entries=len(MALFORMED),
        page_statuses=sorted({r.status_code for r in pages.values()}),
        alerts_in_stream=alerts_in_stream,
        alerts_tailed=len(tailed),
        api_alerts_of_company=len(api_alerts),
        dead_letters_listed=len(letters),
        unreadable_reported_by_dlq_list="skipped 4 entries" in listed.stderr,
        api_skip_log_lines=serve_log.count("that hold no valid Alert"),
    )
    assert {r.status_code for r in pages.values()} == {200}
    assert alerts_in_stream > 0
    assert tail.returncode == 0, tail.stderr
    assert len(tailed) == alerts_in_stream
    assert "Traceback" not in tail.stderr + listed.stderr
    assert len(api_alerts) == sum(1 for a in tailed if a["company"] == "MA0") > 0
    assert listed.returncode == 0, listed.stderr
    assert "skipped 4 entries" in listed.stderr
    assert letters == [], "the malformed entries are no dead letters"
