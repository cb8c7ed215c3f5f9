"""Stream and consumer-group names: the only place they are spelled."""

from __future__ import annotations

import zlib
from dataclasses import dataclass

DEFAULT_NAMESPACE = "guidepost"
DATA_FIELD = "__data__"  # the entry field that holds the JSON event (FastStream's own)


@dataclass(frozen=True)
class Streams:
    """Every stream of one deployment, under one namespace (tests use a unique one each)."""

    namespace: str = DEFAULT_NAMESPACE
    partitions: int = 1

    def __post_init__(self) -> None:
        if self.partitions < 1:
            raise ValueError(f"partitions must be at least 1, got {self.partitions}")

    def partition_of(self, company: str) -> int:
        """A stable hash (CRC-32), so a company always lands on one partition: order kept."""
        return zlib.crc32(company.encode("utf-8")) % self.partitions

    def for_company(self, stream: str, company: str) -> str:
        """The partition of a company-keyed stream that carries this company's events."""
        if self.partitions == 1 or stream not in self.partitioned:
            return stream
        return f"{stream}:p{self.partition_of(company)}"

    def all_of(self, stream: str) -> tuple[str, ...]:
        """Every physical stream behind a logical one: one per partition and, for an input
        stream, its own name too (a producer that does not partition keeps writing there, and
        an entry nobody reads would be lost without a trace)."""
        if self.partitions == 1 or stream not in self.partitioned:
            return (stream,)
        partitions = tuple(f"{stream}:p{n}" for n in range(self.partitions))
        return (stream, *partitions) if stream in self.inputs else partitions

    @property
    def partitioned(self) -> tuple[str, ...]:
        """Company-keyed streams; alerts and dead letters stay single for their readers."""
        return (*self.inputs, self.history, self.forecasts, self.trends, self.signals)

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
        """A state key under the namespace."""
        return ":".join((self.namespace, *parts))

    def company_key(self, company: str, name: str) -> str:
        """Every key of one company shares the `{company}` hash tag: one cluster slot."""
        return self.key("{" + company + "}", name)


class Groups:
    INGEST = "ingest"
    FORECAST = "forecast"
    GUIDANCE = "guidance"
    ALERTS = "alerts"
    REPORT = "report"  # the demo's and status page's own reader of forecasts and alerts
