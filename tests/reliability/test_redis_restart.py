"""Redis killed and restarted (AOF, fsync always) mid-run: workers reconnect and the final
state equals a clean run's; while Redis is away a worker says it is not ready (its /ready
answers 503) and its loops log the outage once, not at every retry."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from schemas.streams import Streams
from services.common.embedded import EmbeddedRedis, free_port
from tests.reliability.support import (
    Load,
    WorkerProcess,
    audit,
    fact_dump,
    operational_load,
    report,
    settled,
    start_worker,
    wait_for,
    worker_pool,
    xadd_all,
)

pytestmark = pytest.mark.reliability


def tolerant(condition: Callable[[], bool]) -> Callable[[], bool]:
    """A condition that reads False while the server is down or loading its AOF."""

    def check() -> bool:
        try:
            return condition()
        except (redis.ConnectionError, redis.BusyLoadingError):
            return False

    return check


def readiness(port: int) -> int:
    """The worker's /ready status code (0 when it does not answer)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=2) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return 0


@dataclass
class Outage:
    recovered_s: float = 0.0
    ready_before: int = 0
    ready_during: int = 0
    ready_after: int = 0


def run(
    server: EmbeddedRedis,
    log_dir: Path,
    namespace: str,
    load: Load,
    *,
    restart: bool,
) -> tuple[dict[str, dict[str, list[object]]], Outage, WorkerProcess]:
    client = redis.Redis.from_url(server.url)
    streams = Streams(namespace)
    xadd_all(client, streams.metrics, (e.model_dump_json() for e in load.events))
    outage, port = Outage(), free_port()
    with worker_pool() as pool:
        worker = start_worker(pool, log_dir, server.url, namespace,
                              settings={"GUIDEPOST_METRICS_PORT": str(port)})  # fmt: skip
        if restart:
            wait_for(
                lambda: client.xlen(streams.history) >= len(load.events) // 3,
                timeout_s=60,
                what="a third of the events recorded before the restart",
            )
            wait_for(lambda: readiness(port) == 200, timeout_s=10, what="ready before")
            outage.ready_before = readiness(port)
            server.kill()
            # the workers see the server gone (not a fast bounce), and say they are not ready
            wait_for(lambda: readiness(port) == 503, timeout_s=10, what="not ready while down")
            outage.ready_during = readiness(port)
            server.start()
            restarted_at = time.monotonic()
            client = redis.Redis.from_url(server.url)
        wait_for(tolerant(settled(client, streams)), timeout_s=90, what=f"{namespace} draining")
        if restart:
            outage.recovered_s = time.monotonic() - restarted_at
            wait_for(lambda: readiness(port) == 200, timeout_s=10, what="ready again")
            outage.ready_after = readiness(port)
        assert worker.alive, worker.tail()
    dump = fact_dump(client, namespace)
    client.close()
    return dump, outage, worker


def first_difference(
    expected: dict[str, dict[str, list[object]]], found: dict[str, dict[str, list[object]]]
) -> str:
    for company in sorted(set(expected) | set(found)):
        facts, got = expected.get(company, {}), found.get(company, {})
        for name in sorted(set(facts) | set(got)):
            if facts.get(name) != got.get(name):
                return f"{company} {name}: clean {facts.get(name)} vs {got.get(name)}"
    return "none"


@pytest.mark.timeout(200)
def test_redis_restarted_mid_run_ends_in_the_same_state_as_a_clean_run(
    durable_redis: EmbeddedRedis,
    log_dir: Path,
    record_property: Callable[[str, object], None],
) -> None:
    load = operational_load(companies=40, days=60, restate_every=23)

    clean, _, _ = run(durable_redis, log_dir, "gp-chaos-clean", load, restart=False)
    chaos, outage, worker = run(durable_redis, log_dir, "gp-chaos-restart", load, restart=True)
    log = worker.log.read_text(errors="replace") if worker.log else ""

    client = redis.Redis.from_url(durable_redis.url)
    result = audit(client, Streams("gp-chaos-restart"), load)
    client.close()
    report(
        record_property,
        "redis_restart",
        events=result.events,
        lost=result.lost,
        duplicated=result.duplicated,
        dead_lettered=result.dead_lettered,
        history_ids_repeated=result.history_ids_repeated,
        alert_ids_repeated=result.alert_ids_repeated,
        time_to_recover_s=round(outage.recovered_s, 2),
        ready_before_during_after=[outage.ready_before, outage.ready_during, outage.ready_after],
        refit_loop_failure_logs=log.count("the refit loop is failing"),
        not_ready_logs=log.count("not ready: Redis does not answer"),
    )
    assert chaos == clean, (
        f"fact versions differ from a clean run's: {first_difference(clean, chaos)}"
    )
    assert (result.lost, result.wrong_value, result.duplicated) == (0, 0, 0)
    assert result.alert_ids_repeated == 0
    assert result.dead_lettered == 0, worker.tail()
    assert [outage.ready_before, outage.ready_during, outage.ready_after] == [200, 503, 200]
    assert log.count("the refit loop is failing") <= 1, "logged once per outage, not per retry"
    assert log.count("not ready: Redis does not answer") == 1
