"""`guidepost demo`'s report on the bundled history and announcement."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.cli.demo import DEFAULT_DATA_DIR, DemoInputs, run_demo
from tests.support.pipeline import worker_settings

pytestmark = pytest.mark.integration


@pytest.mark.timeout(300)
async def test_demo_reports_forecasts_with_intervals_and_band_probabilities_for_both_bands(
    redis_url: str, namespace: str
) -> None:
    inputs = DemoInputs.load(DEFAULT_DATA_DIR)
    report = await run_demo(worker_settings(redis_url, namespace), inputs, timeout_s=240)

    forecasts = {(f["metric"], f["period"]): f for f in report.forecasts}
    assert set(forecasts) == {("net_income", "2024Q2"), ("non_gaap_net_income", "2024Q2")}
    for item in forecasts.values():
        assert item["lo95"] <= item["lo80"] <= item["forecast"] <= item["hi80"] <= item["hi95"]
    bands = {(b["metric"], b["low"], b["high"]) for b in report.bands}
    assert bands == {("net_income", 1170.0, 1230.0), ("non_gaap_net_income", 1220.0, 1280.0)}
    for band in report.bands:
        assert band["p_below"] + band["p_inside"] + band["p_above"] == pytest.approx(1.0)
    assert {a["kind"] for a in report.alerts} >= {"band_check"}
    assert report.dead_letters == 0


@pytest.mark.unit
def test_nothing_in_services_names_the_bundled_company() -> None:
    services = Path(__file__).resolve().parents[2] / "services"
    named = [
        str(path.relative_to(services))
        for path in services.rglob("*.py")
        if any(word in path.read_text(encoding="utf-8") for word in ("QFIN", "Qifu", "3660"))
    ]
    assert named == []
