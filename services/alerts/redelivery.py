"""Notices a webhook did not take, kept and retried with backoff over a long horizon.

A receiver down for longer than the sink's own retries (seconds) must not lose notices: each is
scheduled (`services.alerts.store.RedeliverySchedule`) and retried with exponential backoff for
`horizon_s` (hours by default), then dead-lettered as `delivery_failed` with the notice itself
as its payload, which `guidepost dlq replay` puts back on the schedule.

Each sink has its own schedule (`webhook`, `alertmanager`). This module holds what a waiting
notice is and when it is tried again; the store keeps the schedule.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class Pending:
    """A notice waiting for its next attempt."""

    event_id: str
    alert_json: str
    first_failed_at: float  # epoch seconds
    attempts: int
    last_error: str


@dataclass(frozen=True)
class Backoff:
    """When to try again: base × 2^(attempts − 1), capped, with equal jitter."""

    base_s: float = 5.0
    max_s: float = 600.0

    def delay_s(self, attempts: int) -> float:
        ceiling = min(self.max_s, self.base_s * 2.0 ** min(max(attempts - 1, 0), 30))
        return ceiling / 2 + random.random() * ceiling / 2
