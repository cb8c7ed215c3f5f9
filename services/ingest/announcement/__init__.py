"""From an earnings announcement to traceable, cross-checked events.

`parse_announcement` reads the text (pure, no broker), `cross_check` lists every disagreement
between its figures, and `to_events` turns a clean extraction into the contract's events.
"""

from services.ingest.announcement.checks import Comparison, Discrepancy, compare_all, cross_check
from services.ingest.announcement.events import to_events
from services.ingest.announcement.model import (
    AnnouncementError,
    Extraction,
    Figure,
    Provenance,
    Unplaced,
)
from services.ingest.announcement.parser import parse_announcement

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
