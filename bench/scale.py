"""Ingest throughput with 1, 2 and 4 `guidepost run --services ingest` processes in one
consumer group, on a private Redis (same load each time, a fresh namespace each run).

Time is measured from the first XADD of the burst (workers already up and subscribed) until
the group has nothing pending or undelivered.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from typing import Any

import redis

from bench.common import arguments, emit, log, operational_bodies
from schemas.streams import DATA_FIELD, Streams
from services.common.embedded import EmbeddedRedis


def start(url: str, namespace: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "GUIDEPOST_REDIS_URL": url,
        "GUIDEPOST_NAMESPACE": namespace,
        "GUIDEPOST_SERVICES": "ingest",
        "GUIDEPOST_LOG_LEVEL": "ERROR",
    }
    command = [sys.executable, "-m", "services.cli", "run"]
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait(condition: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise TimeoutError(what)


def drained(client: redis.Redis, stream: str) -> bool:
    groups: Any = client.xinfo_groups(stream)
    return bool(groups) and all(int(g["pending"]) == 0 and not g.get("lag") for g in groups)


def groups(client: redis.Redis, stream: str) -> int:
    try:
        return len(client.xinfo_groups(stream))
    except redis.ResponseError:
        return 0


def run(url: str, processes: int, bodies: list[str]) -> float:
    streams = Streams(f"bench-scale-{processes}")
    client = redis.Redis.from_url(url)
    workers = [start(url, streams.namespace) for _ in range(processes)]
    try:
        wait(lambda: groups(client, streams.metrics) > 0, 60, "workers up")
        time.sleep(3.0)  # the group exists once the first worker is up; let the others start
        started = time.perf_counter()
        pipe = client.pipeline(transaction=False)
        for index, body in enumerate(bodies, start=1):
            pipe.xadd(streams.metrics, {DATA_FIELD: body})
            if index % 2000 == 0:
                pipe.execute()
        pipe.execute()
        wait(lambda: drained(client, streams.metrics), 600, "burst drained")
        return time.perf_counter() - started
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.wait(timeout=20)
        client.close()


def main() -> None:
    args = arguments(__doc__ or "", events=60_000)
    bodies = list(operational_bodies(args.events, companies=1_000))
    result: dict[str, Any] = {"events": args.events}
    with EmbeddedRedis() as server:
        for processes in (1, 2, 4):
            log(f"{processes} worker process(es)")
            seconds = run(server.url, processes, bodies)
            result[f"eps_{processes}"] = round(args.events / seconds)
            result[f"seconds_{processes}"] = round(seconds, 2)
    result["speedup_2"] = round(result["eps_2"] / result["eps_1"], 2)
    result["speedup_4"] = round(result["eps_4"] / result["eps_1"], 2)
    emit(result, as_json=args.json)


if __name__ == "__main__":
    main()
