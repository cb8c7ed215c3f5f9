"""When the forecast worker refits, and what happens when a refit fails.

A history change marks its company (durably, in the store); the loop refits each marked
company after a quiet window and clears the mark only if no new change arrived meanwhile. A
crash mid-refit leaves the mark, so another worker refits it: nothing is lost.

An attempt is counted before it runs, so a refit that kills its worker (out of memory, say)
still counts: past the cap the company is quarantined, with a dead letter and an alert,
instead of crash-looping every worker, and the others keep flowing. A failure is retried
with exponential backoff; one retrying cannot help (a history spanning too many quarters)
quarantines at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence

from services.common.health import Backoff
from services.forecast.assemble import HistorySpanError
from services.forecast.events import quarantine_signal, refit_letter
from services.forecast.store import ForecastStore

log = logging.getLogger(__name__)
DUE_BATCH = 16  # companies taken per look at the queue
DEFAULT_REFIT_TIMEOUT_S = 300.0
Refit = Callable[[str], Awaitable[None]]


class RefitScheduler:
    def __init__(
        self,
        store: ForecastStore,
        *,
        refit: Refit,
        history_stream: str,
        coalesce_ms: int,
        max_failures: int = 3,
        refit_timeout_s: float = DEFAULT_REFIT_TIMEOUT_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._refit = refit
        self._history_stream = history_stream
        self._coalesce_s = coalesce_ms / 1000
        self._max_failures = max_failures
        self._timeout_s = refit_timeout_s
        self._clock = clock
        self._wake = asyncio.Event()
        self._next_check = 0.0  # when the loop looks at the queue next (epoch s)
        self.loop_health = Backoff("the refit loop", logger=log)

    async def mark_all(self, companies: Sequence[str]) -> None:
        """Durably note that each company needs a refit (its first mark sets the clock)."""
        await self._store.mark_all(companies, at=self._clock())
        if self._clock() + self._coalesce_s < self._next_check:
            self._wake.set()  # due before the loop would look again; else waking is wasted work

    async def run(self, stop: asyncio.Event, *, poll_s: float = 0.05) -> None:
        """Refit due companies until `stop`. Failing (Redis away, say), the loop backs off
        exponentially and logs once when it starts failing and once when it recovers."""
        while not stop.is_set():
            try:
                if not await self.refit_due():
                    await self._sleep_until_due(stop, poll_s)
            except Exception as error:  # the loop must outlive it
                await wait(stop, self.loop_health.failed(error))
            else:
                self.loop_health.succeeded()

    async def _sleep_until_due(self, stop: asyncio.Event, poll_s: float) -> None:
        """Until the earliest mark is due, a new mark arrives, or `poll_s` (other workers'
        marks, and `stop`, are noticed at least that often)."""
        delay = await self._delay(poll_s)
        if stop.is_set() or delay <= 0:
            return
        self._wake.clear()
        self._next_check = self._clock() + delay
        await wait(self._wake, delay)
        self._next_check = 0.0  # checking now: marks arriving meanwhile need no wake

    async def _delay(self, poll_s: float) -> float:
        earliest = await self._store.earliest_mark()
        if earliest is None:
            return poll_s
        return min(poll_s, max(earliest + self._coalesce_s - self._clock(), 0.0))

    async def refit_due(self) -> int:
        """Refit the companies due now (at most `DUE_BATCH`); how many were due."""
        due = await self._store.due(before=self._clock() - self._coalesce_s, limit=DUE_BATCH)
        quarantined = await self._store.quarantined(due)
        for company in due:
            if company in quarantined:  # new facts wait for the operator's release
                await self._store.drop_mark(company)
            else:
                await self._refit_marked(company)
        return len(due)

    async def _refit_marked(self, company: str) -> None:
        generation = await self._store.generation(company)
        if await self._refit_guarded(company):
            await self._store.clear_if_unchanged(company, generation)

    async def _refit_guarded(self, company: str) -> bool:
        """Refit, the attempt counted before it runs. True when the mark may be cleared."""
        attempts = await self._store.count_attempt(company)
        if attempts > self._max_failures:  # earlier attempts never came back (killed)
            error = await self._store.last_error(company) or "the worker stopped during the refit"
            await self._quarantine(company, attempts - 1, error)
            return True
        try:
            await asyncio.wait_for(self._refit(company), timeout=self._timeout_s)
        except Exception as failure:
            return await self._failed(company, attempts, failure)
        await self._store.succeeded(company)
        return True

    async def _failed(self, company: str, attempts: int, failure: Exception) -> bool:
        """Retry later, or quarantine when out of attempts or retrying cannot help."""
        error = describe(failure, self._timeout_s)
        log.error(
            "refit of %s failed (attempt %d of %d): %s",
            company,
            attempts,
            self._max_failures,
            error,
            extra={"company": company},
        )
        if attempts >= self._max_failures or isinstance(failure, HistorySpanError):
            await self._quarantine(company, attempts, error)
            return True
        retry_at = self._clock() + min(60.0, 0.5 * 2**attempts)
        await self._store.failed(company, error, retry_at=retry_at)
        return False

    async def _quarantine(self, company: str, attempts: int, error: str) -> None:
        since = self._clock()
        if not await self._store.quarantine(company, attempts=attempts, error=error, since=since):
            return
        log.error(
            "quarantined %s after %d failed refit attempt(s): %s; the other companies go on",
            company,
            attempts,
            error,
            extra={"company": company},
        )
        letter = refit_letter(company, attempts, error, history_stream=self._history_stream)
        await self._store.dead_letter(letter)
        signal = quarantine_signal(company, attempts, error, letter.dead_letter_id)
        await self._store.publish("signals", [signal])


def describe(failure: BaseException, timeout_s: float) -> str:
    if isinstance(failure, TimeoutError):
        return f"TimeoutError: the refit took longer than {timeout_s:g}s"
    return f"{type(failure).__name__}: {failure}"


async def wait(event: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), timeout=seconds)
