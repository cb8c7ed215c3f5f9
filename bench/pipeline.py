"""Ingest throughput and event→alert latency, each against raw redis-py on the same Redis,
on both Redis clients (GUIDEPOST_REDIS_CLIENT): the multiplexed one's numbers under the plain
keys, the stock one's under the same keys prefixed `stock_`.

Throughput: operational-metric events through `guidepost run --services ingest` as deployed
(FastStream's batch subscriber reading 100 entries at a time; decode, validate, dead-letter;
dedupe and the atomic Lua write with its history update; ack), on a backlog loaded before the
worker starts, against raw XREADGROUP(100) + pydantic + XACK on the same backlog; `--trials`
alternating pairs, medians reported.

Latency: the workers run as deployed, one `guidepost run` process per worker kind (ingest,
guidance, alerts, forecast), as compose runs them; `--latency-trials` runs (3), medians
reported. A warm-up load records the original facts
and is drained through every group first. Then events are published at a fixed rate across
100 companies, each one restating a distinct fact, so each one yields exactly one alert
(ingest → signal → alerts → alert stream) while the guidance and forecast workers consume
every history update too. The target holds "when no full refit is due": the forecast worker
marks each restated company dirty, and its coalescing window (10 minutes) keeps the refits
out of the measured run (their cost is bench.forecast's). The baseline is the raw publish →
XREADGROUP latency at the same rate.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import redis
import redis.asyncio as aioredis

from bench.common import (
    CpuMeter,
    arguments,
    emit,
    log,
    metric_body,
    operational_bodies,
    percentile_ms,
)
from schemas.metrics import MetricReported
from schemas.streams import DATA_FIELD, Groups, Streams
from services.common.embedded import EmbeddedRedis
from services.common.settings import RedisClient, RedisSettings
from services.common.streams import backlog, ensure_group
from services.common.transport import create_redis

B_DATA = DATA_FIELD.encode()
LATENCY_COMPANIES = 100


async def load(client: aioredis.Redis, stream: str, bodies: list[str]) -> None:
    for start in range(0, len(bodies), 2000):
        async with client.pipeline(transaction=False) as pipe:
            for body in bodies[start : start + 2000]:
                pipe.xadd(stream, {DATA_FIELD: body})
            await pipe.execute()


async def guidepost_ingest(
    url: str, bodies: list[str], namespace: str, redis_pid: int, client_kind: RedisClient
) -> tuple[float, dict[str, int]]:
    """`guidepost run --services ingest` as deployed, on a backlog loaded before it starts;
    timed from its first read to the moment nothing is pending or undelivered. Also the CPU
    the worker and Redis spent per event meanwhile (µs)."""
    streams = Streams(namespace)
    client = aioredis.Redis.from_url(url)
    await ensure_group(client, streams.metrics, Groups.INGEST)
    await load(client, streams.metrics, bodies)
    worker = start_worker(url, streams.namespace, "ingest", client=client_kind)
    cpu = CpuMeter({"worker": worker.pid, "redis": redis_pid})
    try:
        started = await until(lambda: _group(client, streams.metrics), _reading, timeout_s=60)
        cpu.start()
        finished = await until(lambda: _group(client, streams.metrics), _drained, timeout_s=600)
        cpu_per_event = cpu.per_event(len(bodies))
    finally:
        worker.terminate()
        worker.wait(timeout=20)
        await client.aclose()
    return len(bodies) / (finished - started), cpu_per_event


async def _group(client: aioredis.Redis, stream: str) -> dict[str, Any]:
    groups: Any = await client.xinfo_groups(stream)
    return next(g for g in groups if g["name"].decode() == Groups.INGEST)


def _reading(group: dict[str, Any]) -> bool:
    return int(group["entries-read"] or 0) > 0


def _drained(group: dict[str, Any]) -> bool:
    return int(group["pending"]) == 0 and int(group["lag"]) == 0


async def until(
    probe: Callable[[], Awaitable[dict[str, Any]]],
    condition: Callable[[dict[str, Any]], bool],
    *,
    timeout_s: float,
    every_s: float = 0.02,
) -> float:
    """When `condition` first held of what `probe` returned (polled every `every_s`)."""
    deadline = time.perf_counter() + timeout_s
    while time.perf_counter() < deadline:
        if condition(await probe()):
            return time.perf_counter()
        await asyncio.sleep(every_s)
    raise TimeoutError(f"{condition.__name__} did not hold within {timeout_s} s")


async def raw_ingest(url: str, bodies: list[str], stream: str) -> float:
    client = aioredis.Redis.from_url(url)
    await ensure_group(client, stream, "raw")
    await load(client, stream, bodies)
    started = time.perf_counter()
    done = 0
    while done < len(bodies):
        response: Any = await client.xreadgroup(
            "raw", "bench", {stream: ">"}, count=100, block=1000
        )
        for _stream, entries in response:
            for _entry_id, fields in entries:
                MetricReported.model_validate_json(fields[B_DATA])
            await client.xack(stream, "raw", *[entry_id for entry_id, _ in entries])
            done += len(entries)
    elapsed = time.perf_counter() - started
    await client.aclose()
    return len(bodies) / elapsed


async def paced(
    url: str, stream: str, bodies: list[tuple[str, str]], rate: int, sent: dict[str, float]
) -> None:
    """XADD each body at `rate` per second, noting when each key was sent.

    On its own thread with a synchronous client: an asyncio XADD costs the load generator
    about four times the CPU, which on a 2-core machine it would take from the workers it
    measures (the same generator drives Guidepost and the raw baseline)."""
    await asyncio.to_thread(_paced, url, stream, bodies, rate, sent)


def _paced(
    url: str, stream: str, bodies: list[tuple[str, str]], rate: int, sent: dict[str, float]
) -> None:
    client = redis.Redis.from_url(url)
    started = time.perf_counter()
    try:
        for index, (key, body) in enumerate(bodies):
            delay = started + index / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            sent[key] = time.perf_counter()
            client.xadd(stream, {DATA_FIELD: body})
    finally:
        client.close()


async def read_alerts(
    client: aioredis.Redis, stream: str, expected: int, seen: dict[str, float], timeout_s: float
) -> None:
    last = "$"
    deadline = time.perf_counter() + timeout_s
    while len(seen) < expected and time.perf_counter() < deadline:
        response: Any = await client.xread({stream: last}, count=500, block=200)
        now = time.perf_counter()
        for _stream, entries in response:
            for entry_id, fields in entries:
                last = entry_id
                # the measuring side reads only the two fields it matches on: full validation
                # of every alert would take CPU from the workers it measures
                alert = json.loads(fields[B_DATA])
                seen.setdefault(f"{alert['company']}|{alert['period']}", now)


def start_worker(
    url: str, namespace: str, services: str, *, client: RedisClient, coalesce_ms: int = 0
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "GUIDEPOST_REDIS_CLIENT": client,
        "GUIDEPOST_REDIS_URL": url,
        "GUIDEPOST_NAMESPACE": namespace,
        "GUIDEPOST_COALESCE_MS": str(coalesce_ms),
        "GUIDEPOST_LOG_LEVEL": "ERROR",
    }
    command = [sys.executable, "-m", "services.cli", "run", "--services", services]
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def until_drained(client: aioredis.Redis, streams: Streams, timeout_s: float) -> None:
    """Until every group of every stream the workers consume has nothing left to do (the
    warm-up's downstream work too, so it does not compete with the measured events)."""
    consumed = (streams.metrics, streams.history, streams.forecasts, streams.signals)
    deadline = time.perf_counter() + timeout_s
    while time.perf_counter() < deadline:
        if await _all_have_groups(client, consumed) and await backlog(client, consumed) == 0:
            return
        await asyncio.sleep(0.1)
    raise TimeoutError("the warm-up load did not drain")


async def _all_have_groups(client: aioredis.Redis, streams: tuple[str, ...]) -> bool:
    for stream in streams:
        try:
            if not await client.xinfo_groups(stream):
                return False
        except aioredis.ResponseError:  # the stream does not exist yet
            return False
    return True


async def guidepost_latency(
    url: str, rate: int, seconds: int, redis_pid: int, namespace: str, client_kind: RedisClient
) -> tuple[list[float], dict[str, int]]:
    """Latencies, and the CPU each process spent per measured event (µs)."""
    streams = Streams(namespace)
    client = aioredis.Redis.from_url(url)
    count = rate * seconds
    days = count // LATENCY_COMPANIES
    originals = [
        metric_body(f"LT{c:03d}", day, 100 + day)
        for day in range(days)
        for c in range(LATENCY_COMPANIES)
    ]
    await load(client, streams.metrics, originals)
    # as deployed: compose runs each worker kind as its own service
    kinds = ("ingest", "guidance", "alerts", "forecast")
    # the forecast worker marks every restated company dirty; its coalescing window keeps
    # the refits out of the measured run (no full refit is due)
    workers = {
        kind: start_worker(
            url,
            streams.namespace,
            kind,
            client=client_kind,
            coalesce_ms=600_000 if kind == "forecast" else 0,
        )
        for kind in kinds
    }
    try:
        await until_drained(client, streams, timeout_s=120)
        restatements = []
        for day in range(days):
            for c in range(LATENCY_COMPANIES):
                body = metric_body(f"LT{c:03d}", day, 900 + day, restated=True)
                period = MetricReported.model_validate_json(body).period
                restatements.append((f"LT{c:03d}|{period}", body))
        sent: dict[str, float] = {}
        seen: dict[str, float] = {}
        reader = asyncio.create_task(
            read_alerts(client, streams.alerts, len(restatements), seen, seconds + 30)
        )
        await asyncio.sleep(0.2)
        pids = {kind: worker.pid for kind, worker in workers.items()}
        cpu = CpuMeter({**pids, "redis": redis_pid, "load_generator": os.getpid()})
        cpu.start()
        await paced(url, streams.metrics, restatements, rate, sent)
        await reader
        cpu_per_event = cpu.per_event(len(restatements))
    finally:
        for worker in workers.values():
            worker.terminate()
            worker.wait(timeout=20)
        await client.aclose()
    missing = len(sent) - len(seen)
    if missing:
        log(f"{missing} alerts did not arrive in time; their latency is counted as the timeout")
    latencies = [seen.get(key, time.perf_counter()) - at for key, at in sent.items()]
    return latencies, cpu_per_event


async def raw_latency(url: str, rate: int, seconds: int) -> list[float]:
    client = aioredis.Redis.from_url(url)
    reader_client = aioredis.Redis.from_url(url)
    stream = "bench-raw:latency"
    await ensure_group(client, stream, "raw")
    bodies = [(str(i), b) for i, b in enumerate(operational_bodies(rate * seconds, companies=100))]
    sent: dict[str, float] = {}
    received: dict[str, float] = {}

    async def consume() -> None:
        deadline = time.perf_counter() + seconds + 10
        while len(received) < len(bodies) and time.perf_counter() < deadline:
            response: Any = await reader_client.xreadgroup(
                "raw", "bench", {stream: ">"}, count=100, block=100
            )
            for _stream, entries in response:
                now = time.perf_counter()
                for _entry_id, fields in entries:
                    event = MetricReported.model_validate_json(fields[B_DATA])
                    received[event.event_id] = now
                await reader_client.xack(stream, "raw", *[e for e, _ in entries])

    ids = {key: MetricReported.model_validate_json(body).event_id for key, body in bodies}
    reader = asyncio.create_task(consume())
    await asyncio.sleep(0.1)
    await paced(url, stream, bodies, rate, sent)
    await reader
    await client.aclose()
    await reader_client.aclose()
    return [received[ids[key]] - at for key, at in sent.items() if ids[key] in received]


async def round_trip_cpu_us(
    url: str, count: int = 2_000, *, guidepost: RedisClient | None = None
) -> float:
    """CPU (µs, this process) of one awaited command on redis-py's asyncio client, or on the
    workers' client of that kind: what every read, write and ack of a small batch pays
    whatever it carries."""
    if guidepost is not None:
        settings = RedisSettings.model_validate({"redis_url": url, "redis_client": guidepost})
        client = create_redis(settings)
    else:
        client = aioredis.Redis.from_url(url)
    await client.ping()
    started = time.process_time()
    for _ in range(count):
        await client.ping()
    spent = time.process_time() - started
    await client.aclose()
    return round(spent / count * 1e6, 1)


CLIENTS = (RedisClient.MULTIPLEXED, RedisClient.STOCK)
Trials = dict[RedisClient, list[float]]


async def throughput(
    url: str, bodies: list[str], trials: int, redis_pid: int
) -> tuple[Trials, list[float], dict[RedisClient, dict[str, int]]]:
    """Alternating trials on fresh streams (a single short run of the raw loop moves by ±25%
    with whatever else the machine does); each client's ratio is the median of its trials'
    ratios to the raw run of the same trial. CPU per event is the last trial's."""
    guidepost: Trials = {client: [] for client in CLIENTS}
    raw: list[float] = []
    cpu: dict[RedisClient, dict[str, int]] = {}
    for trial in range(trials):
        log(f"ingest throughput, trial {trial + 1} of {trials}: raw, then {', '.join(CLIENTS)}")
        raw.append(await raw_ingest(url, bodies, f"bench-raw-{trial}:in:metrics"))
        for client in CLIENTS:
            namespace = f"bench-ingest-{client}-{trial}"
            eps, cpu[client] = await guidepost_ingest(url, bodies, namespace, redis_pid, client)
            guidepost[client].append(eps)
    return guidepost, raw, cpu


async def latency_trials(
    url: str, args: Any, redis_pid: int, client: RedisClient
) -> list[dict[str, Any]]:
    """A 2-core machine near saturation swings from run to run (a queue that forms stays a
    while): `--latency-trials` fresh runs, each on its own namespace; the medians are
    reported, and every trial."""
    trials = []
    for trial in range(args.latency_trials):
        log(f"latency, trial {trial + 1} of {args.latency_trials}: guidepost ({client})")
        namespace = f"bench-latency-{client}-{trial}"
        latencies, cpu_us = await guidepost_latency(
            url, args.rate, args.seconds, redis_pid, namespace, client
        )
        trials.append(
            {
                "p50_ms": percentile_ms(latencies, 50),
                "p99_ms": percentile_ms(latencies, 99),
                "events": len(latencies),
                "cpu_us_per_event": cpu_us,
            }
        )
    return trials


def client_results(
    eps: list[float],
    raw_trials: list[float],
    ingest_cpu: dict[str, int],
    trials: list[dict[str, Any]],
    round_trip_us: float,
) -> dict[str, Any]:
    """One client's numbers, under the keys the multiplexed client's have always had."""
    ratios = [g / r for g, r in zip(eps, raw_trials, strict=True)]
    return {
        "guidepost_eps": round(statistics.median(eps)),
        "ratio": round(statistics.median(ratios), 3),
        "ratio_trials": [round(ratio, 3) for ratio in ratios],
        "ingest_cpu_us_per_event": ingest_cpu,
        "latency_events": sum(trial["events"] for trial in trials),
        "p50_ms": round(statistics.median(trial["p50_ms"] for trial in trials), 3),
        "p99_ms": round(statistics.median(trial["p99_ms"] for trial in trials), 3),
        "latency_trials": trials,
        "cpu_us_per_event": trials[-1]["cpu_us_per_event"],
        "guidepost_round_trip_cpu_us": round_trip_us,
    }


async def main() -> None:
    args = arguments(
        __doc__ or "", events=50_000, rate=1_000, seconds=10, trials=3, latency_trials=3
    )
    bodies = list(operational_bodies(args.events, companies=1_000))
    with EmbeddedRedis() as server:
        assert server.process is not None
        redis_pid = server.process.pid
        eps, raw_trials, ingest_cpu = await throughput(server.url, bodies, args.trials, redis_pid)
        latency = {c: await latency_trials(server.url, args, redis_pid, c) for c in CLIENTS}
        log("latency: raw")
        raw = await raw_latency(server.url, args.rate, args.seconds)
        round_trip_us = await round_trip_cpu_us(server.url)
        own_round_trip_us = {c: await round_trip_cpu_us(server.url, guidepost=c) for c in CLIENTS}
    by_client = {
        c: client_results(eps[c], raw_trials, ingest_cpu[c], latency[c], own_round_trip_us[c])
        for c in CLIENTS
    }
    emit(
        {
            "events": args.events,
            "trials": args.trials,
            "raw_eps": round(statistics.median(raw_trials)),
            "rate_eps": args.rate,
            "latency_companies": LATENCY_COMPANIES,
            "raw_p50_ms": percentile_ms(raw, 50),
            "raw_p99_ms": percentile_ms(raw, 99),
            "round_trip_cpu_us": round_trip_us,
            **by_client[RedisClient.MULTIPLEXED],
            **{f"stock_{key}": value for key, value in by_client[RedisClient.STOCK].items()},
        },
        as_json=args.json,
    )


if __name__ == "__main__":
    asyncio.run(main())
