"""The Grafana dashboard, validated structurally: it loads as a dashboard, its panels tile the grid
without overlapping, every query goes to the chosen Prometheus, names only series Guidepost
exports or its rules record, and (with promtool) parses as PromQL."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.observability import DASHBOARD, tool, unknown_series

pytestmark = pytest.mark.deploy

GRID_COLUMNS = 24
PANEL_TYPES = {"row", "stat", "timeseries"}
TEMPLATE_VARIABLE = re.compile(r"\$\{?(\w+)\}?")


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in dashboard["panels"] if p["type"] != "row"]


def queries(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    return [(p["title"], t["expr"]) for p in panels(dashboard) for t in p["targets"]]


def test_it_is_a_dashboard_with_a_stable_uid(dashboard: dict[str, Any]) -> None:
    assert dashboard["uid"] == "guidepost-operations"
    assert dashboard["title"]
    assert isinstance(dashboard["schemaVersion"], int)
    assert dashboard["schemaVersion"] >= 36
    assert "id" not in dashboard or dashboard["id"] is None, "an id ties it to one Grafana"


def test_panels_have_unique_ids_known_types_and_titles(dashboard: dict[str, Any]) -> None:
    ids = [p["id"] for p in dashboard["panels"]]

    assert len(ids) == len(set(ids))
    assert {p["type"] for p in dashboard["panels"]} <= PANEL_TYPES
    assert all(p["title"] for p in dashboard["panels"])
    assert len(panels(dashboard)) >= 15


def test_panels_fit_the_grid_without_overlapping(dashboard: dict[str, Any]) -> None:
    taken: dict[tuple[int, int], str] = {}
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        assert grid["w"] > 0, panel["title"]
        assert grid["h"] > 0, panel["title"]
        assert grid["x"] >= 0, panel["title"]
        assert grid["x"] + grid["w"] <= GRID_COLUMNS, panel["title"]
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in taken, f"{panel['title']} overlaps {taken[(x, y)]}"
                taken[(x, y)] = panel["title"]


def test_every_query_goes_to_the_chosen_prometheus(dashboard: dict[str, Any]) -> None:
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}

    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for panel in panels(dashboard):
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert panel["targets"], panel["title"]
        refs = [target["refId"] for target in panel["targets"]]
        assert len(refs) == len(set(refs)), panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == panel["datasource"], panel["title"]


def test_queries_use_only_defined_variables_and_no_namespace(dashboard: dict[str, Any]) -> None:
    defined = {v["name"] for v in dashboard["templating"]["list"]}
    for title, expr in queries(dashboard):
        assert set(TEMPLATE_VARIABLE.findall(expr)) <= defined, title
        assert '"guidepost:' not in expr, f"{title}: a stream named with its namespace"


def test_every_series_a_query_reads_is_exported_or_recorded(dashboard: dict[str, Any]) -> None:
    unknown = {title: unknown_series(expr) for title, expr in queries(dashboard)}

    assert {title: names for title, names in unknown.items() if names} == {}


def test_every_query_is_valid_promql(dashboard: dict[str, Any], tmp_path: Path) -> None:
    """Each query, its variables filled in, as a recording rule that promtool checks."""
    rules = [
        {"record": f"dashboard:query_{n}", "expr": TEMPLATE_VARIABLE.sub(".*", expr)}
        for n, (_, expr) in enumerate(queries(dashboard))
    ]
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))

    result = subprocess.run(
        [tool("promtool"), "check", "rules", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules)} rules found" in result.stdout
