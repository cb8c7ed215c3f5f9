"""Redis killed and restarted (AOF, fsync always) mid-run: workers reconnect and the final
state equals a clean run's."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
import redis

from schemas.streams import Streams
from services.common.embedded import EmbeddedRedis
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


def run(
    server: EmbeddedRedis,
    log_dir: Path,
    namespace: str,
    load: Load,
    *,
    restart: bool,
) -> tuple[dict[str, dict[str, list[object]]], float, WorkerProcess]:
    client = redis.Redis.from_url(server.url)
    streams = Streams(namespace)
    xadd_all(client, streams.metrics, (e.model_dump_json() for e in load.events))
    recovered_s = 0.0
    with worker_pool() as pool:
        worker = start_worker(pool, log_dir, server.url, namespace)
        if restart:
            wait_for(
                lambda: client.xlen(streams.history) >= len(load.events) // 3,
                timeout_s=60,
                what="a third of the events recorded before the restart",
            )
            server.kill()
            time.sleep(0.5)  # the workers see the server gone, not a fast bounce
            server.start()
            restarted_at = time.monotonic()
            client = redis.Redis.from_url(server.url)
        wait_for(tolerant(settled(client, streams)), timeout_s=90, what=f"{namespace} draining")
        if restart:
            recovered_s = time.monotonic() - restarted_at
        assert worker.alive, worker.tail()
    dump = fact_dump(client, namespace)
    client.close()
    return dump, recovered_s, worker


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
    chaos, recovered_s, worker = run(durable_redis, log_dir, "gp-chaos-restart", load, restart=True)

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
        history_ids_reannounced=result.history_ids_repeated,
        alert_ids_repeated=result.alert_ids_repeated,
        time_to_recover_s=round(recovered_s, 2),
    )
    assert chaos == clean, (
        f"fact versions differ from a clean run's: {first_difference(clean, chaos)}"
    )
    assert (result.lost, result.wrong_value, result.duplicated) == (0, 0, 0)
    assert result.alert_ids_repeated == 0
    assert result.dead_lettered == 0, worker.tail()
