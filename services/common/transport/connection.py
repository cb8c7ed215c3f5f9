"""What both transports take from the settings the same way: credentials, TLS, outages."""

from __future__ import annotations

import logging
import ssl
from typing import Any

import redis.exceptions as redis_errors
from faststream.security import BaseSecurity

from services.common.settings import RedisSettings

OUTAGE = (redis_errors.ConnectionError, redis_errors.TimeoutError, TimeoutError)


def tls_context(settings: RedisSettings) -> ssl.SSLContext | None:
    if settings.redis_url.scheme != "rediss":
        return None
    context = ssl.create_default_context(
        cafile=str(settings.redis_tls_ca_file) if settings.redis_tls_ca_file else None
    )
    if settings.redis_tls_cert_file:
        context.load_cert_chain(
            str(settings.redis_tls_cert_file),
            str(settings.redis_tls_key_file) if settings.redis_tls_key_file else None,
        )
    return context


def credentials(settings: RedisSettings) -> dict[str, Any]:
    password = settings.redis_password.get_secret_value() if settings.redis_password else None
    return {"username": settings.redis_username, "password": password}


def client_options(settings: RedisSettings) -> dict[str, Any]:
    """redis-py's keyword arguments for the ACL user and, with rediss://, the TLS files."""
    options: dict[str, Any] = {**credentials(settings)}
    if settings.redis_url.scheme == "rediss":
        options.update(ssl_ca_certs=_str(settings.redis_tls_ca_file))
        options.update(ssl_certfile=_str(settings.redis_tls_cert_file))
        options.update(ssl_keyfile=_str(settings.redis_tls_key_file))
    return options


def broker_options(
    settings: RedisSettings, *, tracer_provider: Any = None, **extra: Any
) -> dict[str, Any]:
    """RedisBroker's keyword arguments: credentials, TLS, logging, tracing; `extra` wins."""
    if settings.tracing:
        from faststream.redis.opentelemetry import RedisTelemetryMiddleware

        extra["middlewares"] = (RedisTelemetryMiddleware(tracer_provider=tracer_provider),)
    tls = tls_context(settings)
    # handlers take the read as Redis returned it and validate it themselves: FastDepends'
    # per-message argument resolution would cost about a quarter of a small batch's CPU
    extra.setdefault("apply_types", False)
    return {
        "security": BaseSecurity(ssl_context=tls) if tls else None,
        "logger": logging.getLogger("guidepost.broker"),  # our handlers and format, on stderr
        "log_level": logging.DEBUG,  # one line per message is noise at INFO; errors still log
        **{k: v for k, v in credentials(settings).items() if v is not None},
        **extra,
    }


async def as_received(message: Any) -> Any:
    """The handler's argument (FastStream's `decoder` hook): the read as Redis returned it,
    entry ids and fields; the Consumption decodes and validates each entry itself.

    Handing it over as the decoded body, not through a `RedisStreamMessage` parameter, keeps
    FastDepends from resolving a context field for every read, which it does on a worker
    thread: on small batches that hop cost more than the rest of FastStream's dispatch."""
    return message.raw_message


def _str(value: object | None) -> str | None:
    return None if value is None else str(value)
