"""The local level candidate is the state-space form of ARIMA(0,1,1): once the filter's start
has washed out, its one-step predictions equal statsmodels' SARIMAX(0,1,1) with
θ = (√(q² + 4q) − q − 2) / 2, where q = σ²_η / σ²_ε (Harvey, 1989, §2.5)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose
from statsmodels.tsa.statespace.sarimax import SARIMAX

from services.forecast.core.models import local_level_filter

pytestmark = pytest.mark.unit


def theta_of(ratio: float) -> float:
    return (np.sqrt(ratio**2 + 4 * ratio) - ratio - 2) / 2


@pytest.mark.parametrize("ratio", [0.1, 0.5, 2.0])
def test_local_level_predictions_match_sarimax_0_1_1(ratio: float) -> None:
    rng = np.random.default_rng(7)
    level = 1000 + np.cumsum(rng.normal(0, np.sqrt(ratio) * 20, 60))
    y = level + rng.normal(0, 20, 60)

    ours = local_level_filter(y, ratio)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = SARIMAX(y, order=(0, 1, 1), trend="n")
        reference = model.filter(np.array([theta_of(ratio), 400.0])).predict(
            start=1, end=len(y) - 1
        )

    settled = slice(20, None)  # the two filters start differently; the steady state is the same
    assert_allclose(ours[1:][settled], reference[settled], rtol=1e-6)
