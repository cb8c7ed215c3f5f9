"""Deterministic event ids: the same cause always yields the same id, so a redelivered or
replayed input republishes identical events and every consumer can drop the repeat."""

from __future__ import annotations

from hashlib import sha1
from uuid import NAMESPACE_URL

_NAMESPACE = NAMESPACE_URL.bytes


def derived_id(*parts: str) -> str:
    """The hex of `uuid5(NAMESPACE_URL, "/".join(parts))`, built without the UUID object (it
    is computed for every event on the ingest path)."""
    digest = bytearray(sha1(_NAMESPACE + "/".join(parts).encode()).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    return digest.hex()
