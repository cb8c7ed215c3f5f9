"""Per-event forecast update cost and the backtested recalibration of many companies' net
income, against statsforecast's AutoETS `cross_validation` on the same series and windows.

Series: seeded synthetic 24-quarter net income (CNY millions) resembling the bundled history:
a level near 500–1,500, drift, noise and an occasional level shift. Update cost: `update` of a
fitted state with one new quarter, then `forecast` (what the forecast worker does per event).
Recalibration: `run_backtest` of net income (one-step-ahead, expanding window, every quarter
with at least `min_train` earlier ones) for every company, in a pool of one process per core.
Baseline: AutoETS one-step-ahead cross-validation over the same last `WINDOWS` quarters (h=1,
step 1); Guidepost's backtest rows are restricted to those quarters too (its one fit per company
computes the earlier ones as well, so its cost is not reduced by the restriction).
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pandas as pd

from bench.common import arguments, emit, log, peak_rss_mb, percentile_ms
from services.forecast.core import fit, forecast, run_backtest, update

QUARTERS = 24
FIRST = "2018Q1"
WINDOWS = 16  # AutoETS refuses fewer than 8 training points ("tiny datasets")
BACKTEST_START = str(pd.Period(FIRST, freq="Q-DEC") + QUARTERS - WINDOWS)


def series(seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    level = rng.uniform(500, 1500)
    steps = rng.normal(rng.uniform(-5, 25), level * 0.04, QUARTERS)
    shift = np.where(
        np.arange(QUARTERS) >= rng.integers(8, QUARTERS), rng.normal(0, level * 0.1), 0
    )
    index = pd.period_range(FIRST, periods=QUARTERS, freq="Q-DEC", name="period")
    return pd.DataFrame({"net_income": level + np.cumsum(steps) + shift}, index=index)


def update_costs(companies: int) -> list[float]:
    costs = []
    for seed in range(companies):
        history = series(seed)
        fitted = fit(history.iloc[:-1], metric="net_income")
        started = time.perf_counter()
        forecast(update(fitted, history))
        costs.append(time.perf_counter() - started)
    return costs


def backtest_one(seed: int) -> int:
    report = run_backtest(series(seed), metrics=["net_income"], start=BACKTEST_START)
    return len(report.forecasts)


def recalibrate(companies: int, workers: int) -> tuple[float, int]:
    started = time.perf_counter()
    with ProcessPoolExecutor(workers) as pool:
        rows = sum(pool.map(backtest_one, range(companies), chunksize=16))
    return time.perf_counter() - started, rows


def statsforecast_cv(companies: int, windows: int, workers: int) -> float:
    from statsforecast import StatsForecast
    from statsforecast.models import AutoETS

    frames = []
    for seed in range(companies):
        history = series(seed)
        frames.append(
            pd.DataFrame(
                {
                    "unique_id": f"C{seed}",
                    "ds": pd.PeriodIndex(history.index).to_timestamp(how="end").normalize(),
                    "y": history["net_income"].to_numpy(),
                }
            )
        )
    data = pd.concat(frames, ignore_index=True)
    model = StatsForecast(models=[AutoETS(season_length=1)], freq="QE", n_jobs=workers)
    warm = data[data["unique_id"] == "C0"]
    model.cross_validation(df=warm, h=1, n_windows=2, step_size=1)  # compile before timing
    started = time.perf_counter()
    model.cross_validation(df=data, h=1, n_windows=windows, step_size=1)
    return time.perf_counter() - started


def main() -> None:
    args = arguments(__doc__ or "", companies=1_000, update_companies=200)
    workers = os.cpu_count() or 1
    log("update cost")
    costs = update_costs(args.update_companies)
    windows = WINDOWS
    log(f"recalibration: {args.companies} companies, {windows} windows each")
    recalibrate_s, rows = recalibrate(args.companies, workers)
    log("baseline: statsforecast AutoETS cross_validation")
    baseline_s = statsforecast_cv(args.companies, windows, workers)
    emit(
        {
            "companies": args.companies,
            "quarters": QUARTERS,
            "windows": windows,
            "backtest_rows": rows,
            "update_p50_ms": percentile_ms(costs, 50),
            "update_p99_ms": percentile_ms(costs, 99),
            "recalibrate_s": round(recalibrate_s, 2),
            "baseline_s": round(baseline_s, 2),
            "ratio": round(recalibrate_s / baseline_s, 3),
            "peak_rss_mb": peak_rss_mb(),
            "processes": workers,
        },
        as_json=args.json,
    )


if __name__ == "__main__":
    main()
