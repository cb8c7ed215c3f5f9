"""Reading quarterly history and guidance tables into frames the core understands.

History: one row per fiscal quarter, a ``PeriodIndex`` (freq ``Q-DEC``) named ``period``, one
float column per metric, NaN where a figure is unknown. Missing quarters are added as all-NaN
rows so that the index is contiguous; nothing is ever interpolated, and a gap is filled only
where an accounting identity determines it (`identities`).
"""

from __future__ import annotations

from os import PathLike

import numpy as np
import pandas as pd

from services.common.guidance_rules import derive_yoy_band
from services.forecast.core.identities import Filled, fill_identities

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
    """Quarterly history from a CSV with a ``quarter`` column (``2024Q1``) and metric columns,
    its gaps filled where accounting identities determine them (`identities`; the fills are
    listed by `load_history_with_derivations`)."""
    return load_history_with_derivations(path).frame


def load_history_with_derivations(path: str | PathLike[str]) -> Filled:
    """`load_history_csv`'s frame and the figures the identities derived in it."""
    raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    if "quarter" not in raw.columns:
        raise ValueError(f"{path}: expected a 'quarter' column, got {list(raw.columns)}")
    _require_numbers(raw, path)
    return fill_identities(history_frame(raw.set_index("quarter")))


def _require_numbers(raw: pd.DataFrame, path: str | PathLike[str]) -> None:
    """Every non-empty figure parses as a finite number: a cell like ``12x`` is an error
    naming its line and column, never a silent gap."""
    columns = [c for c in raw.columns if c != "quarter" and c not in NON_NUMERIC_COLUMNS]
    for offset, row in enumerate(raw[["quarter", *columns]].itertuples(index=False), start=2):
        label = str(row[0]).strip()
        for column, cell in zip(columns, row[1:], strict=True):
            text = str(cell).strip()
            if text and not _is_finite_number(text):
                raise ValueError(
                    f"{path}, line {offset} ({label or 'no quarter'}): {column} is not a "
                    f"number: {text!r}"
                )


def _is_finite_number(text: str) -> bool:
    try:
        return bool(np.isfinite(float(text)))
    except ValueError:
        return False


def history_frame(raw: pd.DataFrame) -> pd.DataFrame:
    """Normalise a frame indexed by quarter labels: float columns, contiguous PeriodIndex."""
    frame = raw.drop(columns=[c for c in NON_NUMERIC_COLUMNS if c in raw.columns])
    index = pd.PeriodIndex([quarter(label) for label in frame.index], name="period")
    if index.has_duplicates:
        raise ValueError(f"duplicate quarters in history: {sorted(set(index[index.duplicated()]))}")
    blank = frame.map(lambda v: isinstance(v, str) and not v.strip())
    frame = frame.mask(blank).set_axis(index).apply(pd.to_numeric, errors="coerce").astype(float)
    frame = frame.sort_index()
    full = pd.period_range(index.min(), index.max(), freq=FREQ, name="period")
    return pd.DataFrame(frame.reindex(full))


def load_guidance_csv(
    path: str | PathLike[str], *, history: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Guidance statements: issuing quarter, guided period (``2024Q2`` or ``FY2020``), range.
    A row with empty low and high states growth alone (yoy_low_pct, yoy_high_pct); with
    ``history`` its band is derived from the prior year's actual (`derive_yoy_bands`)."""
    raw = pd.read_csv(path, dtype={"issued_in_quarter": str, "for_quarter": str, "metric": str})
    missing = [c for c in GUIDANCE_COLUMNS[:4] if c not in raw.columns]
    if missing:
        raise ValueError(f"{path}: guidance needs columns {missing}")
    frame = guidance_frame(raw)
    return frame if history is None else derive_yoy_bands(frame, history)


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
    guidance: pd.DataFrame | None,
    *,
    metric: str,
    period: pd.Period | str,
    history: pd.DataFrame | None = None,
) -> tuple[float | None, float | None] | None:
    """The latest (low, high) guided for ``metric`` in ``period`` (a quarter or ``FY2024``),
    if any; one bound is None when the statement gave only the other. With ``history``,
    guidance stated as year-on-year growth alone gets its band derived from the prior year's
    actual there (see `derive_yoy_bands`)."""
    if guidance is None or guidance.empty:
        return None
    if history is not None:
        guidance = derive_yoy_bands(guidance, history)
    rows = guidance[(guidance["metric"] == metric) & (guidance["for_quarter"] == str(period))]
    rows = rows.dropna(subset=["low", "high"], how="all").sort_values("issued_in_quarter")
    if rows.empty:
        return None
    last = rows.iloc[-1]
    return _stated(_as_float(last["low"])), _stated(_as_float(last["high"]))


def derive_yoy_bands(guidance: pd.DataFrame, history: pd.DataFrame) -> pd.DataFrame:
    """Guidance with the bands of growth-only statements filled in from ``history``.

    A row with no low and high but a stated growth gets low = prior x (1 + yoy_low_pct / 100)
    and high = prior x (1 + yoy_high_pct / 100) for each stated bound (the other stays NaN),
    where prior is the metric's actual in the same quarter a year earlier (for ``FY2024``, the
    sum of the four quarters of 2023). Rows whose prior is unknown or not positive keep their
    NaN band. The ``derived_from`` column says what each derived band rests on.
    """
    frame = guidance.copy()
    if "derived_from" not in frame.columns:
        frame["derived_from"] = pd.Series([None] * len(frame), index=frame.index, dtype=object)
    for index, row in frame.iterrows():
        derived = _derived_band(row, history)
        if derived is not None:
            frame.loc[index, ["low", "high"]] = derived[0], derived[1]
            frame.loc[index, "derived_from"] = derived[2]
    return frame


def _derived_band(row: pd.Series, history: pd.DataFrame) -> tuple[float, float, str] | None:
    low, high, yoy_low, yoy_high = (
        _as_float(row[c]) for c in ("low", "high", "yoy_low_pct", "yoy_high_pct")
    )
    if np.isfinite(low) or np.isfinite(high) or not (np.isfinite(yoy_low) or np.isfinite(yoy_high)):
        return None
    prior = prior_year_actual(history, metric=str(row["metric"]), period=str(row["for_quarter"]))
    if prior is None or prior[1] <= 0:
        return None
    label, value = prior
    low_bound, high_bound = derive_yoy_band(
        prior_actual=value, yoy_low_pct=_stated(yoy_low), yoy_high_pct=_stated(yoy_high)
    )
    text = f"the {label} actual of {value:,.1f} grown {_growth_words(yoy_low, yoy_high)}"
    return _or_nan(low_bound), _or_nan(high_bound), text


def _stated(value: float) -> float | None:
    return value if np.isfinite(value) else None


def _or_nan(value: float | None) -> float:
    return np.nan if value is None else value


def prior_year_actual(
    history: pd.DataFrame, *, metric: str, period: str
) -> tuple[str, float] | None:
    """(label, value) of the prior year's actual of ``period`` (a quarter, or FYyyyy: the sum
    of that year's four quarters), None when not all of it is in ``history``."""
    if metric not in history.columns:
        return None
    if period.startswith("FY"):
        year = int(period[2:]) - 1
        quarters = [quarter(f"{year}Q{q}") for q in range(1, 5)]
        label = f"FY{year}"
    else:
        quarters = [quarter(period) - 4]
        label = str(quarters[0])
    values = [history[metric].get(q, np.nan) for q in quarters]
    if not all(np.isfinite(v) for v in values):
        return None
    return label, float(sum(values))


def _growth_words(low: float, high: float) -> str:
    if np.isfinite(low) and np.isfinite(high):
        return f"{low:+.1f}% to {high:+.1f}%"
    return f"at least {low:+.1f}%" if np.isfinite(low) else f"at most {high:+.1f}%"


def _as_float(value: object) -> float:
    return float(value)  # type: ignore[arg-type]


def _midpoint(low: float, high: float) -> float:
    if np.isfinite(low) and np.isfinite(high):
        return (low + high) / 2
    return low if np.isfinite(low) else high
