"""Fit, forecast and update one metric: candidates, skill weights, calibrated distribution."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd

from services.forecast.core.calibrate import (
    MAX_RATIO_EXPONENT,
    anchored_scale,
    level_scale,
    median_weights,
    robust_z_quantiles,
    skill_weights,
    volatility_scale,
    z_quantiles,
)
from services.forecast.core.data import FREQ, quarter, quarterly_guidance
from services.forecast.core.models import MODELS, ModelRun, Series, last_observed_index, make_series
from services.forecast.core.types import (
    Driver,
    Fitted,
    ForecastSpec,
    MetricForecast,
    ModelSkill,
    Record,
)

MODEL_MIN_OBS = 2
MIN_POOL = 2
MIN_COMBINED_ERRORS = 6


def fit(
    history: pd.DataFrame,
    *,
    metric: str,
    spec: ForecastSpec = ForecastSpec(),
    guidance: pd.DataFrame | None = None,
) -> Fitted:
    """Select parameters on the history, run the rolling-origin record and keep the state."""
    mids = quarterly_guidance(guidance, metric)
    series = _series(history, metric, spec, mids)
    _require_observations(series, metric, spec)
    runs = _run_models(series, spec.models, None)
    return _assemble(series, metric, spec, runs, empty_record(len(runs)), _pack(mids), None)


def forecast(fitted: Fitted, *, target: str | None = None) -> MetricForecast:
    """The calibrated forecast for ``target`` (default: the quarter after the last actual)."""
    ordinal = fitted.last_obs_ordinal + 1 if target is None else int(quarter(target).ordinal)
    column = ordinal - fitted.ahead_start
    if not 0 <= column < fitted.ahead.shape[1]:
        first = pd.Period(ordinal=fitted.ahead_start, freq=FREQ)
        last = pd.Period(ordinal=fitted.ahead_start + fitted.ahead.shape[1] - 1, freq=FREQ)
        raise ValueError(f"target {target!r} outside the forecastable quarters {first}..{last}")
    preds = fitted.ahead[:, column]
    horizon = ordinal - fitted.last_obs_ordinal
    weights, point, quantiles = predictive(
        fitted.record, preds, ordinal=ordinal, scale=fitted.ahead_scale, horizon=horizon,
        spec=fitted.spec,
    )  # fmt: skip
    factor = float(fitted.ahead_factor[column])
    raw = _Raw(fitted.multiplicative, factor)
    drivers = _weighted_drivers(fitted, weights, column, raw)
    return _metric_forecast(fitted, ordinal, raw(point), raw(quantiles), weights, drivers)


class _Raw:
    """Seasonally adjusted values → values as reported, at one quarter's factor."""

    def __init__(self, multiplicative: bool, factor: float) -> None:
        self.multiplicative, self.factor = multiplicative, factor

    def __call__(self, values: Any) -> Any:
        return values * self.factor if self.multiplicative else values + self.factor

    def effect(self, value: float) -> float:
        """A contribution to the point: scaled by a multiplicative factor, unchanged otherwise."""
        return value * self.factor if self.multiplicative else value


def update(
    fitted: Fitted, history: pd.DataFrame, *, guidance: pd.DataFrame | None = None
) -> Fitted:
    """Re-run every candidate with its fixed parameters on the new history and append the
    out-of-sample errors of quarters observed after the fit; no re-selection.

    Once ``spec.full_refit_every`` new observations arrived since the last full fit, refit.
    Restated or back-filled values before the last actual change the state but not the record.
    ``guidance`` (all statements known now) replaces the guidance kept in the fit.
    """
    packed = (
        fitted.guidance if guidance is None else _pack(quarterly_guidance(guidance, fitted.metric))
    )
    mids = {
        pd.Period(ordinal=p, freq=FREQ): (pd.Period(ordinal=i, freq=FREQ), m) for p, i, m in packed
    }
    series = _series(history, fitted.metric, fitted.spec, mids)
    n_obs = int(series.observed[: series.n_hist].sum())
    if n_obs - fitted.refit_n_obs >= fitted.spec.full_refit_every:
        runs = _run_models(series, fitted.spec.models, None)
        return _assemble(
            series, fitted.metric, fitted.spec, runs, empty_record(len(runs)), packed, None
        )
    runs = _run_models(series, fitted.model_names, fitted.params)
    return _assemble(series, fitted.metric, fitted.spec, runs, fitted.record, packed, fitted)


def _pack(mids: dict[pd.Period, tuple[pd.Period, float]]) -> tuple[tuple[int, int, float], ...]:
    """(guided quarter, issuing quarter, midpoint) as ordinals: compact and hashable."""
    return tuple((p.ordinal, i.ordinal, m) for p, (i, m) in sorted(mids.items()))


def predictive(
    record: Record,
    preds: np.ndarray,
    *,
    ordinal: int,
    scale: float,
    horizon: int,
    spec: ForecastSpec,
) -> tuple[np.ndarray, float, np.ndarray]:
    """Weights, point and quantile values for one target from the record before it."""
    record = calibration_pool(record, spec.min_train)
    weights, point = combine(record, preds, ordinal=ordinal, spec=spec, pooled=True)
    probs = np.asarray(spec.quantile_probabilities)
    ratios = spec.skewed and _positive(record, point)
    if spec.calibration == "robust":
        z, ages = calibration_errors(record, ordinal)
        q = robust_z_quantiles(z, ages, probs, spec.calibration_half_life)
    else:
        ages = (ordinal - record.ordinal).astype(float)
        unit = record.scale * np.sqrt(record.horizon)
        z = (
            np.log(record.actual / record.combined) * record.combined / unit
            if ratios
            else (record.actual - record.combined) / unit
        )
        q = z_quantiles(z, ages, probs, spec.half_life)
    spread = scale * np.sqrt(horizon) * q
    if not ratios:
        return weights, point, point + spread
    exponent = np.clip(spread / point, -MAX_RATIO_EXPONENT, MAX_RATIO_EXPONENT)
    return weights, point, point * np.exp(exponent)


def _positive(record: Record, point: float) -> bool:
    """Errors are log ratios (intervals skewed up, as a positive series' are) when every
    actual and combined forecast in the record and the point are positive."""
    return bool(
        point > 0
        and record.actual.size
        and np.all(record.actual > 0)
        and np.all(record.combined > 0)
    )


def record_forecasts(fitted: Fitted) -> list[tuple[MetricForecast, float]]:
    """The out-of-sample forecast and actual of every record entry made from at least
    ``min_train`` observations: what a fit on the history before that quarter forecast then
    (the record is causal, so this equals refitting at every origin).
    """
    record, spec = fitted.record, fitted.spec
    found = []
    for k, ordinal in enumerate(record.ordinal.tolist()):
        if record.n_before[k] < spec.min_train:
            continue
        _, point, quantiles = predictive(
            record.head(k), record.pred[:, k], ordinal=ordinal,
            scale=float(record.scale[k]), horizon=int(record.horizon[k]), spec=spec,
        )  # fmt: skip
        target = str(pd.Period(ordinal=ordinal, freq=FREQ))
        raw = _Raw(fitted.multiplicative, float(record.factor[k]))
        result = grid_forecast(fitted.metric, target, raw(point), raw(quantiles), spec)
        found.append((result, raw(float(record.actual[k]))))
    return found


def grid_forecast(
    metric: str, target: str, point: float, quantiles: np.ndarray, spec: ForecastSpec
) -> MetricForecast:
    """A bare forecast (no model skills or drivers) from a point and its quantile values."""
    grid = tuple(zip(spec.quantile_probabilities, quantiles.tolist(), strict=True))
    values = {round(p, 6): v for p, v in grid}
    lo80, hi80, lo95, hi95 = _interval_values(values, spec.levels)
    return MetricForecast(
        metric, target, point, lo80, hi80, lo95, hi95, grid, (), (), 0, describe(spec)
    )


def calibration_errors(record: Record, ordinal: int) -> tuple[np.ndarray, np.ndarray]:
    """Standardised errors of the combined forecast and their ages; while fewer than
    ``MIN_COMBINED_ERRORS`` exist, every candidate's errors pooled (same quarters, same ages).
    """
    unit = record.scale * np.sqrt(record.horizon)
    ages = (ordinal - record.ordinal).astype(float)
    z = (record.actual - record.combined) / unit
    if z.size >= MIN_COMBINED_ERRORS:
        return z, ages
    candidates = (record.actual[None, :] - record.pred) / unit[None, :]
    pooled = np.concatenate((z, candidates.ravel()))
    pooled_ages = np.concatenate((ages, np.tile(ages, record.pred.shape[0])))
    return pooled, pooled_ages


def combine(
    record: Record, preds: np.ndarray, *, ordinal: int, spec: ForecastSpec, pooled: bool = False
) -> tuple[np.ndarray, float]:
    """Skill weights of the candidates and the weighted point forecast."""
    record = record if pooled else calibration_pool(record, spec.min_train)
    available = np.isfinite(preds)
    if spec.combination == "median":
        weights = median_weights(preds)
    else:
        unit = record.scale * np.sqrt(record.horizon)
        errors = (record.actual[None, :] - record.pred) / unit[None, :]
        weights = skill_weights(errors, ordinal - record.ordinal, available, spec.half_life)
    point = float(np.sum(weights[available] * preds[available])) if available.any() else np.nan
    return weights, point


def calibration_pool(record: Record, min_train: int) -> Record:
    """Errors of forecasts made from at least ``min_train`` observations, the conditions the
    forecasts being weighted and calibrated are made under; the whole record while fewer than
    ``MIN_POOL`` such errors exist (burn-in errors are better than none).
    """
    mature = record.n_before >= min_train
    if mature.sum() < MIN_POOL:
        return record
    return record.select(mature)


def empty_record(models: int) -> Record:
    none = np.zeros(0)
    return Record(
        np.zeros(0, dtype=np.int64), np.zeros((models, 0)), none, none, none, none,
        np.zeros(0, dtype=np.int64), none,
    )  # fmt: skip


def _series(
    history: pd.DataFrame,
    metric: str,
    spec: ForecastSpec,
    mids: dict[pd.Period, tuple[pd.Period, float]],
) -> Series:
    if not isinstance(history.index, pd.PeriodIndex):
        raise ValueError("history needs a quarterly PeriodIndex (see load_history_csv)")
    return make_series(
        history,
        metric=metric,
        horizon=spec.max_horizon,
        driver_names=spec.drivers,
        guidance_mid=mids,
        half_life=spec.half_life,
        seasonal_half_life=spec.seasonal_half_life,
        seasonal_test_level=spec.seasonal_test_level,
    )


def _require_observations(series: Series, metric: str, spec: ForecastSpec) -> None:
    n_obs = int(series.observed.sum())
    if n_obs < spec.min_train:
        raise ValueError(
            f"{metric}: {n_obs} observed values, need at least min_train={spec.min_train}"
        )


def _run_models(
    series: Series, names: tuple[str, ...], params: tuple[tuple[float, ...], ...] | None
) -> dict[str, ModelRun]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return {
            name: MODELS[name](series, None if params is None else params[k], MODEL_MIN_OBS)
            for k, name in enumerate(names)
        }


def _assemble(
    series: Series,
    metric: str,
    spec: ForecastSpec,
    runs: dict[str, ModelRun],
    previous: Record,
    guidance: tuple[tuple[int, int, float], ...],
    fitted: Fitted | None,
) -> Fitted:
    """Extend the record with newly observed quarters and keep forecasts ahead of the data."""
    y, observed = series.y, series.observed
    preds = np.array([run.pred for run in runs.values()])
    last_index = int(np.flatnonzero(observed)[-1])
    after = -1 if fitted is None else fitted.last_obs_ordinal - series.start_ordinal
    record = _extend_record(series, preds, previous, after, spec)
    ahead_drivers = tuple(
        tuple(
            Driver(name, float(values[i]), float(runs["drivers"].driver_effects[name][i]))
            for name, values in runs["drivers"].driver_values.items()
            if np.isfinite(runs["drivers"].driver_effects[name][i])
        )
        if "drivers" in runs
        else ()
        for i in range(last_index + 1, y.size)
    )
    n_obs = int(observed.sum())
    return Fitted(
        metric=metric,
        spec=spec,
        model_names=tuple(runs),
        params=tuple(run.params for run in runs.values()),
        end_ordinal=series.start_ordinal + series.n_hist - 1,
        last_obs_ordinal=series.start_ordinal + last_index,
        n_obs=n_obs,
        record=record,
        ahead_start=series.start_ordinal + last_index + 1,
        ahead=preds[:, last_index + 1 :].copy(),
        ahead_factor=_factors(series)[last_index + 1 :].copy(),
        multiplicative=series.season is None or series.season.multiplicative,
        ahead_scale=error_scale(y, last_index + 1, spec),
        ahead_drivers=ahead_drivers,
        mase_scale=_naive_mae(series.raw),
        guidance=guidance,
        refit_n_obs=n_obs if fitted is None else fitted.refit_n_obs,
    )


def _extend_record(
    series: Series, preds: np.ndarray, record: Record, after: int, spec: ForecastSpec
) -> Record:
    """Append observed positions after ``after`` that some candidate forecast."""
    y, observed = series.y, series.observed
    last = last_observed_index(observed)
    counts = np.concatenate(([0], np.cumsum(observed)[:-1]))
    positions = [
        i
        for i in np.flatnonzero(observed)
        if i > after and last[i] >= 0 and np.isfinite(preds[:, i]).any()
    ]
    for i in positions:
        scale = error_scale(y, int(i), spec)
        horizon = int(i - last[i])
        ordinal = series.start_ordinal + int(i)
        _, point = combine(record, preds[:, i], ordinal=ordinal, spec=spec)
        record = Record(
            np.append(record.ordinal, ordinal),
            np.concatenate((record.pred, preds[:, i : i + 1]), axis=1),
            np.append(record.combined, point),
            np.append(record.actual, y[i]),
            np.append(record.scale, scale),
            np.append(record.horizon, horizon),
            np.append(record.n_before, int(counts[i])),
            np.append(record.factor, _factors(series)[i]),
        )
    return record


def _factors(series: Series) -> np.ndarray:
    if series.season is None:
        return np.ones(series.y.size)
    return np.asarray(series.season.factor)


def error_scale(y: np.ndarray, upto: int, spec: ForecastSpec) -> float:
    """The scale of errors made from the observations before position ``upto``."""
    if spec.error_scale == "level":
        return level_scale(y, upto)
    if spec.error_scale == "anchored":
        return anchored_scale(y, upto)
    return volatility_scale(y, upto)


def _naive_mae(y: np.ndarray) -> float:
    """In-sample MAE of the naive forecast over consecutive observations (MASE scale)."""
    values = y[np.isfinite(y)]
    if values.size < 2:
        return float("nan")
    mae = float(np.mean(np.abs(np.diff(values))))
    return mae if mae > 0 else float("nan")


def _weighted_drivers(
    fitted: Fitted, weights: np.ndarray, column: int, raw: _Raw
) -> tuple[Driver, ...]:
    if "drivers" not in fitted.model_names:
        return ()
    share = float(weights[fitted.model_names.index("drivers")])
    return tuple(
        Driver(d.name, d.value, raw.effect(d.effect * share)) for d in fitted.ahead_drivers[column]
    )


def model_skills(fitted: Fitted, weights: np.ndarray) -> tuple[ModelSkill, ...]:
    """Weight and out-of-sample MAPE (percent) / MASE of each candidate over the record."""
    record = fitted.record
    actual = _as_reported(record.actual, record.factor, fitted.multiplicative)
    pred = _as_reported(record.pred, record.factor[None, :], fitted.multiplicative)
    skills = []
    for k, name in enumerate(fitted.model_names):
        ok = np.isfinite(pred[k]) & (actual != 0)
        errors = actual[ok] - pred[k][ok]
        n = int(ok.sum())
        mape = float(np.mean(np.abs(errors / actual[ok])) * 100) if n else float("nan")
        mase = float(np.mean(np.abs(errors)) / fitted.mase_scale) if n else None
        mase = mase if mase is None or np.isfinite(mase) else None
        skills.append(ModelSkill(name, float(weights[k]), mape, mase, n))
    return tuple(skills)


def _as_reported(values: np.ndarray, factor: np.ndarray, multiplicative: bool) -> np.ndarray:
    return np.asarray(values * factor if multiplicative else values + factor)


def _metric_forecast(
    fitted: Fitted,
    ordinal: int,
    point: float,
    quantiles: np.ndarray,
    weights: np.ndarray,
    drivers: tuple[Driver, ...],
) -> MetricForecast:
    probs = fitted.spec.quantile_probabilities
    values = dict(zip((round(p, 6) for p in probs), quantiles.tolist(), strict=True))
    lo80, hi80, lo95, hi95 = _interval_values(values, fitted.spec.levels)
    used = int(np.isfinite(fitted.ahead[:, ordinal - fitted.ahead_start]).sum())
    return MetricForecast(
        metric=fitted.metric,
        target=str(pd.Period(ordinal=ordinal, freq=FREQ)),
        point=point,
        lo80=lo80,
        hi80=hi80,
        lo95=lo95,
        hi95=hi95,
        quantiles=tuple(zip(probs, quantiles.tolist(), strict=True)),
        models=model_skills(fitted, weights),
        drivers=drivers,
        n_obs=fitted.n_obs,
        method=(
            f"{describe(fitted.spec)} of {used} candidates; calibrated on "
            f"{fitted.record.ordinal.size} out-of-sample errors"
        ),
    )


def _interval_values(
    values: dict[float, float], levels: tuple[float, float]
) -> tuple[float, float, float, float]:
    (lo_a, hi_a), (lo_b, hi_b) = (
        (values[round((1 - level) / 2, 6)], values[round((1 + level) / 2, 6)]) for level in levels
    )
    return lo_a, hi_a, lo_b, hi_b


def describe(spec: ForecastSpec) -> str:
    """The method in words: how candidates are combined and how intervals are calibrated."""
    combination = {"median": "median", "skill": "skill-weighted ensemble"}[spec.combination]
    calibration = {
        "robust": "robust Student-t",
        "rms-empirical": "Student-t/empirical",
    }[spec.calibration]
    return f"{combination} ({calibration} intervals)"
