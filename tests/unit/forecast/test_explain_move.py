"""A forecast says what moved it since the last one."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from schemas.forecasts import DriverEffect, ForecastUpdated, QuantilePoint
from schemas.money import Scale
from schemas.registry import Basis
from services.forecast.events import explain_move

pytestmark = pytest.mark.unit


def forecast(point: str, drivers: dict[str, tuple[float, float]], digest: str) -> ForecastUpdated:
    value = Decimal(point)
    return ForecastUpdated(
        company="ACME", metric="net_income", period="2024Q2", basis=Basis.GAAP, currency="CNY",
        scale=Scale.MILLIONS, point=value, lo80=value - 10, hi80=value + 10, lo95=value - 20,
        hi95=value + 20, n_obs=12, method="test", as_of=datetime(2024, 5, 1, tzinfo=UTC), inputs_digest=digest,
        quantiles=tuple(QuantilePoint(probability=p, value=value) for p in (0.1, 0.5, 0.9)),
        drivers=tuple(DriverEffect(name=n, value=v, effect=e) for n, (v, e) in drivers.items()),
    )  # fmt: skip


def test_the_move_splits_into_driver_effects_and_the_rest() -> None:
    before = forecast("1000", {"loan_volume": (99000, 30.0), "dpd90_rate_pct": (3.1, -20.0)}, "a")
    after = forecast("1050", {"loan_volume": (104000, 60.0), "dpd90_rate_pct": (3.1, -20.0)}, "b")

    explained = explain_move(after, before)

    assert explained.previous_point == Decimal("1000")
    moves = {m.name: m.effect for m in explained.moved_by}
    assert moves == {"loan_volume": pytest.approx(30.0), "other": pytest.approx(20.0)}


def test_the_same_inputs_republish_the_same_forecast() -> None:
    before = forecast("1000", {"loan_volume": (99000, 30.0)}, "same")
    again = forecast("1000", {"loan_volume": (99000, 30.0)}, "same")
    assert explain_move(again, before) is before


def test_a_first_forecast_has_nothing_to_explain() -> None:
    first = forecast("1000", {}, "a")
    assert explain_move(first, None).moved_by == ()
