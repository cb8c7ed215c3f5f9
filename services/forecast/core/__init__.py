"""The pure forecasting core: numpy, pandas, scipy and statsmodels only.

Frozen inputs (history frames, ``ForecastSpec``), frozen outputs (``Fitted``, ``MetricForecast``,
``BacktestReport``). ``fit`` → ``forecast``; ``update`` folds new quarters into a fit cheaply.
"""

from services.forecast.core.backtest import run_backtest
from services.forecast.core.company import forecast_company
from services.forecast.core.data import load_guidance_csv, load_history_csv
from services.forecast.core.engine import fit, forecast, update
from services.forecast.core.types import (
    BacktestReport,
    BacktestRow,
    BandProbabilities,
    Driver,
    Fitted,
    ForecastSpec,
    MetricForecast,
    MetricSummary,
    ModelSkill,
    Record,
)

__all__ = [
    "BacktestReport",
    "BacktestRow",
    "BandProbabilities",
    "Driver",
    "Fitted",
    "ForecastSpec",
    "MetricForecast",
    "MetricSummary",
    "ModelSkill",
    "Record",
    "fit",
    "forecast",
    "forecast_company",
    "load_guidance_csv",
    "load_history_csv",
    "run_backtest",
    "update",
]
