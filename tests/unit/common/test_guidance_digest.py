"""A guidance statement's digest names its content, not the notation its numbers were written
in: the same statement recorded by an earlier version (1.17E+9) and redelivered now
(1170000000) must not read as a conflicting reuse of its event id."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, replace

import pytest

from services.common.histories.guidance import GuidanceVersion

pytestmark = pytest.mark.unit

STATEMENT = GuidanceVersion(
    event_id="guidance-1",
    metric="net_income",
    period="2024Q2",
    basis="gaap",
    status="issued",
    low="1170000000",
    high="1230000000",
    currency="CNY",
    yoy_low_pct="6.4",
    yoy_high_pct="11.6",
    issued_in_period="2024Q1",
    known_at="2024-05-19T00:00:00.000000Z",
    source="announcement",
)


def digest_as_earlier_versions_recorded(version: GuidanceVersion) -> str:
    content = {k: v for k, v in asdict(version).items() if k != "revision"}
    content.update(low="1.17E+9", high="1.23E+9")  # what the recorded text used to be
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()


def test_plain_and_exponent_notation_give_the_same_digest() -> None:
    assert STATEMENT.digest == digest_as_earlier_versions_recorded(STATEMENT)


def test_a_different_bound_gives_a_different_digest() -> None:
    assert replace(STATEMENT, high="1240000000").digest != STATEMENT.digest


def test_the_derived_revision_is_not_part_of_the_digest() -> None:
    assert replace(STATEMENT, revision="raised").digest == STATEMENT.digest
