"""Stream and consumer-group names: the only place they are spelled."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_NAMESPACE = "guidepost"
DATA_FIELD = "__data__"  # the entry field that holds the JSON event (FastStream's own)


@dataclass(frozen=True)
class Streams:
    """Every stream of one deployment, under one namespace (tests use a unique one each)."""

    namespace: str = DEFAULT_NAMESPACE

    def _name(self, suffix: str) -> str:
        return f"{self.namespace}:{suffix}"

    @property
    def results(self) -> str:
        return self._name("in:results")

    @property
    def metrics(self) -> str:
        return self._name("in:metrics")

    @property
    def guidance(self) -> str:
        return self._name("in:guidance")

    @property
    def history(self) -> str:
        return self._name("history")

    @property
    def forecasts(self) -> str:
        return self._name("forecasts")

    @property
    def trends(self) -> str:
        return self._name("trends")

    @property
    def signals(self) -> str:
        return self._name("signals")

    @property
    def alerts(self) -> str:
        return self._name("alerts")

    @property
    def dead_letters(self) -> str:
        return self._name("dlq")

    @property
    def inputs(self) -> tuple[str, str, str]:
        return (self.results, self.metrics, self.guidance)

    def key(self, *parts: str) -> str:
        """A state key; company keys use the `{company}` hash tag so a company lives on one slot."""
        return ":".join((self.namespace, *parts))


class Groups:
    INGEST = "ingest"
    FORECAST = "forecast"
    GUIDANCE = "guidance"
    ALERTS = "alerts"
    REPORT = "report"  # the demo's and status page's own reader of forecasts and alerts
