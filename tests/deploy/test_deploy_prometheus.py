"""The Prometheus rules, checked and unit-tested by Prometheus' own promtool, the example
Prometheus and Alertmanager configurations checked by promtool and amtool, and every series the
rules read is one Guidepost exports or a rule records. The tools come from Debian's prometheus and
prometheus-alertmanager packages (`make test` installs them as root); without them the tool
checks skip."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.deploy.observability import (
    ALERTMANAGER_CONFIG,
    PROMETHEUS_CONFIG,
    RULE_TESTS,
    RULES,
    exported_names,
    recorded_names,
    rule_groups,
    tool,
    unknown_series,
)

pytestmark = pytest.mark.deploy


def run(*command: str, cwd: Path = RULES.parent) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


def test_promtool_checks_the_rules() -> None:
    result = run(tool("promtool"), "check", "rules", str(RULES))

    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {sum(len(g['rules']) for g in rule_groups())} rules found" in result.stdout


def test_promtool_unit_tests_of_the_rules_pass() -> None:
    result = run(tool("promtool"), "test", "rules", str(RULE_TESTS))

    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_fails_a_rule_test_whose_expectation_is_wrong(tmp_path: Path) -> None:
    """The unit tests can fail: the same tests with one expected value changed do."""
    wrong = RULE_TESTS.read_text().replace(
        "Guidepost consumer group ingest has 40 entries",
        "Guidepost consumer group ingest has 41 entries",
    )
    assert wrong != RULE_TESTS.read_text()
    (tmp_path / RULES.name).write_text(RULES.read_text())
    (tmp_path / RULE_TESTS.name).write_text(wrong)

    result = run(tool("promtool"), "test", "rules", RULE_TESTS.name, cwd=tmp_path)

    assert result.returncode != 0
    assert "GuidepostGroupStalled" in result.stdout + result.stderr


def test_every_alert_of_the_rules_is_unit_tested() -> None:
    alerts = {
        rule["alert"] for group in rule_groups() for rule in group["rules"] if "alert" in rule
    }
    tested = set()
    for line in RULE_TESTS.read_text().splitlines():
        if line.strip().startswith("alertname:"):
            tested.add(line.split(":", 1)[1].strip())

    assert alerts == tested


def test_every_series_the_rules_read_is_exported_or_recorded() -> None:
    unknown = {
        rule.get("alert") or rule["record"]: unknown_series(rule["expr"])
        for group in rule_groups()
        for rule in group["rules"]
    }

    assert {name: names for name, names in unknown.items() if names} == {}
    assert "guidepost_consumer_group_lag" in exported_names()
    assert "group:guidepost_consumer_group_lag:sum" in recorded_names()


def test_every_alert_says_how_bad_and_what_it_means() -> None:
    for group in rule_groups():
        for rule in group["rules"]:
            if "alert" not in rule:
                continue
            assert rule["alert"].startswith("Guidepost"), rule["alert"]
            assert rule["labels"]["severity"] in {"warning", "critical"}, rule["alert"]
            assert {"summary", "description"} <= set(rule["annotations"]), rule["alert"]


def test_the_example_prometheus_config_is_valid_and_scrapes_the_jobs_the_rules_name() -> None:
    result = run(tool("promtool"), "check", "config", str(PROMETHEUS_CONFIG))
    text = PROMETHEUS_CONFIG.read_text()

    assert result.returncode == 0, result.stdout + result.stderr
    assert "job_name: guidepost-api" in text
    assert "job_name: guidepost-workers" in text


def test_the_example_alertmanager_config_is_valid() -> None:
    result = run(tool("amtool"), "check-config", str(ALERTMANAGER_CONFIG))

    assert result.returncode == 0, result.stdout + result.stderr
