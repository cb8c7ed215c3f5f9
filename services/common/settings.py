"""Typed settings, read from the environment (prefix GUIDEPOST_) once, in the entry point."""

from __future__ import annotations

import ipaddress
import os
import re
import socket
from collections.abc import Iterator
from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import (
    AnyUrl,
    Field,
    HttpUrl,
    SecretStr,
    UrlConstraints,
    ValidationError,
    ValidatorFunctionWrapHandler,
    field_validator,
)
from pydantic_core import PydanticCustomError
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from schemas.plausibility import (
    DEFAULT_FIRST_YEAR,
    DEFAULT_OCCURRED_AT_TOLERANCE,
    DEFAULT_YEARS_AHEAD,
    Plausibility,
)
from schemas.streams import DEFAULT_NAMESPACE, Streams

LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
IDENTITY_LABELS = frozenset({"alertname", "company", "period", "subject"})
"""Labels an alert for Alertmanager takes from its identity (`services.alerts.alertmanager`)."""

RedisUrl = Annotated[AnyUrl, UrlConstraints(allowed_schemes=["redis", "rediss", "unix"])]


class Service(StrEnum):
    INGEST = "ingest"
    FORECAST = "forecast"
    GUIDANCE = "guidance"
    ALERTS = "alerts"


ALL_SERVICES = tuple(Service)


class RedisClient(StrEnum):
    """How the processes talk to Redis (`services.common.transport`)."""

    MULTIPLEXED = "multiplexed"  # one pipelined connection per process, FastStream's reads lean
    STOCK = "stock"  # redis-py's and FastStream's own clients, through public APIs only


# Validation errors never echo what was given (a URL may carry a password, a field may be a
# token): each message names the field and the reason, URLs appear only as `redacted_url`.
SETTINGS_CONFIG = SettingsConfigDict(
    env_prefix="GUIDEPOST_", extra="ignore", hide_input_in_errors=True
)


def redacted_url(value: object) -> str:
    """Scheme, host and port only: credentials become `***`; path and query, which may hold a
    token (webhook URLs often do), are cut to `/…`."""
    if not isinstance(value, str):
        return f"<{type(value).__name__}>"
    try:
        parts = urlsplit(value)
    except ValueError:
        return "<unparsable URL>"
    _userinfo, at, hostport = parts.netloc.rpartition("@")
    credentials = "***@" if at else ""
    rest = "/…" if parts.path.strip("/") or parts.query or parts.fragment else ""
    scheme = f"{parts.scheme}://" if parts.scheme else ""
    return f"{scheme}{credentials}{hostport}{rest}"


def url_errors_redacted(value: object, handler: ValidatorFunctionWrapHandler) -> object:
    """A URL field's validation, its failure reported with the URL redacted."""
    try:
        return handler(value)
    except ValidationError as error:
        reasons = "; ".join(dict.fromkeys(str(line["msg"]) for line in error.errors()))
        context = {"reason": reasons, "url": redacted_url(value)}
        raise PydanticCustomError("url_invalid", "{reason} (given: {url})", context) from None


def describe_settings_error(error: ValidationError) -> str:
    """One line per problem, naming the environment variable; no value is echoed."""
    lines = []
    for problem in error.errors():
        field = ".".join(str(part) for part in problem["loc"]) or "settings"
        name = f"GUIDEPOST_{field.upper()}" if problem["loc"] else field
        lines.append(f"{name}: {problem['msg']}")
    return "\n".join(lines)


def default_consumer_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class TransportSettings(BaseSettings):
    """Which client every process talks to Redis with (`services.common.transport`)."""

    model_config = SETTINGS_CONFIG

    redis_client: RedisClient = Field(
        default=RedisClient.MULTIPLEXED,
        description="`multiplexed` (Guidepost's pipelined client, the faster) or `stock` "
        "(redis-py's and FastStream's own, through their public APIs only).",
    )


class RedisSettings(TransportSettings):
    """How to reach Redis: URL, ACL user and password, TLS, and with which client."""

    redis_url: RedisUrl = Field(
        default=AnyUrl("redis://127.0.0.1:6379/0"),
        description="redis:// or rediss:// (TLS); credentials belong in the fields below.",
    )
    redis_username: str | None = Field(default=None, description="ACL user.")
    redis_password: SecretStr | None = Field(default=None, description="ACL password.")
    redis_tls_ca_file: Path | None = None
    redis_tls_cert_file: Path | None = None
    redis_tls_key_file: Path | None = None
    redis_cluster: bool = Field(default=False, description="Connect to a Redis Cluster.")
    namespace: str = Field(default=DEFAULT_NAMESPACE, pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    partitions: int = Field(
        default=1,
        ge=1,
        le=1024,
        description="Partition streams per company-keyed stream; publishers and workers agree.",
    )

    tracing: bool = Field(
        default=False,
        description="OpenTelemetry spans per message through FastStream's middleware "
        "(exported by whatever tracer provider the process configures).",
    )

    _redis_url_redacted = field_validator("redis_url", mode="wrap")(url_errors_redacted)

    def streams(self) -> Streams:
        return Streams(self.namespace, self.partitions)

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        """A URL that carries a password is shown redacted, like every secret field."""
        for name, value in super().__repr_args__():
            if isinstance(value, tuple) and value and all(isinstance(v, AnyUrl) for v in value):
                yield name, tuple(redacted_url(str(v)) for v in value)
                continue
            yield name, redacted_url(str(value)) if isinstance(value, AnyUrl) else value


class WorkerSettings(RedisSettings):
    """Settings of `guidepost run`: which workers, how they consume."""

    services: Annotated[tuple[Service, ...], NoDecode] = ALL_SERVICES
    consumer_name: str = Field(default_factory=default_consumer_name, max_length=128)
    batch_size: int = Field(default=100, ge=1, le=10_000)
    block_ms: int = Field(default=200, ge=1, le=60_000)
    ingest_batches_in_flight: int = Field(
        default=3,
        ge=1,
        le=16,
        description="Batches one ingest consumer handles at once, so the next batch is read "
        "and validated while Redis records the previous one (each event's write is atomic).",
    )
    claim_idle_ms: int = Field(
        default=30_000, ge=100, description="Pending this long, an entry is claimed from its owner."
    )
    max_deliveries: int = Field(
        default=5, ge=1, description="Attempts before an entry is dead-lettered."
    )
    max_payload_bytes: int = Field(default=262_144, ge=1_024)
    period_first_year: int = Field(
        default=DEFAULT_FIRST_YEAR, ge=1, le=9_999, description="Earliest year a period may name."
    )
    period_years_ahead: int = Field(
        default=DEFAULT_YEARS_AHEAD,
        ge=0,
        le=100,
        description="How many years after the current one a period may name (guidance).",
    )
    occurred_at_tolerance_s: int = Field(
        default=int(DEFAULT_OCCURRED_AT_TOLERANCE.total_seconds()),
        ge=0,
        le=31 * 86_400,
        description="How far ahead of the worker's clock an event's occurred_at may be.",
    )
    stream_max_length: int = Field(
        default=1_000_000, ge=1_000, description="Approximate cap per stream (acked entries only)."
    )
    coalesce_ms: int = Field(
        default=50, ge=0, description="A burst for one company within this window is one refit."
    )
    refit_max_attempts: int = Field(
        default=3,
        ge=1,
        le=100,
        description="Refit attempts of one company (each counted before it runs, so a crash "
        "counts) before the company is quarantined with an alert.",
    )
    refit_timeout_s: float = Field(
        default=300.0, gt=0, description="A refit taking longer counts as a failed attempt."
    )
    max_history_quarters: int = Field(
        default=160,
        ge=8,
        le=2_000,
        description="The span of quarters a company's refit may hold; a longer history "
        "quarantines the company (a stray far-off period, say).",
    )
    guidance_linger_ms: int = Field(
        default=20,
        ge=0,
        le=1_000,
        description="After a read of history announcements that came back short, the guidance "
        "worker waits this long before the next: a steady flow is checked in batches (far less "
        "CPU per announcement), and an outcome check may come this much later.",
    )
    webhook_url: AnyUrl | None = None
    webhook_secret: SecretStr | None = None
    webhook_max_attempts: int = Field(
        default=5, ge=1, description="Attempts in a row before a notice is scheduled for later."
    )
    webhook_timeout_s: float = Field(
        default=10.0, gt=0, le=300, description="Total deadline of one webhook attempt."
    )
    webhook_retry_horizon_s: float = Field(
        default=6 * 3600.0,
        ge=0,
        description="How long after its first failure a notice is retried (with backoff) "
        "before it is dead-lettered as delivery_failed.",
    )
    webhook_retry_base_s: float = Field(
        default=5.0, gt=0, description="First delay of a scheduled redelivery."
    )
    webhook_retry_max_delay_s: float = Field(
        default=600.0, gt=0, description="Longest delay between scheduled redeliveries."
    )
    webhook_receiver: str = Field(
        default="guidepost",
        min_length=1,
        max_length=200,
        description="The webhook body's `receiver` (Alertmanager's webhook format).",
    )
    external_url: AnyUrl | None = Field(
        default=None,
        description="Guidepost's status page as operators reach it: alerts link to their "
        "company's page from it (`generatorURL`), the webhook names it (`externalURL`).",
    )
    alertmanager_url: Annotated[tuple[HttpUrl, ...], NoDecode] = Field(
        default=(),
        description="Alertmanager(s) to post alerts to (`/api/v2/alerts`); several, comma "
        "separated, for an Alertmanager cluster: each gets every alert.",
    )
    alertmanager_repost_interval_s: float = Field(
        default=60.0,
        ge=0.1,
        le=3_600,
        description="Firing alerts are posted again this often; each post is valid for four "
        "intervals (`endsAt`), so an alert ends in Alertmanager only when Guidepost resolves "
        "it or stops posting.",
    )
    alertmanager_timeout_s: float = Field(
        default=10.0, gt=0, le=300, description="Total deadline of one Alertmanager post."
    )
    alertmanager_labels: Annotated[dict[str, str], NoDecode] = Field(
        default_factory=dict,
        description="Constant labels added to every alert for Alertmanager's routes, "
        "`name=value` pairs, comma separated (e.g. `team=risk,env=prod`).",
    )
    alert_repeat_interval_s: int = Field(default=86_400, ge=1)
    metrics_port: int | None = Field(default=None, ge=1, le=65_535)
    stream_metrics: bool = Field(
        default=False,
        description="Export the Redis-derived gauges (stream length, group lag, pending, "
        "refit ledger) from this worker's /metrics. One process should: the API does by "
        "default; set this on one worker where no API runs.",
    )
    log_level: str = "INFO"
    log_json: bool = True

    _webhook_url_redacted = field_validator("webhook_url", mode="wrap")(url_errors_redacted)

    @field_validator("alertmanager_url", mode="wrap")
    @classmethod
    def _split_urls(cls, value: object, handler: ValidatorFunctionWrapHandler) -> object:
        """Comma-separated URLs; a failure redacts each (they may carry credentials)."""
        if isinstance(value, str):
            value = tuple(part.strip() for part in value.split(",") if part.strip())
        try:
            return handler(value)
        except ValidationError as error:
            reasons = "; ".join(dict.fromkeys(str(line["msg"]) for line in error.errors()))
            given = ", ".join(map(redacted_url, value)) if isinstance(value, tuple) else "?"
            context = {"reason": reasons, "url": given}
            raise PydanticCustomError("url_invalid", "{reason} (given: {url})", context) from None

    @field_validator("alertmanager_labels", mode="before")
    @classmethod
    def _parse_labels(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        pairs = [part.strip() for part in value.split(",") if part.strip()]
        malformed = [pair for pair in pairs if "=" not in pair]
        if malformed:
            raise ValueError(f"expected name=value pairs, got {malformed[0]!r}")
        split = (pair.split("=", 1) for pair in pairs)
        return {name.strip(): label.strip() for name, label in split}

    @field_validator("alertmanager_labels")
    @classmethod
    def _check_labels(cls, value: dict[str, str]) -> dict[str, str]:
        for name, label in value.items():
            if not LABEL_NAME.fullmatch(name):
                raise ValueError(f"label name {name!r} must match {LABEL_NAME.pattern}")
            if name in IDENTITY_LABELS:
                raise ValueError(f"label {name!r} is set from each alert and cannot be constant")
            if not label:
                raise ValueError(f"label {name!r} is empty (Alertmanager drops empty labels)")
        return value

    def plausibility(self) -> Plausibility:
        """The bounds input events are validated against (`schemas.plausibility`)."""
        return Plausibility(
            first_year=self.period_first_year,
            years_ahead=self.period_years_ahead,
            occurred_at_tolerance=timedelta(seconds=self.occurred_at_tolerance_s),
        )

    @field_validator("services", mode="before")
    @classmethod
    def _split_services(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value


LOOPBACK_HOSTS = frozenset({"localhost", "ip6-localhost", "ip6-loopback"})


def is_loopback(host: str) -> bool:
    """Whether listening on `host` keeps the port on this machine (127.0.0.0/8, ::1)."""
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return host.lower() in LOOPBACK_HOSTS


class ApiSettings(RedisSettings):
    """Settings of `guidepost serve`: the read-only HTTP status page and API."""

    http_host: str = Field(
        default="127.0.0.1",
        description="Interface to listen on. Beyond loopback it needs `api_token`, or "
        "`http_allow_unauthenticated` where something in front authenticates.",
    )
    http_port: int = Field(default=8080, ge=1, le=65_535)
    api_token: SecretStr | None = Field(
        default=None,
        description="Bearer token every route but /health and /ready then requires.",
    )
    metrics_token: SecretStr | None = Field(
        default=None,
        description="Bearer token for /metrics alone (a scraper's), instead of `api_token`.",
    )
    http_allow_unauthenticated: bool = Field(
        default=False,
        description="Serve beyond loopback with no token (an authenticating proxy in front).",
    )
    log_level: str = "INFO"
    stream_metrics: bool = Field(
        default=True,
        description="Export the Redis-derived gauges (stream length, group lag, pending, "
        "refit ledger) on /metrics; with several API replicas, leave it on in one only.",
    )

    def exposure_problem(self) -> str | None:
        """Why serving as configured would open the pages and data to anyone, if it would."""
        if is_loopback(self.http_host) or self.api_token or self.http_allow_unauthenticated:
            return None
        return (
            f"refusing to serve on {self.http_host} without a token: the status page, the JSON "
            "API and /metrics would be open to anyone who reaches the port. Set "
            "GUIDEPOST_API_TOKEN, listen on 127.0.0.1, or set "
            "GUIDEPOST_HTTP_ALLOW_UNAUTHENTICATED=true (--allow-unauthenticated) if a proxy in "
            "front authenticates"
        )
