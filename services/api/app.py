"""The read-only HTTP service. `create_api(settings)` is its one composition root.

Clients are created when the server starts (the lifespan), never at import or construction.
With `api_token` set, every route but the probes requires `Authorization: Bearer <token>`;
with `metrics_token` set, `/metrics` requires that token instead (a scraper's, which opens
nothing else). `/health` and `/ready` stay open for the orchestrator's probes.
"""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated

import redis
import redis.asyncio as aioredis
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Path, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from pydantic import BaseModel, Field, SecretStr
from redis.exceptions import RedisError
from starlette.concurrency import run_in_threadpool

from schemas.alerts import Alert
from schemas.base import COMPANY_PATTERN
from schemas.forecasts import ForecastUpdated, TrendUpdated
from services.api.collectors import CompanyCollector
from services.api.pages import (
    CONTENT_SECURITY_POLICY,
    MAX_REFRESH_S,
    MIN_REFRESH_S,
    company_page,
    overview_page,
)
from services.api.reader import StatusReader
from services.common.histories.facts import FactVersion, latest_as_of
from services.common.metrics import StreamCollector, create_sync_redis
from services.common.settings import ApiSettings
from services.common.transport import create_redis
from services.forecast.assemble import DerivedFact, derived_facts
from services.guidance.core import BandCheck

OPEN_PATHS = frozenset({"/health", "/ready"})
METRICS_PATH = "/metrics"
READY_TIMEOUT_S = 2.0


@dataclass
class Resources:
    """The clients one server process holds, opened at start-up and closed at shutdown."""

    client: aioredis.Redis
    sync_client: redis.Redis
    reader: StatusReader
    registry: CollectorRegistry

    @classmethod
    def open(cls, settings: ApiSettings) -> Resources:
        streams = settings.streams()
        client, sync_client = create_redis(settings), create_sync_redis(settings)
        registry = CollectorRegistry()
        if settings.stream_metrics:
            registry.register(StreamCollector(sync_client, streams))
        registry.register(CompanyCollector(sync_client, streams))
        return cls(client, sync_client, StatusReader(client, streams), registry)

    async def close(self) -> None:
        await self.client.aclose()
        self.sync_client.close()


def create_api(settings: ApiSettings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.resources = Resources.open(settings)
        try:
            yield
        finally:
            await app.state.resources.close()

    # the interactive docs load scripts from a CDN; the OpenAPI document stays at /openapi.json
    api = FastAPI(title="Guidepost", lifespan=lifespan, docs_url=None, redoc_url=None)
    if settings.api_token is not None or settings.metrics_token is not None:
        api.middleware("http")(bearer_token_guard(settings.api_token, settings.metrics_token))
    for router in (probes, read_api, status_pages):
        api.include_router(router)
    return api


Handler = Callable[[Request], Awaitable[Response]]


def bearer_token_guard(
    token: SecretStr | None, metrics_token: SecretStr | None = None
) -> Callable[[Request, Handler], Awaitable[Response]]:
    """Each path's token: none for the probes, `metrics_token` (else `token`) for /metrics,
    `token` for the rest; a path whose token is unset is open."""
    expected = _secret_bytes(token)
    expected_for_metrics = _secret_bytes(metrics_token) or expected

    async def guard(request: Request, call_next: Handler) -> Response:
        path = request.url.path
        needed = None if path in OPEN_PATHS else expected
        if path == METRICS_PATH:
            needed = expected_for_metrics
        if needed is None or _authorized(request, needed):
            return await call_next(request)
        return JSONResponse(
            {"detail": "this route needs the header 'Authorization: Bearer <token>'"},
            status_code=401,
            headers={"WWW-Authenticate": 'Bearer realm="guidepost"'},
        )

    return guard


def _secret_bytes(secret: SecretStr | None) -> bytes | None:
    return secret.get_secret_value().encode() if secret is not None else None


def _authorized(request: Request, expected: bytes) -> bool:
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), expected)


def _resources(request: Request) -> Resources:
    resources: Resources = request.app.state.resources
    return resources


def _reader(request: Request) -> StatusReader:
    return _resources(request).reader


Reader = Annotated[StatusReader, Depends(_reader)]
CompanyPath = Annotated[str, Path(pattern=COMPANY_PATTERN, examples=["ACME"])]


async def known_company(company: CompanyPath, reader: Reader) -> str:
    if not await reader.knows(company):
        raise HTTPException(404, f"no company {company!r}; GET /api/companies lists known ones")
    return company


Company = Annotated[str, Depends(known_company)]

probes = APIRouter(tags=["probes"])


@probes.get("/health")
async def health() -> dict[str, str]:
    """The process is up (no dependency is checked)."""
    return {"status": "ok"}


@probes.get("/ready", responses={503: {"description": "Redis does not answer"}})
async def ready(reader: Reader) -> JSONResponse:
    """Redis answers PING."""
    try:
        await asyncio.wait_for(reader.ping(), timeout=READY_TIMEOUT_S)
    except (RedisError, OSError, TimeoutError) as error:
        return JSONResponse({"status": "unavailable", "error": type(error).__name__}, 503)
    return JSONResponse({"status": "ready"})


@probes.get(METRICS_PATH, response_class=Response)
async def metrics(request: Request) -> Response:
    """Prometheus text: stream and group gauges, per-company counts."""
    body = await run_in_threadpool(generate_latest, _resources(request).registry)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


read_api = APIRouter(prefix="/api", tags=["read"])


class CompanySummary(BaseModel):
    company: str
    forecasts: int
    bands: int
    trends: int


class HistoryEntry(BaseModel):
    metric: str
    period: str
    value: str
    precision: str
    currency: str | None
    known_at: str
    event_id: str | None = Field(description="The event that reported it; none if derived.")
    current: bool
    derived: bool = Field(
        default=False, description="No source reported it: an accounting identity derived it."
    )
    derived_from: str | None = Field(default=None, description="The identity and its periods.")
    retracted: bool = False


@read_api.get("/companies")
async def companies(reader: Reader) -> list[CompanySummary]:
    summaries = []
    for company in await reader.companies():
        summaries.append(
            CompanySummary(
                company=company,
                forecasts=len(await reader.forecasts(company)),
                bands=len(await reader.bands(company)),
                trends=len(await reader.trends(company)),
            )
        )
    return summaries


@read_api.get("/companies/{company}/forecasts")
async def forecasts(company: Company, reader: Reader) -> list[ForecastUpdated]:
    return await reader.forecasts(company)


@read_api.get("/companies/{company}/bands")
async def bands(company: Company, reader: Reader) -> list[BandCheck]:
    return await reader.bands(company)


@read_api.get("/companies/{company}/trends")
async def trends(company: Company, reader: Reader) -> list[TrendUpdated]:
    return await reader.trends(company)


@read_api.get("/companies/{company}/alerts")
async def alerts(
    company: Company,
    reader: Reader,
    limit: Annotated[int, Query(ge=1, le=1000, description="Newest first.")] = 50,
) -> list[Alert]:
    return await reader.alerts(company, limit=limit)


@read_api.get("/companies/{company}/history")
async def history(
    company: Company,
    reader: Reader,
    metric: Annotated[str | None, Query(description="Only this metric.")] = None,
    period: Annotated[str | None, Query(description="Only this period.")] = None,
) -> list[HistoryEntry]:
    """Every version of every fact, with the time it became known, then the figures
    accounting identities derive from the current facts (marked derived)."""
    versions = await reader.history(company)
    latest = latest_as_of(versions, None)
    current = {id(v) for v in latest}
    chosen = [v for v in versions if metric in (None, v.metric) and period in (None, v.period)]
    derived = [
        _derived_entry(d)
        for d in derived_facts(latest)
        if metric in (None, d.metric) and period in (None, d.period)
    ]
    return [_history_entry(v, current=id(v) in current) for v in chosen] + derived


def _history_entry(version: FactVersion, *, current: bool) -> HistoryEntry:
    return HistoryEntry(
        metric=version.metric,
        period=version.period,
        value=str(version.value),
        precision=str(version.precision),
        currency=version.currency,
        known_at=version.known_at,
        event_id=version.event_id,
        current=current,
        retracted=version.retracted,
    )


def _derived_entry(fact: DerivedFact) -> HistoryEntry:
    return HistoryEntry(
        metric=fact.metric,
        period=fact.period,
        value=str(fact.value),
        precision=str(fact.precision),
        currency=fact.currency,
        known_at=fact.known_at,
        event_id=None,
        current=True,
        derived=True,
        derived_from=fact.derived_from,
    )


status_pages = APIRouter(tags=["status page"], default_response_class=HTMLResponse)
Refresh = Annotated[
    int | None,
    Query(
        ge=MIN_REFRESH_S,
        le=MAX_REFRESH_S,
        description="Reload the page every this many seconds; off when absent.",
    ),
]


@status_pages.get("/")
async def overview(reader: Reader, refresh: Refresh = None) -> HTMLResponse:
    names = await reader.companies()
    states = [await reader.state(company, alerts=0) for company in names]
    return _page(overview_page(states, refresh_s=refresh))


@status_pages.get("/companies/{company}")
async def company_status(company: Company, reader: Reader, refresh: Refresh = None) -> HTMLResponse:
    state, names = await reader.state(company), await reader.companies()
    return _page(company_page(state, names, refresh_s=refresh))


def _page(html: str) -> HTMLResponse:
    headers = {
        "Content-Security-Policy": CONTENT_SECURITY_POLICY,
        "X-Content-Type-Options": "nosniff",
    }
    return HTMLResponse(html, headers=headers)
