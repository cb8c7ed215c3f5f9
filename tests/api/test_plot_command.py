"""`guidepost plot` writes a fan chart per forecast and a trend chart per trend, as PNG."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from tests.api.running import BundledRun

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def guidepost(run: BundledRun, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GUIDEPOST_NAMESPACE": run.namespace}
    command = [sys.executable, "-m", "services.cli", *args, "--redis-url", run.redis_url]
    return subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=90, check=False
    )


def test_plot_writes_valid_png_fan_and_trend_charts(
    bundled_run: BundledRun, tmp_path: Path
) -> None:
    company = bundled_run.company
    result = guidepost(bundled_run, "plot", "--company", company, "--out", str(tmp_path / "charts"))

    assert result.returncode == 0, result.stderr
    written = sorted(p.name for p in (tmp_path / "charts").iterdir())
    assert written == [
        f"{company}_dpd90_rate_pct_trend.png",
        f"{company}_net_income-2024Q2_fan.png",
        f"{company}_non_gaap_net_income-2024Q2_fan.png",
    ]
    for path in (tmp_path / "charts").iterdir():
        assert path.read_bytes()[:8] == PNG_SIGNATURE
        with Image.open(path) as image:
            image.verify()
        with Image.open(path) as image:
            assert image.size == (960, 504)
            colours = image.convert("RGB").getcolors(maxcolors=1_000_000) or []
            assert len(colours) > 50, f"{path.name} looks blank"


def test_plot_of_a_company_without_state_exits_1_and_says_why(
    bundled_run: BundledRun, tmp_path: Path
) -> None:
    result = guidepost(bundled_run, "plot", "--company", "NOSUCH", "--out", str(tmp_path))

    assert result.returncode == 1
    assert "nothing to plot" in result.stderr
    assert list(tmp_path.iterdir()) == []
