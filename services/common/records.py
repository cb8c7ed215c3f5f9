"""Reading records back from the alerts and dead-letter streams, tolerating bad ones.

Anyone can XADD to a stream: one malformed entry must not break every reader of it (the status
page, `alerts tail`, `dlq list`). A reader skips what it cannot decode, counts it and logs it
once per read, and shows the rest.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError

from services.common.wire import B_DATA_FIELD, as_text

log = logging.getLogger(__name__)
M = TypeVar("M", bound=BaseModel)


@dataclass
class Decoded(Generic[M]):
    """The entries that decoded (with their ids) and the ids of those that did not."""

    records: list[tuple[str, M]] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)

    @property
    def values(self) -> list[M]:
        return [record for _, record in self.records]


def decode_record(fields: Any, model: type[M]) -> M | None:
    """The record an entry holds, or None when it holds no valid one."""
    try:
        body = fields[B_DATA_FIELD]
    except (KeyError, TypeError):
        return None
    try:
        return model.model_validate_json(body)
    except (ValidationError, ValueError, TypeError):
        return None


def decode_entries(
    entries: Iterable[tuple[Any, Any]], model: type[M], *, stream: str
) -> Decoded[M]:
    decoded: Decoded[M] = Decoded()
    for entry_id, fields in entries:
        record = decode_record(fields, model)
        if record is None:
            decoded.unreadable.append(as_text(entry_id))
        else:
            decoded.records.append((as_text(entry_id), record))
    if decoded.unreadable:
        log_unreadable(stream, model, decoded.unreadable)
    return decoded


def log_unreadable(stream: str, model: type[BaseModel], entry_ids: list[str]) -> None:
    log.warning(
        "skipped %d entr%s of %s that hold no valid %s (first %s)",
        len(entry_ids),
        "y" if len(entry_ids) == 1 else "ies",
        stream,
        model.__name__,
        entry_ids[0],
    )
