"""Reading quarterly history and guidance tables into frames the core understands.

History: one row per fiscal quarter, a ``PeriodIndex`` (freq ``Q-DEC``) named ``period``, one
float column per metric, NaN where a figure is unknown. Missing quarters are added as all-NaN
rows so that the index is contiguous; nothing is ever interpolated.
"""

from __future__ import annotations

from os import PathLike

import numpy as np
import pandas as pd

FREQ = "Q-DEC"
NON_NUMERIC_COLUMNS = ("source_url", "period_end")
GUIDANCE_COLUMNS = (
    "issued_in_quarter",
    "for_quarter",
    "metric",
    "low",
    "high",
    "yoy_low_pct",
    "yoy_high_pct",
)
GUIDANCE_FLOATS = ("low", "high", "yoy_low_pct", "yoy_high_pct")


def quarter(label: str | pd.Period) -> pd.Period:
    """``'2024Q2'`` (or a Period) as a quarterly Period."""
    try:
        return pd.Period(label, freq=FREQ)
    except ValueError as error:
        raise ValueError(f"expected a quarter like '2024Q2', got {label!r}") from error


def load_history_csv(path: str | PathLike[str]) -> pd.DataFrame:
    """Quarterly history from a CSV with a ``quarter`` column (``2024Q1``) and metric columns."""
    raw = pd.read_csv(path, dtype={"quarter": str})
    if "quarter" not in raw.columns:
        raise ValueError(f"{path}: expected a 'quarter' column, got {list(raw.columns)}")
    return history_frame(raw.set_index("quarter"))


def history_frame(raw: pd.DataFrame) -> pd.DataFrame:
    """Normalise a frame indexed by quarter labels: float columns, contiguous PeriodIndex."""
    frame = raw.drop(columns=[c for c in NON_NUMERIC_COLUMNS if c in raw.columns])
    index = pd.PeriodIndex([quarter(label) for label in frame.index], name="period")
    if index.has_duplicates:
        raise ValueError(f"duplicate quarters in history: {sorted(set(index[index.duplicated()]))}")
    frame = frame.set_axis(index).apply(pd.to_numeric, errors="coerce").astype(float)
    frame = frame.sort_index()
    full = pd.period_range(index.min(), index.max(), freq=FREQ, name="period")
    return pd.DataFrame(frame.reindex(full))


def load_guidance_csv(path: str | PathLike[str]) -> pd.DataFrame:
    """Guidance statements: issuing quarter, guided period (``2024Q2`` or ``FY2020``), range."""
    raw = pd.read_csv(path, dtype={"issued_in_quarter": str, "for_quarter": str, "metric": str})
    missing = [c for c in GUIDANCE_COLUMNS[:4] if c not in raw.columns]
    if missing:
        raise ValueError(f"{path}: guidance needs columns {missing}")
    return guidance_frame(raw)


def guidance_frame(raw: pd.DataFrame) -> pd.DataFrame:
    """Guidance with the standard columns, floats as floats (NaN when absent)."""
    frame = raw.copy()
    for column in GUIDANCE_FLOATS:
        values = frame[column] if column in frame.columns else np.nan
        frame[column] = pd.to_numeric(values, errors="coerce")
        frame[column] = frame[column].astype(float)
    for column in GUIDANCE_COLUMNS[:3]:
        frame[column] = frame[column].astype(object).map(lambda v: str(v).strip())
    return frame.loc[:, list(GUIDANCE_COLUMNS)].reset_index(drop=True)


def quarterly_guidance(
    guidance: pd.DataFrame | None, metric: str
) -> dict[pd.Period, tuple[pd.Period, float]]:
    """Latest guided midpoint per quarter for one metric, with the quarter it was issued in.

    Fiscal-year guidance is ignored here (it guides a sum, not a quarter).
    """
    if guidance is None or guidance.empty:
        return {}
    rows = guidance[(guidance["metric"] == metric) & guidance["for_quarter"].str.match(r"^\d{4}Q")]
    midpoints: dict[pd.Period, tuple[pd.Period, float]] = {}
    for row in rows.sort_values("issued_in_quarter").itertuples(index=False):
        mid = _midpoint(_as_float(row.low), _as_float(row.high))
        if np.isfinite(mid):
            midpoints[quarter(str(row.for_quarter))] = (quarter(str(row.issued_in_quarter)), mid)
    return midpoints


def guidance_before(guidance: pd.DataFrame | None, period: pd.Period) -> pd.DataFrame | None:
    """Guidance statements issued before ``period`` (what a forecaster then could know)."""
    if guidance is None:
        return None
    issued = guidance["issued_in_quarter"].map(lambda label: quarter(label) < period)
    return guidance.loc[issued.astype(bool)]


def guidance_band(
    guidance: pd.DataFrame | None, *, metric: str, period: pd.Period
) -> tuple[float, float] | None:
    """The latest (low, high) range guided for ``metric`` in ``period``, if any."""
    if guidance is None or guidance.empty:
        return None
    rows = guidance[(guidance["metric"] == metric) & (guidance["for_quarter"] == str(period))]
    rows = rows.dropna(subset=["low", "high"]).sort_values("issued_in_quarter")
    if rows.empty:
        return None
    last = rows.iloc[-1]
    return float(last["low"]), float(last["high"])


def _as_float(value: object) -> float:
    return float(value)  # type: ignore[arg-type]


def _midpoint(low: float, high: float) -> float:
    if np.isfinite(low) and np.isfinite(high):
        return (low + high) / 2
    return low if np.isfinite(low) else high
