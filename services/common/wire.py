"""How events sit in a stream entry: one field holding the event as plain JSON."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from faststream._internal.parser import DefaultCodec
from faststream.redis.parser.binary import BinaryMessageFormatV1
from faststream.redis.parser.message import MessageFormat

from schemas.base import Event
from schemas.streams import DATA_FIELD

B_DATA_FIELD = DATA_FIELD.encode()


class PlainJsonFormat(MessageFormat):
    """FastStream message format that writes the body as-is, so any client can read it."""

    @classmethod
    async def encode(
        cls,
        *,
        message: Sequence[Any] | Any,
        reply_to: str | None,
        headers: dict[str, Any] | None,
        correlation_id: str,
        serializer: Any = None,
        codec: Any = None,
    ) -> bytes:
        payload, _content_type = await (codec or DefaultCodec()).encode(message, serializer)
        return bytes(payload)

    @classmethod
    def parse(cls, data: bytes) -> tuple[bytes, dict[str, Any]]:
        return data, {"content-type": "application/json"}


def entry_fields(event: Event) -> dict[str, str]:
    return {DATA_FIELD: event.model_dump_json()}


class UndecodableEntryError(ValueError):
    """A stream entry without the event field."""


def entry_body(fields: Mapping[bytes, bytes]) -> bytes:
    """The JSON body of an entry, or UndecodableEntryError naming what is missing."""
    body = fields.get(B_DATA_FIELD)
    if body is None:
        present = ", ".join(sorted(k.decode("utf-8", "replace") for k in fields)) or "none"
        raise UndecodableEntryError(f"{DATA_FIELD}: missing; the entry's fields are: {present}")
    if body.startswith(BinaryMessageFormatV1.IDENTITY_HEADER):
        body, _headers = BinaryMessageFormatV1.parse(body)  # a producer on FastStream's defaults
    return body


def printable_fields(fields: Mapping[bytes, bytes]) -> dict[str, str]:
    """The entry as received, for a dead letter (invalid UTF-8 shown with replacements)."""
    return {k.decode("utf-8", "replace"): v.decode("utf-8", "replace") for k, v in fields.items()}


def as_text(value: object) -> str:
    """A Redis reply (bytes, as the clients here are not decoding) as text."""
    return value.decode() if isinstance(value, bytes) else str(value)
