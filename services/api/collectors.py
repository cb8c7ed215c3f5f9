"""Per-company counts for the API's `/metrics`, read from Redis at scrape time (sync client)."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator

import redis
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from redis.exceptions import RedisError

from schemas.streams import Streams
from services.alerts.store import alert_severities
from services.api.timeline import record_status
from services.common.histories.facts import fact_counts
from services.forecast.store import published_counts
from services.guidance.store import band_states

log = logging.getLogger(__name__)


class CompanyCollector(Collector):
    """Facts, forecasts and trends per company; band checks by state; alerts by status."""

    def __init__(self, client: redis.Redis, streams: Streams) -> None:
        self._client = client
        self._streams = streams

    def collect(self) -> Iterator[Metric]:
        families = _company_families()
        try:
            for company, facts in fact_counts(self._client, self._streams).items():
                families["facts"].add_metric([company], float(facts))
                self._fill(families, company)
        except RedisError as error:
            log.warning("metrics scrape could not read Redis: %s", type(error).__name__)
        yield from families.values()

    def _fill(self, families: dict[str, GaugeMetricFamily], company: str) -> None:
        for name, count in published_counts(self._client, self._streams, company).items():
            families[name].add_metric([company], float(count))
        for state, count in band_states(self._client, self._streams, company).items():
            families["bands"].add_metric([company, state], float(count))
        for status, count in self._alert_tally(company).items():
            families["alerts"].add_metric([company, status], float(count))

    def _alert_tally(self, company: str) -> Counter[str]:
        """By status, an informational notice (severity info) counted apart from firing."""
        records = alert_severities(self._client, self._streams, company)
        return Counter(record_status(status, severity) for status, severity in records)


def _company_families() -> dict[str, GaugeMetricFamily]:
    company = ["company"]
    return {
        "facts": GaugeMetricFamily(
            "guidepost_company_facts", "Metric-period pairs on record.", labels=company
        ),
        "forecasts": GaugeMetricFamily(
            "guidepost_company_forecasts", "Stored forecasts.", labels=company
        ),
        "trends": GaugeMetricFamily(
            "guidepost_company_trends", "Stored delinquency trends.", labels=company
        ),
        "bands": GaugeMetricFamily(
            "guidepost_company_band_checks",
            "Latest band checks, by state.",
            labels=["company", "state"],
        ),
        "alerts": GaugeMetricFamily(
            "guidepost_company_alerts",
            "Alert records (one per fingerprint), by status: firing, resolved, or "
            "informational (severity info, never counted as firing).",
            labels=["company", "status"],
        ),
    }
