"""A failing background loop backs off exponentially and logs once when it starts failing and
once when it recovers, not at every retry."""

from __future__ import annotations

import logging

import pytest

from services.common.health import Backoff

pytestmark = pytest.mark.unit


def test_failures_back_off_exponentially_to_the_cap_and_log_once_per_change(
    caplog: pytest.LogCaptureFixture,
) -> None:
    backoff = Backoff("the test loop", initial_s=0.05, max_s=1.0)

    with caplog.at_level(logging.INFO):
        delays = [backoff.failed(ConnectionError("Redis away")) for _ in range(8)]
        backoff.succeeded()
        backoff.succeeded()
        again = backoff.failed(ConnectionError("away again"))

    assert delays == [0.05, 0.1, 0.2, 0.4, 0.8, 1.0, 1.0, 1.0]
    assert again == 0.05, "a new outage starts from the first delay"
    messages = [record.getMessage() for record in caplog.records]
    assert len(messages) == 3
    assert "the test loop is failing (ConnectionError: Redis away)" in messages[0]
    assert messages[1] == "the test loop recovered after 8 failed attempt(s)"
    assert "away again" in messages[2]
