"""Panel backtest: the last N quarters of many series, one step ahead, expanding window.

A panel is a long table ``series, quarter, value`` with optional ``low, high`` (a band guided
for that quarter, known before it). Every series is fitted once: its out-of-sample record is
exactly what refits at every origin forecast (``engine.record_forecasts``). Where a row has a
band, the series plays the part of a company in the store: its call is the statistical
forecast stacked with the guidance evidence, the prior of where actuals land learned across
every series' landings known before that quarter (empirical Bayes) and the stacking weight
from every call resolved before it.

Scores: MAPE and sMAPE (percent), MASE (absolute error over the in-sample mean absolute
seasonal-naive error, lag 4, of the series before its first scored quarter; lag 1 when it is
too short: Hyndman & Koehler 2006), coverage of the 80% and 95% intervals (percent), and for
banded rows the 3-class Brier and ranked probability scores.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from os import PathLike
from typing import Any

import numpy as np
import pandas as pd

from services.common.distribution import pit, score_call
from services.forecast.core.data import FREQ, quarter
from services.forecast.core.engine import fit, record_forecasts
from services.forecast.core.evidence import GuidedBand, PositionPrior, learned_prior
from services.forecast.core.guided import Evidence, Landing, PastCall, past_call
from services.forecast.core.types import ForecastSpec, MetricForecast

VALUE = "value"
REQUIRED = ("series", "quarter", "value")
OPTIONAL = ("low", "high")
MAX_ROWS = 2_000_000
Progress = Callable[[int, int], None]


class PanelError(ValueError):
    """A malformed panel file: says which line and why."""


@dataclass(frozen=True)
class PanelForecast:
    period: str
    forecast: float
    lo80: float
    hi80: float
    lo95: float
    hi95: float
    actual: float
    pit: float | None = None
    low: float | None = None
    high: float | None = None
    p_below: float | None = None
    p_inside: float | None = None
    p_above: float | None = None
    outcome: str | None = None
    brier: float | None = None
    rps: float | None = None
    log_score: float | None = None


@dataclass(frozen=True)
class PanelSeries:
    series: str
    forecasts: tuple[PanelForecast, ...]


@dataclass(frozen=True)
class PanelSummary:
    series: int
    forecasts: int
    mape: float | None
    smape: float | None
    mase: float | None
    coverage80: float | None
    coverage95: float | None
    seconds: float
    calls: int = 0
    brier: float | None = None
    rps: float | None = None
    p_below: float | None = None
    p_inside: float | None = None
    p_above: float | None = None


@dataclass(frozen=True)
class PanelReport:
    series: tuple[PanelSeries, ...]
    summary: PanelSummary

    def to_dict(self) -> dict[str, Any]:
        def clean(row: PanelForecast) -> dict[str, Any]:
            return {k: v for k, v in asdict(row).items() if v is not None or k in _ALWAYS}

        return {
            "series": [
                {"series": s.series, "forecasts": [clean(f) for f in s.forecasts]}
                for s in self.series
            ],
            "summary": asdict(self.summary),
        }


_ALWAYS = {"period", "forecast", "lo80", "hi80", "lo95", "hi95", "actual"}


# --------------------------------------------------------------------------- reading


def load_panel_csv(path: str | PathLike[str]) -> pd.DataFrame:
    """The panel as a frame; a malformed row is a ``PanelError`` naming its line."""
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        columns = reader.fieldnames or []
        missing = [c for c in REQUIRED if c not in columns]
        if missing:
            raise PanelError(f"line 1: panel needs columns {list(REQUIRED)}, missing {missing}")
        rows = [_parse(line, row) for line, row in enumerate(reader, start=2)]
        if len(rows) > MAX_ROWS:
            raise PanelError(f"panel has {len(rows)} rows; the limit is {MAX_ROWS}")
    frame = pd.DataFrame(rows, columns=[*REQUIRED, *OPTIONAL, "line"])
    duplicated = frame.duplicated(subset=["series", "quarter"], keep="first")
    if duplicated.any():
        first = frame.loc[duplicated].iloc[0]
        raise PanelError(
            f"line {first['line']}: series {first['series']!r} repeats quarter {first['quarter']}"
        )
    return frame


def _parse(line: int, row: dict[str, str | None]) -> dict[str, Any]:
    name = (row.get("series") or "").strip()
    if not name:
        raise PanelError(f"line {line}: 'series' is empty")
    try:
        period = quarter((row.get("quarter") or "").strip())
    except ValueError as error:
        raise PanelError(f"line {line}: 'quarter' {error}") from None
    value = _number(line, "value", row.get("value"), required=True)
    low, high = (_number(line, c, row.get(c), required=False) for c in OPTIONAL)
    if low is not None and high is not None and high < low:
        raise PanelError(f"line {line}: 'high' {high} is below 'low' {low}")
    return {"series": name, "quarter": period, "value": value, "low": low, "high": high,
            "line": line}  # fmt: skip


def _number(line: int, column: str, text: str | None, *, required: bool) -> float | None:
    cleaned = (text or "").strip()
    if not cleaned:
        if required:
            raise PanelError(f"line {line}: '{column}' is empty")
        return None
    try:
        number = float(cleaned)
    except ValueError:
        raise PanelError(f"line {line}: '{column}' is not a number: {cleaned!r}") from None
    if not np.isfinite(number):
        raise PanelError(f"line {line}: '{column}' is not finite: {cleaned!r}")
    return number


# --------------------------------------------------------------------------- backtest


@dataclass(frozen=True)
class _Item:
    """One scored or guided quarter of one series."""

    series: str
    statistical: MetricForecast
    actual: float
    band: GuidedBand | None


def run_panel(
    panel: pd.DataFrame,
    *,
    last: int,
    spec: ForecastSpec = ForecastSpec(),
    progress: Progress | None = None,
) -> PanelReport:
    """Score the last ``last`` quarters of every series (module docstring)."""
    if last < 1:
        raise ValueError(f"last must be at least 1, got {last}")
    started = time.perf_counter()
    names = list(dict.fromkeys(panel["series"]))
    items: list[_Item] = []
    scales: dict[str, float] = {}
    for done, name in enumerate(names, start=1):
        found, scales[name] = _series_items(panel[panel["series"] == name], name, last, spec)
        items.extend(found)
        if progress is not None:
            progress(done, len(names))
    scored = _call_bands(items, last)
    by_series = [PanelSeries(name, tuple(f for s, f in scored if s == name)) for name in names]
    seconds = time.perf_counter() - started
    return PanelReport(tuple(by_series), _summary(by_series, scales, seconds))


def _series_items(
    rows: pd.DataFrame, name: str, last: int, spec: ForecastSpec
) -> tuple[list[_Item], float]:
    frame = _frame(rows)
    fitted = fit(frame, metric=VALUE, spec=spec)
    pairs = record_forecasts(fitted)
    bands = {
        quarter(p): _band(lo, hi)
        for p, lo, hi in zip(frame.index, frame["low"], frame["high"], strict=True)
    }
    scored_from = frame.index[frame[VALUE].notna()][-last] if len(pairs) else frame.index[-1]
    keep = [
        _Item(name, f, a, bands.get(quarter(f.target)))
        for f, a in pairs
        if quarter(f.target) >= scored_from or bands.get(quarter(f.target)) is not None
    ]
    return keep, _mase_scale(frame[VALUE], scored_from)


def _frame(rows: pd.DataFrame) -> pd.DataFrame:
    indexed = rows.set_index(pd.PeriodIndex(rows["quarter"], freq=FREQ, name="period"))
    indexed = indexed.sort_index()
    full = pd.period_range(indexed.index.min(), indexed.index.max(), freq=FREQ, name="period")
    values = indexed[[VALUE, "low", "high"]].astype(float)
    return pd.DataFrame(values.reindex(full))


def _band(low: float, high: float) -> GuidedBand | None:
    lo = None if not np.isfinite(low) else float(low)
    hi = None if not np.isfinite(high) else float(high)
    return None if lo is None and hi is None else GuidedBand(lo, hi)


def _mase_scale(values: pd.Series, before: pd.Period) -> float:
    past = values[values.index < before].to_numpy(dtype=float)
    for lag in (4, 1):
        diffs = np.abs(past[lag:] - past[:-lag])
        diffs = diffs[np.isfinite(diffs)]
        if diffs.size and float(diffs.mean()) > 0:
            return float(diffs.mean())
    return float("nan")


def _call_bands(items: list[_Item], last: int) -> list[tuple[str, PanelForecast]]:
    """Every banded quarter called in period order with what all series knew before it."""
    landings: dict[str, list[Landing]] = {}
    resolved: list[PastCall] = []
    out: list[tuple[str, PanelForecast]] = []
    for period, group in _by_period(items):
        evidence = Evidence(_prior_before(landings, period), tuple(resolved))
        new_calls, new_landings = [], []
        for item in group:
            row = _plain(item)
            if item.band is not None:
                call = evidence.call(
                    item.statistical, item.band, landings=landings.get(item.series, []), past=()
                )
                row = _banded(row, call.forecast, item.band)
                new_calls.append(past_call(call, item.statistical, item.actual))
                position = item.band.position(item.actual)
                new_landings.append((item.series, Landing(VALUE, str(period), position,
                                                          int((period + 1).ordinal))))  # fmt: skip
            out.append((item.series, row))
        resolved.extend(new_calls)
        for series, landing in new_landings:
            landings.setdefault(series, []).append(landing)
    return _last_per_series(out, last)


def _by_period(items: list[_Item]) -> Iterator[tuple[pd.Period, list[_Item]]]:
    ordered = sorted(items, key=lambda item: quarter(item.statistical.target).ordinal)
    for ordinal in dict.fromkeys(quarter(i.statistical.target).ordinal for i in ordered):
        period = pd.Period(ordinal=ordinal, freq=FREQ)
        yield period, [i for i in ordered if quarter(i.statistical.target).ordinal == ordinal]


def _prior_before(landings: dict[str, list[Landing]], period: pd.Period) -> PositionPrior:
    positions = {
        series: [x.position for x in found if x.known_from <= period.ordinal]
        for series, found in landings.items()
    }
    return learned_prior(positions)


def _plain(item: _Item) -> PanelForecast:
    f = item.statistical
    return PanelForecast(
        f.target, f.point, f.lo80, f.hi80, f.lo95, f.hi95, item.actual,
        pit=pit(f.quantiles, item.actual),
    )  # fmt: skip


def _banded(row: PanelForecast, result: MetricForecast, band: GuidedBand) -> PanelForecast:
    scored = score_call(result.quantiles, low=band.low, high=band.high, actual=row.actual)
    return replace(
        row,
        forecast=result.point,
        lo80=result.lo80,
        hi80=result.hi80,
        lo95=result.lo95,
        hi95=result.hi95,
        pit=pit(result.quantiles, row.actual),
        **asdict(scored),
    )


def _last_per_series(
    rows: list[tuple[str, PanelForecast]], last: int
) -> list[tuple[str, PanelForecast]]:
    kept: list[tuple[str, PanelForecast]] = []
    for name in dict.fromkeys(s for s, _ in rows):
        mine = sorted((f for s, f in rows if s == name), key=lambda f: quarter(f.period))
        kept.extend((name, f) for f in mine[-last:])
    return kept


def _summary(
    series: Sequence[PanelSeries], scales: dict[str, float], seconds: float
) -> PanelSummary:
    rows = [(s.series, f) for s in series for f in s.forecasts]
    if not rows:
        return PanelSummary(len(series), 0, None, None, None, None, None, round(seconds, 3))
    actual = np.array([f.actual for _, f in rows])
    point = np.array([f.forecast for _, f in rows])
    error = np.abs(actual - point)
    nonzero = actual != 0
    scale = np.array([scales[name] for name, _ in rows])
    banded = [f for _, f in rows if f.outcome is not None]
    return PanelSummary(
        series=len(series),
        forecasts=len(rows),
        mape=_mean(100 * error[nonzero] / np.abs(actual[nonzero])),
        smape=_mean(200 * error / (np.abs(actual) + np.abs(point))),
        mase=_mean((error / scale)[np.isfinite(scale)]),
        coverage80=_mean(100 * np.array([f.lo80 <= f.actual <= f.hi80 for _, f in rows])),
        coverage95=_mean(100 * np.array([f.lo95 <= f.actual <= f.hi95 for _, f in rows])),
        seconds=round(seconds, 3),
        calls=len(banded),
        brier=_mean(np.array([f.brier for f in banded], dtype=float)),
        rps=_mean(np.array([f.rps for f in banded], dtype=float)),
        p_below=_mean(np.array([f.p_below for f in banded], dtype=float)),
        p_inside=_mean(np.array([f.p_inside for f in banded], dtype=float)),
        p_above=_mean(np.array([f.p_above for f in banded], dtype=float)),
    )


def _mean(values: np.ndarray) -> float | None:
    values = values[np.isfinite(values)]
    return float(values.mean()) if values.size else None
