"""How events sit in a stream entry: one field holding the event as plain JSON."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

from faststream.redis import BinaryMessageFormatV1

from schemas.base import Event
from schemas.streams import DATA_FIELD

B_DATA_FIELD = DATA_FIELD.encode()


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


OTHER_FIELDS_KEPT = 16  # fields besides the event's a dead letter copies, at most
OTHER_FIELD_BYTES = 1_024  # of each such field's name and value
PREVIEW_BYTES = 4_096  # of an event body too large to keep whole


@dataclass(frozen=True)
class PayloadCopy:
    """What a dead letter keeps of an entry: a copy capped in size, the original's size and
    digest (one hostile entry must not be copied whole into the dead-letter stream)."""

    fields: dict[str, str]
    truncated: bool
    size: int
    sha256: str


def capped_payload(fields: Mapping[bytes, bytes], *, max_body_bytes: int) -> PayloadCopy:
    """The event field whole when it is within `max_body_bytes` (it can be replayed), else its
    first PREVIEW_BYTES; at most OTHER_FIELDS_KEPT other fields of OTHER_FIELD_BYTES each."""
    size = sum(len(k) + len(v) for k, v in fields.items())
    body = fields.get(B_DATA_FIELD)
    digest = hashlib.sha256()
    if body is not None:
        digest.update(body)
    else:
        for key in sorted(fields):
            digest.update(len(key).to_bytes(8, "big") + key + len(fields[key]).to_bytes(8, "big"))
            digest.update(fields[key])
    copy: dict[str, str] = {}
    truncated = False
    if body is not None:
        kept = body if len(body) <= max_body_bytes else body[:PREVIEW_BYTES]
        truncated = len(kept) < len(body)
        copy[DATA_FIELD] = _text(kept)
    others = [k for k in fields if k != B_DATA_FIELD]
    truncated = truncated or len(others) > OTHER_FIELDS_KEPT
    for key in others[:OTHER_FIELDS_KEPT]:
        value = fields[key]
        truncated = truncated or len(key) > OTHER_FIELD_BYTES or len(value) > OTHER_FIELD_BYTES
        copy[_text(key[:OTHER_FIELD_BYTES])] = _text(value[:OTHER_FIELD_BYTES])
    return PayloadCopy(copy, truncated, size, digest.hexdigest())


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")


def as_text(value: object) -> str:
    """A Redis reply (bytes, as the clients here are not decoding) as text."""
    return value.decode() if isinstance(value, bytes) else str(value)
