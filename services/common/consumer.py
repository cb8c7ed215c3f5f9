"""At-least-once consumption of one input stream with a retry cap and a dead-letter stream.

Entries arrive in batches on the main path and one by one on the claim path (entries another
consumer left pending). Each entry is decoded and validated; invalid ones are dead-lettered at
once. Valid events go to `apply`, which makes their effects durable and reports per event
whether it failed, or refused it for good (`RefusedEvent`: dead-lettered at once). When a batch
fails, its failed events are applied again one by one, so a failure stays with its own entry:
its valid batch-mates are applied in the same read. Only entries whose effects are durable (or
that were dead-lettered) are acknowledged; a failed entry stays pending, is claimed again after
an idle time, and after `max_deliveries` attempts is dead-lettered with its last error.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import redis.asyncio as aioredis
from pydantic import ValidationError

from schemas.base import Event
from schemas.deadletter import DeadLetter, FailureReason
from schemas.plausibility import DEFAULT_PLAUSIBILITY, Plausibility
from schemas.streams import Streams
from services.common.logging import batch_entries, handling, log_context
from services.common.metrics import NO_METRICS, ConsumptionMetrics
from services.common.store import EntryErrors
from services.common.streams import Acknowledgement, dead_letter, delivery_count
from services.common.wire import UndecodableEntryError, capped_payload, entry_body

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
            with handling(event):
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
    details: dict[str, str] | None = None


class RefusedEvent(Exception):  # noqa: N818 - an outcome, like Rejection, not a crash
    """An `apply` outcome: this event can never be applied (e.g. its id was recorded with other
    content); dead-letter it now with `reason` instead of retrying it."""

    def __init__(
        self,
        reason: FailureReason,
        error: str,
        *,
        field: str | None = None,
        details: dict[str, str] | None = None,
    ) -> None:
        super().__init__(error)
        self.rejection = Rejection(reason, error, field, details)


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
    plausibility: Plausibility = DEFAULT_PLAUSIBILITY

    def __post_init__(self) -> None:
        self._context = self.plausibility.as_context()
        self.errors = EntryErrors(self.redis, self.streams, self.stream, self.group)

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
            decoded = self.decode(fields)
            if isinstance(decoded, Rejection):
                await self._reject(entry_id, fields, decoded, deliveries)
                rejected.append(entry_id)
            else:
                valid.append((entry_id, decoded))
        first_delivery = deliveries == 1
        with batch_entries(self._origins(valid)):
            results, acknowledged = await self._apply(valid, first_delivery=first_delivery)
            if len(valid) > 1 and any(_failed(outcome) for outcome in results):
                results = await self._apply_singly(valid, results)
        applied: list[bytes] = []
        for (entry_id, event), outcome in zip(valid, results, strict=True):
            if outcome is None:
                applied.append(entry_id)
            elif isinstance(outcome, RefusedEvent):
                fields = dict(entries)[entry_id]
                await self._reject(entry_id, fields, outcome.rejection, deliveries, event)
                rejected.append(entry_id)
            else:
                await self._remember_failure(entry_id, event, outcome)
        unacknowledged = rejected if acknowledged else rejected + applied  # by the handler's write
        await self._ack(unacknowledged, retried=not first_delivery)
        self.metrics.handled(self.stream, self.group, time.perf_counter() - started)

    def _origins(self, valid: list[tuple[bytes, Event]]) -> dict[str, dict[str, str]]:
        """Where each event of the batch came from, for the log lines about it."""
        return {
            event.event_id: {"stream": self.stream, "entry_id": entry_id.decode()}
            for entry_id, event in valid
        }

    async def _apply_singly(
        self, valid: list[tuple[bytes, Event]], results: Sequence[BaseException | None]
    ) -> list[BaseException | None]:
        """After a failed batch, each failed event again on its own (effects are idempotent, so
        what the batch already made durable is not made twice): one poison entry neither
        delays its batch-mates to a retry nor lends them its error."""
        outcomes: list[BaseException | None] = []
        for (_, event), outcome in zip(valid, results, strict=True):
            if _failed(outcome):
                try:
                    outcome = (await self.apply([event]))[0]
                except Exception as error:
                    outcome = error
            outcomes.append(outcome)
        return outcomes

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
            return self.event_type.model_validate_json(body, context=self._context)
        except ValidationError as error:
            return describe_validation_error(error)

    async def _reject(
        self,
        entry_id: bytes,
        fields: dict[bytes, bytes],
        rejection: Rejection,
        deliveries: int,
        event: Event | None = None,
    ) -> None:
        copy = capped_payload(fields, max_body_bytes=self.max_payload_bytes)
        letter = DeadLetter(
            source_stream=self.stream,
            entry_id=entry_id.decode(),
            group=self.group,
            payload=copy.fields,
            payload_truncated=copy.truncated,
            payload_bytes=copy.size,
            payload_sha256=copy.sha256,
            reason=rejection.reason,
            error=rejection.error[:2_000],
            field=rejection.field,
            details=rejection.details or {},
            delivery_count=deliveries,
            company=event.company if event is not None else None,
            event_id=event.event_id if event is not None else None,
        )
        await dead_letter(
            self.redis, self.streams.dead_letters, letter, max_length=self.dead_letter_max_length
        )
        self.metrics.dead_lettered(self.stream, self.group)
        event_id, company = (
            (event.event_id, event.company) if event is not None else claimed_identity(fields)
        )
        with log_context(
            stream=self.stream, entry_id=letter.entry_id, event_id=event_id, company=company
        ):
            log.warning(
                "dead-lettered %s entry %s: %s", self.stream, letter.entry_id, rejection.error
            )

    async def _remember_failure(
        self, entry_id: bytes, event: Event, failure: BaseException
    ) -> None:
        self.metrics.failed(self.stream, self.group)
        message = f"{type(failure).__name__}: {failure}"
        await self.errors.remember(entry_id, message)
        with log_context(stream=self.stream, entry_id=entry_id.decode()), handling(event):
            log.error(
                "handling failed; the entry stays pending and will be retried",
                extra={"error": message},
            )

    async def _give_up(self, entry: Entry, count: int) -> None:
        entry_id, fields = entry
        error = await self.errors.last(entry_id) or "failed on every delivery"
        rejection = Rejection(FailureReason.HANDLER_FAILED, f"after {count - 1} attempts: {error}")
        decoded = self.decode(fields)
        event = decoded if isinstance(decoded, Event) else None
        await self._reject(entry_id, fields, rejection, count - 1, event)
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
            self.errors.forget(pipe, list(entry_ids))
            await pipe.execute()


def claimed_identity(fields: dict[bytes, bytes]) -> tuple[str | None, str | None]:
    """The event id and company an invalid entry claims, if its body is a JSON object naming
    them as text (for the log line about it; capped, as anyone may write them)."""
    try:
        body = json.loads(entry_body(fields))
    except (UndecodableEntryError, ValueError):
        return None, None
    if not isinstance(body, dict):
        return None, None
    claimed = (body.get("event_id"), body.get("company"))
    return tuple(value[:128] if isinstance(value, str) else None for value in claimed)  # type: ignore[return-value]


def _failed(outcome: BaseException | None) -> bool:
    """A failure worth retrying (a refusal is final)."""
    return outcome is not None and not isinstance(outcome, RefusedEvent)
