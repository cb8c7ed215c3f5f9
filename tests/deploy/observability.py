"""What the operations pack refers to: the series Guidepost exports and the series its rules
record, so the rules and the dashboard can be checked against them."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

from services.api.collectors import _company_families
from services.common.metrics import Metrics, _stream_families
from tests.deploy.deploy_files import DEPLOY

PROMETHEUS = DEPLOY / "prometheus"
RULES = PROMETHEUS / "guidepost.rules.yml"
RULE_TESTS = PROMETHEUS / "guidepost.rules.test.yml"
PROMETHEUS_CONFIG = PROMETHEUS / "prometheus.example.yml"
ALERTMANAGER_CONFIG = DEPLOY / "alertmanager" / "alertmanager.example.yml"
DASHBOARD = DEPLOY / "grafana" / "guidepost-operations.json"

SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}
EXPORTED_NAME = re.compile(r"\bguidepost_[a-z0-9_]+\b")
RECORDED_NAME = re.compile(r"\b[a-z_]*:[a-z0-9_:]+\b")  # level:metric:operations


def tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.skip(f"no {name}: install Debian's prometheus / prometheus-alertmanager")
    return found


def exported_names() -> set[str]:
    """Every family and sample name Guidepost's processes export."""
    registry = Metrics(CollectorRegistry()).registry
    families: list[tuple[str, str]] = [(m.name, m.type) for m in registry.collect()]
    families += [(f.name, f.type) for f in _stream_families().values()]
    families += [(f.name, f.type) for f in _company_families().values()]
    return {name for name, _ in families} | {
        name + suffix for name, kind in families for suffix in SUFFIXES[kind]
    }


def rule_groups(path: Path = RULES) -> list[dict[str, Any]]:
    document = yaml.safe_load(path.read_text())
    groups: list[dict[str, Any]] = document["groups"]
    return groups


def recorded_names() -> set[str]:
    return {
        rule["record"] for group in rule_groups() for rule in group["rules"] if "record" in rule
    }


def unknown_series(expr: str) -> set[str]:
    """Guidepost series an expression names that no process exports and no rule records."""
    recorded = recorded_names()
    exported = {
        name for name in EXPORTED_NAME.findall(expr) if not _only_inside_recorded(expr, name)
    }
    return (exported - exported_names()) | (set(RECORDED_NAME.findall(expr)) - recorded)


def _only_inside_recorded(expr: str, name: str) -> bool:
    """`guidepost_x` as the middle of a recorded name (`group:guidepost_x:sum`) only."""
    bare = re.search(rf"(?<![:\w]){re.escape(name)}(?![:\w])", expr)
    return bare is None
