"""At-least-once consumption of one input stream with a retry cap and a dead-letter stream.

Entries arrive in batches on the main path and one by one on the claim path (entries another
consumer left pending). Each entry is decoded and validated; invalid ones are dead-lettered at
once. Valid events go to `apply`, which makes their effects durable and reports per event
whether it failed. Only entries whose effects are durable (or that were dead-lettered) are
acknowledged; a failed entry stays pending, is claimed again after an idle time, and after
`max_deliveries` attempts is dead-lettered with its last error.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import redis.asyncio as aioredis
from pydantic import ValidationError

from schemas.base import Event
from schemas.deadletter import DeadLetter, FailureReason
from schemas.streams import Streams
from services.common.metrics import NO_METRICS, ConsumptionMetrics
from services.common.streams import Acknowledgement, dead_letter, delivery_count
from services.common.wire import UndecodableEntryError, entry_body, printable_fields

log = logging.getLogger(__name__)

Apply = Callable[[Sequence[Event]], Awaitable[Sequence[BaseException | None]]]
Entry = tuple[bytes, dict[bytes, bytes]]


# all or nothing: it returns no failure only if its write acknowledged every entry with its
# effects, and acknowledged none if any failed
ApplyAcknowledging = Callable[
    [Sequence[Event], Acknowledgement], Awaitable[Sequence[BaseException | None]]
]


async def apply_each(
    events: Sequence[Event], handle: Callable[[Event], Awaitable[None]]
) -> list[BaseException | None]:
    """One event at a time; a failure stays with its own event (left pending, retried), the
    others go on."""
    outcomes: list[BaseException | None] = []
    for event in events:
        try:
            await handle(event)
        except Exception as error:
            outcomes.append(error)
        else:
            outcomes.append(None)
    return outcomes


@dataclass(frozen=True)
class Rejection:
    reason: FailureReason
    error: str
    field: str | None = None


def describe_validation_error(error: ValidationError) -> Rejection:
    """The first problem, naming its field: 'statement.net_income: Input should be ...'."""
    first = error.errors()[0]
    message = first["msg"].removeprefix("Value error, ")
    field = ".".join(str(part) for part in first["loc"]) or None
    if field is None and ": " in message:  # a whole-event rule names its field(s) first
        field = message.split(": ", 1)[0]
        text = message
    else:
        text = f"{field or 'event'}: {message}"
    count = error.error_count()
    more = f" (and {count - 1} more)" if count > 1 else ""
    return Rejection(FailureReason.INVALID, text + more, field)


@dataclass
class Consumption:
    """Consumes one stream for one group; `apply` owns the effects."""

    redis: aioredis.Redis
    streams: Streams
    stream: str
    group: str
    event_type: type[Event]
    apply: Apply
    max_deliveries: int
    max_payload_bytes: int
    dead_letter_max_length: int = 1_000_000
    metrics: ConsumptionMetrics = NO_METRICS
    linger_ms: int = 0  # after a read that came back short, wait this long before the next
    apply_acknowledging: ApplyAcknowledging | None = None  # used instead of `apply` when set

    @property
    def errors_key(self) -> str:
        return self.streams.key("errors", self.group)

    async def consume_batch(self, entries: Sequence[Entry]) -> None:
        await self._consume(entries, deliveries=1)

    async def consume_claimed(self, entry: Entry) -> None:
        entry_id = entry[0].decode()
        count = await delivery_count(self.redis, self.stream, self.group, entry_id)
        if count > self.max_deliveries:
            await self._give_up(entry, count)
            return
        await self._consume([entry], deliveries=count)

    async def _consume(self, entries: Sequence[Entry], *, deliveries: int) -> None:
        started = time.perf_counter()
        self.metrics.consumed(self.stream, self.group, len(entries))
        valid: list[tuple[bytes, Event]] = []
        rejected: list[bytes] = []
        for entry_id, fields in entries:
            outcome = self.decode(fields)
            if isinstance(outcome, Rejection):
                await self._reject(entry_id, fields, outcome, deliveries)
                rejected.append(entry_id)
            else:
                valid.append((entry_id, outcome))
        first_delivery = deliveries == 1
        results, acknowledged = await self._apply(valid, first_delivery=first_delivery)
        applied: list[bytes] = []
        for (entry_id, event), failure in zip(valid, results, strict=True):
            if failure is None:
                applied.append(entry_id)
            else:
                await self._remember_failure(entry_id, event, failure)
        unacknowledged = rejected if acknowledged else rejected + applied  # by the handler's write
        await self._ack(unacknowledged, retried=not first_delivery)
        self.metrics.handled(self.stream, self.group, time.perf_counter() - started)

    async def _apply(
        self, valid: list[tuple[bytes, Event]], *, first_delivery: bool
    ) -> tuple[Sequence[BaseException | None], bool]:
        """Each event's failure, and whether the handler acknowledged the entries itself. A
        retried entry may have a remembered error to forget as it is acknowledged, so only
        first deliveries let the handler acknowledge."""
        if not valid:
            return [], False
        events = [event for _, event in valid]
        if self.apply_acknowledging is None or not first_delivery:
            return await self.apply(events), False
        entry_ids = tuple(entry_id for entry_id, _ in valid)
        results = await self.apply_acknowledging(
            events, Acknowledgement(self.stream, self.group, entry_ids)
        )
        return results, all(failure is None for failure in results)

    def decode(self, fields: dict[bytes, bytes]) -> Event | Rejection:
        try:
            body = entry_body(fields)
        except UndecodableEntryError as error:
            return Rejection(FailureReason.UNDECODABLE, str(error), "__data__")
        if len(body) > self.max_payload_bytes:
            limit = self.max_payload_bytes
            return Rejection(
                FailureReason.OVERSIZED, f"payload: {len(body)} bytes exceeds the {limit}-byte cap"
            )
        try:
            return self.event_type.model_validate_json(body)
        except ValidationError as error:
            return describe_validation_error(error)

    async def _reject(
        self, entry_id: bytes, fields: dict[bytes, bytes], rejection: Rejection, deliveries: int
    ) -> None:
        letter = DeadLetter(
            source_stream=self.stream,
            entry_id=entry_id.decode(),
            group=self.group,
            payload=printable_fields(fields),
            reason=rejection.reason,
            error=rejection.error,
            field=rejection.field,
            delivery_count=deliveries,
        )
        await dead_letter(
            self.redis, self.streams.dead_letters, letter, max_length=self.dead_letter_max_length
        )
        self.metrics.dead_lettered(self.stream, self.group)
        log.warning("dead-lettered %s entry %s: %s", self.stream, letter.entry_id, rejection.error)

    async def _remember_failure(
        self, entry_id: bytes, event: Event, failure: BaseException
    ) -> None:
        self.metrics.failed(self.stream, self.group)
        message = f"{type(failure).__name__}: {failure}"
        await self.redis.hset(self.errors_key, entry_id, message)  # type: ignore[misc]
        log.error(
            "handling failed; the entry stays pending and will be retried",
            extra={"event_id": event.event_id, "company": event.company, "error": message},
        )

    async def _give_up(self, entry: Entry, count: int) -> None:
        entry_id, fields = entry
        last_error = await self.redis.hget(self.errors_key, entry_id)  # type: ignore[misc]
        error = last_error.decode() if isinstance(last_error, bytes) else "failed on every delivery"
        rejection = Rejection(FailureReason.HANDLER_FAILED, f"after {count - 1} attempts: {error}")
        await self._reject(entry_id, fields, rejection, count - 1)
        await self._ack([entry_id])

    async def _ack(self, entry_ids: Sequence[bytes], *, retried: bool = True) -> None:
        """Acknowledge; a retried entry may have a remembered error to forget too (a first
        delivery cannot). Not MULTI: the stream and the errors hash may sit on different
        cluster slots, and both commands are idempotent."""
        if not entry_ids:
            return
        if not retried:
            await self.redis.xack(self.stream, self.group, *entry_ids)
            return
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.xack(self.stream, self.group, *entry_ids)
            pipe.hdel(self.errors_key, *entry_ids)
            await pipe.execute()
