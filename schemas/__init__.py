"""Guidepost's event contracts: frozen, versioned, past-tense facts."""

from schemas.alerts import Alert, AlertKind, AlertSignal, AlertStatus, Condition, Severity
from schemas.base import Event
from schemas.deadletter import DeadLetter, FailureReason
from schemas.forecasts import ForecastUpdated, TrendUpdated
from schemas.guidance import GuidanceIssued, GuidanceStatus
from schemas.history import HistoryUpdated
from schemas.metrics import MetricReported
from schemas.money import Money, Scale
from schemas.results import IncomeStatement, ResultsPublished
from schemas.streams import Groups, Streams

INPUT_EVENTS: dict[str, type[Event]] = {
    "results": ResultsPublished,
    "metrics": MetricReported,
    "guidance": GuidanceIssued,
}

ALL_EVENTS: tuple[type[Event], ...] = (
    ResultsPublished,
    MetricReported,
    GuidanceIssued,
    HistoryUpdated,
    ForecastUpdated,
    TrendUpdated,
    AlertSignal,
    Alert,
)

__all__ = [
    "ALL_EVENTS",
    "INPUT_EVENTS",
    "Alert",
    "AlertKind",
    "AlertSignal",
    "AlertStatus",
    "Condition",
    "DeadLetter",
    "Event",
    "FailureReason",
    "ForecastUpdated",
    "Groups",
    "GuidanceIssued",
    "GuidanceStatus",
    "HistoryUpdated",
    "IncomeStatement",
    "MetricReported",
    "Money",
    "ResultsPublished",
    "Scale",
    "Severity",
    "Streams",
    "TrendUpdated",
]
