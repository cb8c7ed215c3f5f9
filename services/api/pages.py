"""The status page, rendered on the server: one self-contained HTML document per request.

No script and nothing fetched: styles are inline and charts are inline SVG, so the page works
behind a locked-down Content-Security-Policy and offline.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from html import escape
from urllib.parse import quote

from schemas.alerts import Alert
from schemas.forecasts import ForecastUpdated
from services.api.charts import (
    FanChart,
    TrendChart,
    band_words,
    fan_charts,
    figure,
    trend_charts,
)
from services.api.reader import CompanyState
from services.api.svg import fan_chart_svg, trend_chart_svg
from services.api.timeline import TimelineEntry, timeline

CONTENT_SECURITY_POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
MIN_REFRESH_S, MAX_REFRESH_S = 5, 3600
REFRESH_CHOICES = ((None, "off"), (30, "30 s"), (60, "1 min"), (300, "5 min"))

STYLE = """
:root { --ink:#1d2733; --muted:#5b6b7c; --line:#d9e0e7; --bg:#f5f7f9; --card:#fff;
  --blue:#1f5fa8; --band:#e0a100; }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  color:var(--ink); background:var(--bg); }
header { background:#14202c; color:#fff; padding:14px 28px; display:flex; gap:24px;
  align-items:baseline; }
header h1 { margin:0; font-size:20px; letter-spacing:.5px; }
header nav a { color:#cfe0f2; margin-right:14px; text-decoration:none; }
main { padding:20px 28px; max-width:1400px; }
section.company { margin-bottom:28px; }
h2 { margin:8px 0 12px; font-size:20px; } h2 a { color:inherit; text-decoration:none; }
h3 { margin:18px 0 8px; font-size:15px; color:var(--muted); text-transform:uppercase;
  letter-spacing:.6px; }
.cards { display:flex; flex-wrap:wrap; gap:16px; }
.card { background:var(--card); border:1px solid var(--line); border-radius:8px;
  padding:12px 14px; }
.card h4 { margin:0 0 4px; font-size:15px; }
.card p { margin:4px 0; color:var(--muted); }
.state { display:inline-block; padding:1px 8px; border-radius:10px; font-size:12px;
  font-weight:600; background:#e6eef7; color:var(--blue); }
.state.likely_below, .state.deteriorating { background:#fdecea; color:#b3261e; }
.state.likely_above, .state.improving { background:#e7f5ea; color:#1e7b34; }
.summary { display:flex; gap:18px; color:var(--muted); margin-bottom:6px; }
.summary b { color:var(--ink); }
table { border-collapse:collapse; background:var(--card); border:1px solid var(--line); }
th, td { padding:6px 10px; border-bottom:1px solid var(--line); text-align:right;
  white-space:nowrap; }
td.text { white-space:normal; }
th:first-child, td:first-child, td.text { text-align:left; }
th { background:#eef2f6; font-weight:600; }
.empty { color:var(--muted); font-style:italic; }
.derived { font-style:italic; }
ol.alert-timeline { list-style:none; margin:0; padding:0 0 0 18px;
  border-left:2px solid var(--line); }
ol.alert-timeline li { position:relative; margin:0 0 10px; padding:6px 10px; background:var(--card);
  border:1px solid var(--line); border-radius:6px; max-width:1100px; }
ol.alert-timeline li::before { content:""; position:absolute; left:-26px; top:11px; width:12px;
  height:12px; border-radius:50%; background:#7a8b9c; border:2px solid var(--bg); }
ol.alert-timeline li.severity-warning::before { background:#e08a00; }
ol.alert-timeline li.severity-critical::before { background:#c62828; }
ol.alert-timeline li.status-resolved::before { background:#2e8b57; }
ol.alert-timeline li.status-informational::before { background:#1f5fa8; }
header .refresh { margin-left:auto; color:#9fb3c8; font-size:12px; }
header .refresh a { color:#cfe0f2; margin-left:8px; text-decoration:none; }
header .refresh a.current { color:#fff; font-weight:600; text-decoration:underline; }
ol.alert-timeline .meta { color:var(--muted); font-size:12px; }
svg { background:var(--card); font-size:11px; }
svg text { fill:var(--muted); }
svg text.chart-title { fill:var(--ink); font-weight:600; font-size:12px; }
svg .legend text { fill:var(--ink); }
svg text.tick.y { text-anchor:end; dominant-baseline:middle; }
svg text.tick.x { text-anchor:middle; }
svg text.tick.x.turned { text-anchor:end; dominant-baseline:hanging; }
svg text.value, svg text.guidance-label { dominant-baseline:middle; }
svg text.value { fill:var(--blue); font-weight:600; }
svg text.guidance-label { fill:#9a6d00; }
svg line.grid { stroke:#edf1f5; }
svg g.history polyline { fill:none; stroke:#2b3a4a; stroke-width:2; }
svg g.history circle, svg rect.swatch.history { fill:#2b3a4a; }
svg .interval-95 { fill:#c9dcf0; }
svg .interval-80 { fill:#86b2de; }
svg g.point-forecast polyline { fill:none; stroke:var(--blue); stroke-width:2;
  stroke-dasharray:5 4; }
svg g.forecast-point circle, svg g.next-forecast circle, svg rect.swatch.point-forecast,
svg rect.swatch.next-forecast { fill:var(--blue); }
svg .guidance-band { fill:var(--band); fill-opacity:.28; }
svg polygon.guidance-band { stroke:var(--band); }
svg rect.swatch.guidance-band { fill-opacity:.5; }
svg line.guidance-edge { stroke:var(--band); stroke-dasharray:3 3; }
svg line.change-point { stroke:#c62828; stroke-dasharray:4 3; }
svg rect.swatch.change-point { fill:#c62828; }
svg line.next-interval { stroke:var(--blue); stroke-width:3; }
"""


def overview_page(states: Sequence[CompanyState], *, refresh_s: int | None = None) -> str:
    body = "".join(_company_overview(state, refresh_s) for state in states)
    if not states:
        body = '<p class="empty">No company has reported anything yet.</p>'
    return _document("Guidepost status", [s.company for s in states], body, "/", refresh_s)


def company_page(
    state: CompanyState, companies: Sequence[str], *, refresh_s: int | None = None
) -> str:
    fans = fan_charts(state.forecasts, state.bands, state.versions)
    trends = trend_charts(state.trends, state.versions)
    body = (
        f'<section class="company" id="company-{escape(state.company)}">'
        f"<h2>{escape(state.company)}</h2>{_summary(state)}"
        "<h3>Forecasts against guidance</h3>"
        + _cards(_fan_card(c) for c in fans)
        + "<h3>All forecasts</h3>"
        + _forecast_table(state.forecasts)
        + "<h3>Delinquency trends</h3>"
        + _cards(_trend_card(c) for c in trends)
        + "<h3>Alert timeline</h3>"
        + alert_timeline(state.alerts)
        + "</section>"
    )
    here = _company_path(state.company)
    return _document(f"Guidepost · {state.company}", companies, body, here, refresh_s)


def _company_overview(state: CompanyState, refresh_s: int | None) -> str:
    guided = [c for c in fan_charts(state.forecasts, state.bands, state.versions) if c.band]
    link = with_refresh(_company_path(state.company), refresh_s)
    return (
        f'<section class="company" id="company-{escape(state.company)}">'
        f'<h2><a href="{link}">{escape(state.company)} ›</a></h2>{_summary(state)}'
        + _cards(_fan_card(c) for c in guided)
        + "</section>"
    )


def _summary(state: CompanyState) -> str:
    items = [
        ("forecasts", len(state.forecasts)),
        ("guidance bands", len(state.bands)),
        ("trends", len(state.trends)),
        ("firing alerts", state.firing),
        ("informational notices", state.informational),
    ]
    return (
        '<div class="summary">'
        + "".join(f"<span>{escape(k)} <b>{v}</b></span>" for k, v in items)
        + "</div>"
    )


def _fan_card(chart: FanChart) -> str:
    state = (
        f'<span class="state {escape(chart.state)}">{escape(chart.state.replace("_", " "))}</span>'
        if chart.state
        else ""
    )
    lines = [
        f"forecast <b>{figure(chart.point)}</b> {escape(chart.unit)}; "
        f"80% {figure(chart.lo80)}–{figure(chart.hi80)}, "
        f"95% {figure(chart.lo95)}–{figure(chart.hi95)}"
    ]
    if chart.band and chart.p_below is not None:
        lines.append(
            f"guidance {band_words(*chart.band)}; "
            f"P(below) {chart.p_below:.0%} · P(inside) {chart.p_inside or 0:.0%} · "
            f"P(above) {chart.p_above or 0:.0%}"
            + (f"; {escape(chart.confidence_word)} confidence" if chart.confidence_word else "")
        )
    if chart.derived_from:
        lines.append(f'<span class="derived">band derived from {escape(chart.derived_from)}</span>')
    return (
        f'<div class="card fan" id="card-{escape(chart.slug)}">'
        f"<h4>{escape(chart.metric)} {escape(chart.period)} {state}</h4>"
        + "".join(f"<p>{line}</p>" for line in lines)
        + fan_chart_svg(chart)
        + "</div>"
    )


def _trend_card(chart: TrendChart) -> str:
    return (
        f'<div class="card trend" id="card-trend-{escape(chart.slug)}">'
        f'<h4>{escape(chart.metric)} <span class="state {escape(chart.verdict)}">'
        f"{escape(chart.verdict.replace('_', ' '))}</span></h4>"
        f"<p>slope {chart.slope:+.2f} pp per period; next {escape(chart.next_period)} "
        f"{chart.next_forecast:.2f}% [{chart.next_lo:.2f}, {chart.next_hi:.2f}]</p>"
        + trend_chart_svg(chart)
        + "</div>"
    )


def _forecast_table(forecasts: Sequence[ForecastUpdated]) -> str:
    if not forecasts:
        return '<p class="empty">No forecasts yet.</p>'
    columns = ("metric", "period", "point", "80%", "95%", "unit", "n obs", "method", "derived")
    head = "".join(f"<th>{h}</th>" for h in columns)
    rows = "".join(
        f"<tr><td>{escape(f.metric)}</td><td>{escape(f.period)}</td>"
        f"<td>{figure(float(f.point))}</td>"
        f"<td>{figure(float(f.lo80))}–{figure(float(f.hi80))}</td>"
        f"<td>{figure(float(f.lo95))}–{figure(float(f.hi95))}</td>"
        f'<td class="text">{escape(f.currency)} {escape(f.scale.value)}</td><td>{f.n_obs}</td>'
        f'<td class="text">{escape(f.method)}</td>'
        f'<td class="text derived">{_derived_inputs(f)}</td></tr>'
        for f in forecasts
    )
    return f'<table class="forecasts"><tr>{head}</tr>{rows}</table>'


def _derived_inputs(forecast: ForecastUpdated) -> str:
    """The history figures an accounting identity filled in, each with its rule on hover."""
    return ", ".join(
        f'<span title="{escape(d.derived_from)}">{escape(d.metric)} {escape(d.period)}</span>'
        for d in forecast.derived_inputs
    )


def alert_timeline(alerts: Sequence[Alert]) -> str:
    """Each notice at the time its fact became known, newest first (see `timeline`)."""
    if not alerts:
        return '<p class="empty">No alerts.</p>'
    items = "".join(_timeline_item(entry) for entry in timeline(alerts))
    return f'<ol class="alert-timeline">{items}</ol>'


def _timeline_item(entry: TimelineEntry) -> str:
    known = f"{'episode known' if entry.at_episode_start else 'known'} {_moment(entry.known_at)}"
    return (
        f'<li class="alert severity-{escape(entry.severity)} status-{escape(entry.status)}">'
        f'<div class="meta"><time datetime="{entry.known_at.isoformat()}">{known}</time> · '
        f"{escape(entry.status)} · {escape(entry.severity)} · {escape(entry.kind)} · "
        f"{escape(entry.subject)} {escape(entry.period)} · notice {entry.notification}, "
        f"processed {_moment(entry.processed_at)}</div>{escape(entry.summary)}</li>"
    )


def _moment(moment: datetime) -> str:
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"


def _cards(cards: Iterable[str]) -> str:
    joined = "".join(cards)
    return f'<div class="cards">{joined}</div>' if joined else '<p class="empty">None yet.</p>'


def _document(
    title: str, companies: Sequence[str], body: str, here: str, refresh_s: int | None
) -> str:
    nav = "".join(
        f'<a href="{escape(with_refresh(_company_path(c), refresh_s))}">{escape(c)}</a>'
        for c in companies
    )
    reload = f'<meta http-equiv="refresh" content="{refresh_s}">' if refresh_s else ""
    home = escape(with_refresh("/", refresh_s))
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"{reload}<title>{escape(title)}</title><style>{STYLE}</style></head><body>"
        f'<header><h1><a href="{home}" style="color:inherit;text-decoration:none">Guidepost'
        f"</a></h1><nav>{nav}</nav>{refresh_control(here, refresh_s)}</header>"
        f"<main>{body}</main></body></html>"
    )


def refresh_control(here: str, refresh_s: int | None) -> str:
    """Links that reload this page every so often (a meta refresh: the page runs no script),
    the current choice marked."""
    links = "".join(
        f'<a href="{escape(with_refresh(here, seconds))}"'
        + (' class="current" aria-current="true"' if seconds == refresh_s else "")
        + f">{escape(words)}</a>"
        for seconds, words in REFRESH_CHOICES
    )
    return f'<span class="refresh">refresh: {links}</span>'


def with_refresh(path: str, refresh_s: int | None) -> str:
    return f"{path}?refresh={refresh_s}" if refresh_s else path


def _company_path(company: str) -> str:
    return f"/companies/{quote(company)}"
