"""The status page as a real browser renders it: headless Chromium against a served API."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest
import uvicorn

from services.api.app import create_api
from services.common.embedded import free_port
from tests.api.running import BundledRun

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        not Path("/usr/bin/chromium").exists(),
        reason="needs /usr/bin/chromium (Debian: apt-get install -y chromium)",
    ),
]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
GUIDED = {("net_income", "2024Q2"), ("non_gaap_net_income", "2024Q2")}
FAN_PARTS = {"history", "interval-80", "interval-95", "point-forecast", "guidance-band"}


class Elements(HTMLParser):
    """Every element's tag and attributes, and the classes found inside each fan chart."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, dict[str, str]]] = []
        self.fan_parts: dict[tuple[str, str], set[str]] = {}
        self._open_fan: tuple[str, str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {k: v or "" for k, v in attrs}
        self.found.append((tag, attributes))
        classes = set(attributes.get("class", "").split())
        if tag == "svg" and "fan-chart" in classes:
            self._open_fan = (attributes["data-metric"], attributes["data-period"])
            self.fan_parts[self._open_fan] = set()
        elif self._open_fan is not None:
            self.fan_parts[self._open_fan] |= classes

    def handle_endtag(self, tag: str) -> None:
        if tag == "svg":
            self._open_fan = None

    def with_class(self, tag: str, name: str) -> list[dict[str, str]]:
        return [a for t, a in self.found if t == tag and name in a.get("class", "").split()]


@pytest.fixture
def served(bundled_run: BundledRun) -> Iterator[str]:
    port = free_port()
    config = uvicorn.Config(
        create_api(bundled_run.api_settings()), host="127.0.0.1", port=port, log_level="warning"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start within 20s"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def dump_dom(url: str, profile: Path) -> Elements:
    command = [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--dump-dom", url]
    result = subprocess.run(command, capture_output=True, text=True, timeout=90, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    elements = Elements()
    elements.feed(result.stdout)
    return elements


@pytest.mark.timeout(180)
@pytest.mark.parametrize("page", ["/", "/companies/QFIN"])
def test_status_page_renders_a_fan_chart_for_each_2024Q2_guidance_band(
    served: str, page: str, tmp_path: Path
) -> None:
    dom = dump_dom(served + page, tmp_path / "profile")

    charts = {(a["data-metric"], a["data-period"]) for a in dom.with_class("svg", "fan-chart")}
    assert charts == GUIDED
    for chart in GUIDED:
        assert dom.fan_parts[chart] >= FAN_PARTS, (
            f"{chart} lacks {FAN_PARTS - dom.fan_parts[chart]}"
        )


@pytest.mark.timeout(180)
def test_company_page_shows_delinquency_trends_and_the_alert_timeline(
    served: str, tmp_path: Path
) -> None:
    dom = dump_dom(served + "/companies/QFIN", tmp_path / "profile")

    trends = [a["data-metric"] for a in dom.with_class("svg", "trend-chart")]
    assert trends == ["dpd90_rate_pct"]
    assert len(dom.with_class("ol", "alert-timeline")) == 1
    assert len(dom.with_class("li", "alert")) >= 2
