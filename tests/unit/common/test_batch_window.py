"""The batch window: how many batches of one stream a consumer handles at once."""

from __future__ import annotations

import asyncio
import logging

import pytest

from services.common.subscribe import BatchWindow

pytestmark = pytest.mark.unit


class Batch:
    """A batch whose handling finishes when the test releases it."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.release = asyncio.Event()
        self.done = False

    async def handle(self) -> None:
        self.started.set()
        await self.release.wait()
        self.done = True


async def test_a_window_of_one_finishes_each_batch_before_taking_the_next() -> None:
    window, batch = BatchWindow(1), Batch()
    batch.release.set()
    await window.handle(batch.handle())
    assert batch.done
    assert window.in_flight == 0


async def test_a_wider_window_takes_the_next_batch_while_earlier_ones_run() -> None:
    window = BatchWindow(3)
    batches = [Batch() for _ in range(4)]
    for batch in batches[:3]:
        await window.handle(batch.handle())  # returns at once: the batch runs on its own
    await asyncio.wait_for(asyncio.gather(*(b.started.wait() for b in batches[:3])), 5)
    assert window.in_flight == 3

    fourth = asyncio.create_task(window.handle(batches[3].handle()))
    await asyncio.sleep(0)
    assert not fourth.done(), "a fourth batch must wait for a free slot"

    batches[0].release.set()
    await asyncio.wait_for(fourth, 5)
    await asyncio.wait_for(batches[3].started.wait(), 5)
    for batch in batches[1:]:
        batch.release.set()
    await asyncio.wait_for(window.drain(), 5)
    assert all(batch.done for batch in batches)
    assert window.in_flight == 0


async def test_a_failed_batch_is_logged_and_frees_its_slot(
    caplog: pytest.LogCaptureFixture,
) -> None:
    window = BatchWindow(2)

    async def fail() -> None:
        raise ConnectionError("Redis went away")

    with caplog.at_level(logging.ERROR):
        await window.handle(fail())
        await window.drain()
    assert window.in_flight == 0
    assert "a batch failed before it was acknowledged" in caplog.text
    assert "Redis went away" in caplog.text
    follower = Batch()
    follower.release.set()
    await window.handle(follower.handle())
    await window.drain()
    assert follower.done


async def test_stopping_while_waiting_for_a_slot_leaves_the_batch_unstarted() -> None:
    window, waiting = BatchWindow(2), Batch()
    running = [Batch(), Batch()]
    for batch in running:
        await window.handle(batch.handle())
    stopped = asyncio.create_task(window.handle(waiting.handle()))
    await asyncio.sleep(0)
    stopped.cancel()
    with pytest.raises(asyncio.CancelledError):
        await stopped
    assert not waiting.started.is_set()
    for batch in running:
        batch.release.set()
    await asyncio.wait_for(window.drain(), 5)


async def test_a_short_read_is_finished_before_the_next_read_even_in_a_wide_window() -> None:
    window = BatchWindow(3)
    backlog, caught_up = Batch(), Batch()
    await window.handle(backlog.handle())  # a full read: runs on its own
    await asyncio.wait_for(backlog.started.wait(), 5)
    caught_up.release.set()

    await window.handle(caught_up.handle(), full=False)

    assert caught_up.done, "a short read's batch is handled before the next read"
    assert window.in_flight == 1  # the full one still runs
    backlog.release.set()
    await asyncio.wait_for(window.drain(), 5)
