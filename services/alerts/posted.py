"""What the Alertmanager sink keeps of each alert it posted: the newest notice and its order.

The record and its encoding live here so the store (which keeps them) and the sink (which
decides with them) share one spelling without importing each other.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from schemas.alerts import Alert, AlertKind, AlertStatus

NEWS_KINDS = frozenset(
    {
        AlertKind.GUIDANCE_REVISION,
        AlertKind.OUTCOME,
        AlertKind.RESTATEMENT,
        AlertKind.CHANGE_POINT,
    }
)
"""Kinds that report something that happened; Guidepost never clears them."""


def is_news(alert: Alert) -> bool:
    return alert.kind in NEWS_KINDS


def notice_order(alert: Alert) -> tuple[datetime, int]:
    """Notices of one alert in the order they were decided: episode, then number."""
    return alert.starts_at, alert.notification


@dataclass(frozen=True)
class Posted:
    """The newest notice of one alert posted (or being posted) to Alertmanager."""

    starts_at: datetime
    number: int
    status: str
    stored_at: float
    alert_json: str | None  # kept while the alert is reposted

    @property
    def order(self) -> tuple[datetime, int]:
        return self.starts_at, self.number

    @property
    def reposted(self) -> bool:
        return self.status == AlertStatus.FIRING.value and self.alert_json is not None

    def encode(self) -> str:
        return json.dumps(
            {
                "starts_at": self.starts_at.isoformat(),
                "number": self.number,
                "status": self.status,
                "stored_at": self.stored_at,
                "alert": self.alert_json,
            }
        )

    @classmethod
    def decode(cls, blob: bytes | str) -> Posted:
        document: dict[str, Any] = json.loads(blob)
        return cls(
            starts_at=datetime.fromisoformat(document["starts_at"]),
            number=int(document["number"]),
            status=str(document["status"]),
            stored_at=float(document["stored_at"]),
            alert_json=document.get("alert"),
        )

    @classmethod
    def of(cls, alert: Alert, *, at: float) -> Posted:
        kept = alert.status is AlertStatus.FIRING and not is_news(alert)
        return cls(
            starts_at=alert.starts_at,
            number=alert.notification,
            status=alert.status.value,
            stored_at=at,
            alert_json=alert.model_dump_json() if kept else None,
        )
