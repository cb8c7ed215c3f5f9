"""Helpers shared by the benchmarks: output, percentiles, memory, load generation."""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from schemas.registry import Unit

OPERATIONAL_METRIC = "loans_originated"


def arguments(description: str, **defaults: int) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--json", action="store_true", help="Print one JSON object only.")
    for name, value in defaults.items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=int, default=value)
    return parser.parse_args()


def emit(result: dict[str, Any], *, as_json: bool) -> None:
    result = {**result, "cores": os.cpu_count()}
    if as_json:
        print(json.dumps(result))
        return
    width = max(len(k) for k in result)
    for key, value in result.items():
        print(f"{key:<{width}}  {value}")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def percentile_ms(seconds: Sequence[float], q: float) -> float:
    return round(float(np.percentile(np.asarray(seconds) * 1000, q)), 3)


def peak_rss_mb() -> float:
    """Peak RSS of this process and of its waited-for children (Linux reports kB)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return round(max(own, children) / 1024, 1)


class CpuMeter:
    """CPU seconds each named process spends between `start` and `per_event` (user + system),
    reported in microseconds per event: where the time of a measured phase goes."""

    def __init__(self, pids: dict[str, int]) -> None:
        import psutil  # the bench extra

        self._processes = {name: psutil.Process(pid) for name, pid in pids.items()}
        self._start: dict[str, float] = {}

    def _used(self) -> dict[str, float]:
        times = {name: p.cpu_times() for name, p in self._processes.items()}
        return {name: t.user + t.system for name, t in times.items()}

    def start(self) -> None:
        self._start = self._used()

    def per_event(self, events: int) -> dict[str, int]:
        now = self._used()
        return {name: round((now[name] - self._start[name]) / events * 1e6) for name in self._start}


def metric_body(company: str, day: int, value: int, *, restated: bool = False) -> str:
    """A valid MetricReported as JSON, built without pydantic (fast for large loads)."""
    period = f"2024-{1 + day // 28:02d}-{1 + day % 28:02d}"
    seen = f"2024-{1 + day // 28:02d}-{1 + day % 28:02d}T{'12' if restated else '06'}:00:00Z"
    suffix = "r" if restated else "o"
    return json.dumps(
        {
            "event_id": f"{company}-{day}-{suffix}",
            "company": company,
            "occurred_at": seen,
            "metric": OPERATIONAL_METRIC,
            "period": period,
            "value": str(value),
            "unit": Unit.COUNT.value,
        }
    )


def operational_bodies(count: int, *, companies: int) -> Iterator[str]:
    for serial in range(count):
        yield metric_body(f"CO{serial % companies:04d}", serial // companies, 1000 + serial % 997)
