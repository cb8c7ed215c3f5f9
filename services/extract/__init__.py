"""From an earnings announcement to traceable, cross-checked events.

`parse_announcement` reads the text (pure, no broker), `cross_check` lists every disagreement
between its figures, and `to_events` turns a clean extraction into the contract's events.
"""

from services.extract.checks import Comparison, Discrepancy, compare_all, cross_check
from services.extract.events import to_events
from services.extract.model import (
    AnnouncementError,
    Extraction,
    Figure,
    Provenance,
    Unplaced,
)
from services.extract.parser import parse_announcement

__all__ = [
    "AnnouncementError",
    "Comparison",
    "Discrepancy",
    "Extraction",
    "Figure",
    "Provenance",
    "Unplaced",
    "compare_all",
    "cross_check",
    "parse_announcement",
    "to_events",
]
