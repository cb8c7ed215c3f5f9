"""`guidepost serve` (the status page and read API) and `guidepost plot` (the charts as PNG)."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from pydantic import ValidationError

from schemas.base import COMPANY_PATTERN
from services.cli.failures import BadInputError, NotFoundError, ensure_reachable
from services.common.settings import ApiSettings, describe_settings_error

if TYPE_CHECKING:
    from services.api.reader import CompanyState

RedisUrlOption = Annotated[
    str | None, typer.Option("--redis-url", help="Overrides GUIDEPOST_REDIS_URL.")
]


def api_settings(**overrides: Any) -> ApiSettings:
    """Settings from the environment (GUIDEPOST_*), with the options given on the command line."""
    return ApiSettings(**{k: v for k, v in overrides.items() if v is not None})


def serve(
    redis_url: RedisUrlOption = None,
    host: Annotated[
        str | None, typer.Option(help="Interface to listen on; overrides GUIDEPOST_HTTP_HOST.")
    ] = None,
    port: Annotated[
        int | None, typer.Option(help="Port to listen on; overrides GUIDEPOST_HTTP_PORT.")
    ] = None,
    allow_unauthenticated: Annotated[
        bool,
        typer.Option(
            "--allow-unauthenticated",
            help="Listen beyond loopback with no token (a proxy in front authenticates); "
            "also GUIDEPOST_HTTP_ALLOW_UNAUTHENTICATED.",
        ),
    ] = False,
) -> None:
    """Serve the status page, the read-only JSON API, /health, /ready and /metrics.

    Set GUIDEPOST_API_TOKEN to require 'Authorization: Bearer <token>' (probes stay open), and
    GUIDEPOST_METRICS_TOKEN to give /metrics a token of its own. Beyond loopback a token is
    required unless --allow-unauthenticated.
    """
    import uvicorn

    from services.api.app import create_api
    from services.common.logging import configure_logging

    settings = serve_settings(
        redis_url=redis_url,
        http_host=host,
        http_port=port,
        http_allow_unauthenticated=allow_unauthenticated or None,
    )
    configure_logging(settings.log_level)
    uvicorn.run(
        create_api(settings),
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,
        log_level=settings.log_level.lower(),
    )


def serve_settings(**overrides: Any) -> ApiSettings:
    """The settings `serve` runs with, or exit 2 with every problem named (no value echoed)."""
    try:
        settings = api_settings(**overrides)
    except ValidationError as error:
        problems = "; ".join(describe_settings_error(error).splitlines())
        raise BadInputError(f"invalid settings: {problems}") from None
    problem = settings.exposure_problem()
    if problem is not None:
        raise BadInputError(problem)
    return settings


def plot(
    company: Annotated[str, typer.Option(help="The company to chart, e.g. ACME.")],
    out: Annotated[
        Path,
        typer.Option(help="Directory for the PNG files (created if missing).", file_okay=False),
    ],
    json_output: Annotated[
        bool, typer.Option("--json", help="Print the written files as JSON.")
    ] = False,
    redis_url: RedisUrlOption = None,
) -> None:
    """Write the company's fan charts (forecast vs guidance) and trend charts as PNG."""
    if not re.match(COMPANY_PATTERN, company):
        raise BadInputError(f"--company {company!r} is not a company identifier (e.g. ACME)")
    if out.exists() and not out.is_dir():
        raise BadInputError(f"--out {out} is not a directory")
    settings = api_settings(redis_url=redis_url)
    ensure_reachable(settings)
    state = asyncio.run(read_state(settings, company))
    written = write_plots(state, out)
    if not written:
        raise NotFoundError(f"nothing to plot: no forecasts or trends are stored for {company}")
    if json_output:
        typer.echo(json.dumps({"company": company, "written": [str(p) for p in written]}))
        return
    for path in written:
        typer.echo(f"wrote {path}")


async def read_state(settings: ApiSettings, company: str) -> CompanyState:
    from services.api.reader import StatusReader
    from services.common.transport import create_redis

    client = create_redis(settings)
    try:
        return await StatusReader(client, settings.streams()).state(company, alerts=0)
    finally:
        await client.aclose()


def write_plots(state: CompanyState, out: Path) -> list[Path]:
    from services.api.charts import fan_charts, trend_charts
    from services.api.png import write_fan_chart, write_trend_chart

    fans = fan_charts(state.forecasts, state.bands, state.versions)
    trends = trend_charts(state.trends, state.versions)
    if fans or trends:
        out.mkdir(parents=True, exist_ok=True)
    return [write_fan_chart(c, out) for c in fans] + [write_trend_chart(c, out) for c in trends]


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
    app.command("plot")(plot)
