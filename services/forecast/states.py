"""The fitted states a worker keeps between refits: a bounded LRU of each company's compact
fits (the core's `Fitted`, no history) and its last trend per metric.

A cache: losing a state costs a full refit, never correctness.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from schemas.forecasts import TrendUpdated

if TYPE_CHECKING:
    from services.forecast.core import Fitted

DEFAULT_MAX_STATES = 10_000  # companies whose fitted state a worker keeps (≈ 50 kB each)


@dataclass
class CompanyState:
    """What a worker remembers of one company between refits."""

    fits: dict[str, Fitted] = field(default_factory=dict)
    fitted_at: float = field(default_factory=time.monotonic)
    trends: dict[str, tuple[str, TrendUpdated | None]] = field(default_factory=dict)


class FittedStates:
    """A bounded LRU of company states; the least recently refitted company is evicted."""

    def __init__(self, capacity: int = DEFAULT_MAX_STATES) -> None:
        self._capacity = capacity
        self._states: OrderedDict[str, CompanyState] = OrderedDict()

    def __len__(self) -> int:
        return len(self._states)

    def take(self, company: str, *, max_age_s: float) -> CompanyState | None:
        """The company's state if fresh enough (a stale one is dropped)."""
        state = self._states.pop(company, None)
        if state is not None and time.monotonic() - state.fitted_at > max_age_s:
            return None
        return state

    def put(self, company: str, state: CompanyState) -> None:
        self._states[company] = state
        self._states.move_to_end(company)
        while len(self._states) > self._capacity:
            self._states.popitem(last=False)
