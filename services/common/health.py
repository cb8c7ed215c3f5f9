"""Health of a worker process: its background loops and its view of Redis.

A loop that fails (Redis away, a bug) backs off exponentially and logs once when it starts
failing and once when it recovers, not a traceback every 50 ms. Readiness (`/ready` beside
`/metrics`) fails while Redis does not answer or a subscriber is stopped, so an orchestrator
stops routing to the worker and an operator sees why.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

log = logging.getLogger(__name__)


@dataclass
class Backoff:
    """Exponential backoff for one loop, logging once per change between ok and failing."""

    name: str
    initial_s: float = 0.05
    max_s: float = 5.0
    failures: int = 0
    logger: logging.Logger = field(default=log, repr=False)

    @property
    def failing(self) -> bool:
        return self.failures > 0

    def failed(self, error: BaseException) -> float:
        """Seconds to wait before the next try."""
        self.failures += 1
        delay: float = min(self.max_s, self.initial_s * 2.0 ** min(self.failures - 1, 30))
        if self.failures == 1:
            self.logger.error(
                "%s is failing (%s: %s); retrying with backoff up to %.0fs, quietly until it "
                "recovers",
                self.name,
                type(error).__name__,
                error,
                self.max_s,
                exc_info=error,
            )
        return delay

    def succeeded(self) -> None:
        if self.failures:
            self.logger.warning("%s recovered after %d failed attempt(s)", self.name, self.failures)
        self.failures = 0


Probe = Callable[[], Awaitable[object]]


@dataclass
class Readiness:
    """Whether the worker can do its work now: Redis answers and every subscriber runs.
    Read from the metrics server's thread; written by the event loop's watcher."""

    redis_ok: bool = False
    checked_at: float = 0.0
    reason: str = "not checked yet"
    subscribers_ok: Callable[[], bool] = field(default=lambda: True, repr=False)

    def state(self) -> tuple[bool, str]:
        if not self.redis_ok:
            return False, self.reason
        if not self.subscribers_ok():
            return False, "a subscriber is stopped (its stream or group is being recreated)"
        return True, "ready"

    async def watch(
        self, ping: Probe, stop: asyncio.Event, *, every_s: float = 1.0, timeout_s: float = 2.0
    ) -> None:
        """Ping Redis every `every_s` until `stop`; log once per change of state."""
        while not stop.is_set():
            try:
                await asyncio.wait_for(ping(), timeout=timeout_s)
            except Exception as error:
                self._set(False, f"Redis does not answer ({type(error).__name__}: {error})")
            else:
                self._set(True, "ready")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=every_s)

    def _set(self, ok: bool, reason: str) -> None:
        changed = self.checked_at == 0.0 or ok != self.redis_ok
        self.redis_ok, self.reason, self.checked_at = ok, reason, time.time()
        if changed and not ok:
            log.error("not ready: %s", reason)
        elif changed:
            log.info("ready: Redis answers")
