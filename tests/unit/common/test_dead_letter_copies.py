"""What a dead letter keeps of an entry: the event whole when it could be replayed, else a
capped copy with the original's size and digest; other fields capped in number and size."""

from __future__ import annotations

import hashlib

import pytest

from services.common.wire import (
    OTHER_FIELD_BYTES,
    OTHER_FIELDS_KEPT,
    PREVIEW_BYTES,
    capped_payload,
)

pytestmark = pytest.mark.unit


def test_an_event_within_the_payload_cap_is_kept_whole() -> None:
    body = b'{"company": "ACME"}'
    copy = capped_payload({b"__data__": body}, max_body_bytes=1_024)

    assert copy.fields == {"__data__": body.decode()}
    assert not copy.truncated
    assert copy.sha256 == hashlib.sha256(body).hexdigest()
    assert copy.size == len(b"__data__") + len(body)


def test_an_oversized_event_keeps_a_preview_its_size_and_digest() -> None:
    body = b"{" + b" " * 6_000_000 + b"}"
    copy = capped_payload({b"__data__": body}, max_body_bytes=262_144)

    assert len(copy.fields["__data__"]) == PREVIEW_BYTES
    assert copy.truncated
    assert copy.size == 8 + len(body)
    assert copy.sha256 == hashlib.sha256(body).hexdigest()


def test_other_fields_are_capped_in_number_and_size() -> None:
    fields = {f"f{n}".encode(): b"v" * 5_000 for n in range(100)}
    copy = capped_payload(fields, max_body_bytes=262_144)

    assert len(copy.fields) == OTHER_FIELDS_KEPT
    assert all(len(value) == OTHER_FIELD_BYTES for value in copy.fields.values())
    assert copy.truncated
    assert copy.size == sum(len(k) + len(v) for k, v in fields.items())


def test_invalid_utf8_is_shown_with_replacements() -> None:
    copy = capped_payload({b"other": b"\xe0\xff"}, max_body_bytes=1_024)

    assert copy.fields == {"other": "\ufffd\ufffd"}
    assert not copy.truncated
