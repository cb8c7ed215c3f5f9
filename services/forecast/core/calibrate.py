"""Skill weights and calibrated predictive distributions from out-of-sample errors.

Errors are standardised before they are pooled: z = (actual - forecast) / (s·√h), with s a
scale known at the origin and h the quarters since the last observation (errors of a random
walk grow like √h). By default s is the series' recent volatility (``volatility_scale``), so
that errors made in a turbulent stretch do not widen the intervals of a calm one (normalised
conformal prediction); ``level_scale`` is the older alternative. Older errors count less:
weight 0.5^(age/half_life).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import special

MAD_TO_SD = 1.4826
SHRINK_PSEUDO_ERRORS = 2.0
EMPIRICAL_PRIOR = 30.0
NO_ERRORS_SCALE = 0.5
VOLATILITY_CHANGES = 4
VOLATILITY_FLOOR = 1e-3


def level_scale(y: np.ndarray, upto: int) -> float:
    """Mean |y| of the last four observed values before position ``upto`` (1.0 if none)."""
    past = y[:upto]
    past = past[np.isfinite(past)][-4:]
    value = float(np.mean(np.abs(past))) if past.size else 1.0
    return value if value > 0 else 1.0


def volatility_scale(y: np.ndarray, upto: int, changes: int = VOLATILITY_CHANGES) -> float:
    """Mean absolute per-quarter change over the last ``changes`` observed changes before
    position ``upto``: s = mean |y_j - y_j'| / √(j - j') over consecutive observations j' < j
    (a change across a gap is spread over its quarters like a random walk step).

    The naive forecast's recent error, i.e. the local difficulty of the series; four changes
    (a year) follow a volatility regime within a year. Floored at 0.1% of ``level_scale`` so
    a flat stretch cannot give a zero scale; ``level_scale`` itself before two observations.
    """
    return _volatilities(y, upto, (changes,))[0]


def _volatilities(y: np.ndarray, upto: int, windows: tuple[int, ...]) -> list[float]:
    """``volatility_scale`` over each window of changes, the steps computed once."""
    seen = np.flatnonzero(np.isfinite(y[:upto]))
    level = level_scale(y, upto)
    if seen.size < 2:
        return [level for _ in windows]
    steps = np.abs(np.diff(y[seen])) / np.sqrt(np.diff(seen))
    return [max(float(steps[-n:].mean()), VOLATILITY_FLOOR * level) for n in windows]


ANCHOR_CHANGES = 16
MAX_RATIO_EXPONENT = math.log(20.0)


def anchored_scale(y: np.ndarray, upto: int) -> float:
    """``volatility_scale`` over the last year, never below the same over the last four years
    (``ANCHOR_CHANGES``): a few calm quarters do not shrink the intervals of a series whose
    history holds breaks, while a turbulent year still widens them."""
    recent, longer = _volatilities(y, upto, (VOLATILITY_CHANGES, ANCHOR_CHANGES))
    return max(recent, longer)


def decay(ages: np.ndarray, half_life: float) -> np.ndarray:
    return np.asarray(0.5 ** (np.asarray(ages, dtype=float) / half_life))


def skill_weights(
    errors: np.ndarray, ages: np.ndarray, available: np.ndarray, half_life: float
) -> np.ndarray:
    """Inverse shrunk mean absolute standardised error per model; 0 for unavailable models.

    errors: (models, records) standardised errors, NaN where a model made no forecast.
    Absolute rather than squared errors: robust to the outliers of a break, and aligned with
    the MAPE the forecasts are judged by. MAE_m is shrunk toward the pooled MAE with two
    pseudo-errors: (n·MAE_m + 2·pool)/(n + 2).
    """
    weights = np.zeros(errors.shape[0])
    if not available.any():
        return weights
    w = decay(ages, half_life)[None, :] * np.isfinite(errors)
    n = np.isfinite(errors).sum(axis=1)
    sq = np.nan_to_num(np.abs(errors))
    with np.errstate(invalid="ignore", divide="ignore"):
        mse = (w * sq).sum(axis=1) / w.sum(axis=1)
    has = available & (n > 0)
    if not has.any():
        weights[available] = 1.0 / available.sum()
        return weights
    pool = float(np.mean(mse[has]))
    own = np.where(n > 0, np.nan_to_num(mse), pool)
    shrunk = (n * own + SHRINK_PSEUDO_ERRORS * pool) / (n + SHRINK_PSEUDO_ERRORS)
    inverse = np.where(available, 1.0 / np.maximum(shrunk, 1e-12), 0.0)
    return np.asarray(inverse / inverse.sum())


def z_quantiles(z: np.ndarray, ages: np.ndarray, probs: np.ndarray, half_life: float) -> np.ndarray:
    """Quantiles of the next standardised error.

    Student-t with n-1 degrees of freedom scaled by the weighted RMS of past errors and
    √(1 + 1/n) (the textbook prediction interval), blended with the weighted empirical
    quantiles in proportion n/(n + 30). With no past errors: t₁ scaled by 0.5.
    Quantiles below the median are capped at 0 and those above floored at 0, so that the
    interval always contains the point forecast.
    """
    finite = np.isfinite(z)
    z, ages = z[finite], ages[finite]
    n = z.size
    if n == 0:
        return np.asarray(NO_ERRORS_SCALE * special.stdtrit(1, probs))
    w = decay(ages, half_life)
    rms = float(np.sqrt(np.sum(w * z**2) / np.sum(w)))
    student = rms * np.sqrt(1 + 1 / n) * special.stdtrit(max(n - 1, 1), probs)
    share = n / (n + EMPIRICAL_PRIOR)
    q = (1 - share) * student + share * weighted_quantiles(z, w, probs)
    capped = np.where(probs < 0.5, np.minimum(q, 0.0), q)
    return np.asarray(np.where(probs > 0.5, np.maximum(capped, 0.0), capped))


def weighted_quantiles(values: np.ndarray, weights: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """Weighted empirical quantiles, plotting positions at the middle of each weight."""
    order = np.argsort(values)
    v, w = values[order], weights[order]
    positions = (np.cumsum(w) - w / 2) / np.sum(w)
    return np.asarray(np.interp(probs, positions, v))


def median_weights(preds: np.ndarray) -> np.ndarray:
    """Weights that make Σ w·ŷ the median of the available forecasts: 1 on the middle one,
    ½ on each of the two middle ones for an even count; 0 for unavailable models.

    The median ignores how far off an extreme candidate is, so a model that extrapolates a
    level shift cannot drag the point; it needs no error history to be estimated.
    """
    weights = np.zeros(preds.size)
    available = np.flatnonzero(np.isfinite(preds))
    if available.size == 0:
        return weights
    order = available[np.argsort(preds[available], kind="stable")]
    middle = (order.size - 1) / 2
    weights[order[int(np.floor(middle))]] += 0.5
    weights[order[int(np.ceil(middle))]] += 0.5
    return weights


def robust_z_quantiles(
    z: np.ndarray, ages: np.ndarray, probs: np.ndarray, half_life: float
) -> np.ndarray:
    """Quantiles of the next standardised error: a Student-t prediction interval with a
    robust, recency-weighted scale.

    s = 1.4826·wmedian(|z|) (the MAD about zero, which a single break-quarter error cannot
    inflate), weights w = 0.5^(age/half_life); q_p = s·√(1 + 1/n)·t_{n-1}(p) with n the
    effective number of errors (Σw)²/Σw² (at least 2). With no past errors: t₁ scaled by 0.5.
    """
    finite = np.isfinite(z)
    z, ages = z[finite], ages[finite]
    if z.size == 0:
        return np.asarray(NO_ERRORS_SCALE * special.stdtrit(1, probs))
    w = decay(ages, half_life)
    scale = MAD_TO_SD * float(weighted_quantiles(np.abs(z), w, np.array([0.5]))[0])
    n = max(float(np.sum(w) ** 2 / np.sum(w**2)), 2.0)
    return np.asarray(scale * np.sqrt(1 + 1 / n) * special.stdtrit(n - 1, probs))
