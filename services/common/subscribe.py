"""Wiring a Consumption into FastStream: a batch reader and a claimer per stream (read
through the transport the settings select, `services.common.transport`)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

from faststream.middlewares import AckPolicy
from faststream.redis import RedisBroker

from services.common.consumer import Consumption
from services.common.settings import WorkerSettings
from services.common.transport import transport_for

CLAIMER_SUFFIX = "-claimer"
IN_MEMORY_ID = b"0-1"
log = logging.getLogger(__name__)


class BatchWindow:
    """Up to `size` batches of one stream handled at once, while the reads come back full.

    With one, the handler finishes a batch before FastStream reads the next. With more, the
    next batch is read and validated while Redis still runs the previous batch's writes, so
    Python and Redis work at the same time. Only for effects that are atomic per event and
    independent of arrival order (as if the batches came to two consumers of the group);
    every entry is still acknowledged only after its own effect is durable.

    A short read means the consumer has caught up: its batch is finished before the next read,
    so a steady flow is read in fewer, larger batches (overlapping small ones cost the ingest
    worker about a sixth more CPU per event at 1,000 events/s and lengthened the latency)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._slots: asyncio.Semaphore | None = None
        self._running: set[asyncio.Task[None]] = set()

    async def handle(self, work: Coroutine[Any, Any, None], *, full: bool = True) -> None:
        """`full`: the read that brought this batch came back with as many entries as asked."""
        if self.size == 1 or not full:
            await work
            return
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.size)
        try:
            await self._slots.acquire()
        except BaseException:  # stopped while waiting: the batch stays pending, unread
            work.close()
            raise
        task = asyncio.create_task(work)
        self._running.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        if self._slots is not None:
            self._slots.release()
        if not task.cancelled() and task.exception() is not None:
            # its entries stay pending; the claimer retries them after `claim_idle_ms`
            log.error("a batch failed before it was acknowledged", exc_info=task.exception())

    @property
    def in_flight(self) -> int:
        return len(self._running)

    async def drain(self) -> None:
        """Wait for the batches already taken (at shutdown, after the reads stopped)."""
        while self._running:
            await asyncio.gather(*list(self._running), return_exceptions=True)


def subscribe(
    broker: RedisBroker,
    consumption: Consumption,
    settings: WorkerSettings,
    *,
    claim_abandoned: bool = True,
    window: BatchWindow | None = None,
) -> None:
    """Main path: XREADGROUP batches (through `window`, if given). Recovery path: XAUTOCLAIM
    of entries idle too long.

    The group is created at the stream's start before the broker starts (see `ensure_group`),
    so FastStream's own `$` default never skips entries published before the worker.
    """
    stream, group, consumer = consumption.stream, consumption.group, settings.consumer_name
    batches = window or BatchWindow(1)
    linger_s, asked = consumption.linger_ms / 1000, settings.batch_size
    transport = transport_for(settings)

    @broker.subscriber(
        stream=transport.batches(
            stream,
            group=group,
            consumer=consumer,
            max_records=settings.batch_size,
            polling_interval=settings.block_ms,
        ),
        parser=transport.parser,
        decoder=transport.decoder,
        ack_policy=AckPolicy.MANUAL,
        title=f"{group}:{stream}",
    )
    async def read_batch(raw: Any) -> None:
        entries = list(zip(_ids(raw), raw["data"], strict=True))
        full = len(entries) >= asked
        await batches.handle(consumption.consume_batch(entries), full=full)
        if linger_s and not full:
            # a consumer that is not on a latency path trades a little delay for bigger
            # batches: every read and ack costs a round trip, whatever it carries
            await asyncio.sleep(linger_s)

    if not claim_abandoned:
        return

    @broker.subscriber(
        stream=transport.one_by_one(
            stream,
            group=group,
            consumer=consumer + CLAIMER_SUFFIX,
            min_idle_time=settings.claim_idle_ms,
            polling_interval=max(settings.claim_idle_ms // 4, 50),
        ),
        parser=transport.parser,
        decoder=transport.decoder,
        ack_policy=AckPolicy.MANUAL,
        title=f"{group}:{stream}:claimer",
    )
    async def read_claimed(raw: Any) -> None:
        await consumption.consume_claimed((raw["message_ids"][0], raw["data"]))


def _ids(raw: Any) -> list[bytes]:
    """Entry ids; FastStream's in-memory test broker delivers entries without any."""
    return list(raw["message_ids"]) or [IN_MEMORY_ID] * len(raw["data"])
