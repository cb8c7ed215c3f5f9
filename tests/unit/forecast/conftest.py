"""Seeded synthetic company histories for the forecasting core's unit tests."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest


def synthetic_history(
    *, quarters: int = 24, seed: int = 7, gaps: tuple[int, ...] = (5, 11, 12)
) -> pd.DataFrame:
    """Net income on a known trend (500 + 20/quarter, noise σ=15) driven by loan volume."""
    rng = np.random.default_rng(seed)
    index = pd.period_range("2018Q1", periods=quarters, freq="Q-DEC", name="period")
    step = np.arange(quarters, dtype=float)
    loan_volume = 10_000 + 400 * step + rng.normal(0, 100, quarters)
    net_income = 500 + 20 * step + rng.normal(0, 15, quarters)
    sbc = 40 + 0.5 * step + rng.normal(0, 2, quarters)
    frame = pd.DataFrame(
        {
            "net_income": net_income,
            "non_gaap_net_income": net_income + sbc,
            "share_based_comp": sbc,
            "loan_volume": loan_volume,
        },
        index=index,
    )
    frame.iloc[list(gaps), :3] = np.nan
    return frame


@pytest.fixture
def synthetic() -> pd.DataFrame:
    return synthetic_history()
