"""`guidepost publish` validates every line before publishing anything."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from services.cli import app

pytestmark = pytest.mark.unit
GOOD = {"stream": "metrics", "event": {"company": "ACME", "metric": "loan_volume", "period": "2024-05",
        "value": "812.5", "unit": "money", "currency": "CNY", "scale": "millions"}}  # fmt: skip


def test_a_malformed_line_is_refused_with_its_line_number_and_field(tmp_path: Path) -> None:
    bad = {"stream": "metrics", "event": {**GOOD["event"], "period": "2024-13"}}
    source = tmp_path / "events.jsonl"
    lines = [json.dumps(GOOD), json.dumps(bad), json.dumps(GOOD), "{nope"]
    source.write_text("\n".join(lines) + "\n")

    result = CliRunner().invoke(
        app, ["publish", str(source), "--redis-url", "redis://127.0.0.1:1/0"]
    )

    assert result.exit_code == 2  # bad input
    assert "line 2: event.period:" in result.output
    assert "'2024-13' is not a period" in result.output
    assert "line 4: not JSON" in result.output
    assert "nothing was published" in result.output
    assert "2 invalid line(s)" in result.output


def test_an_unknown_stream_is_named(tmp_path: Path) -> None:
    source = tmp_path / "events.jsonl"
    source.write_text(json.dumps({"stream": "trades", "event": {}}) + "\n")
    result = CliRunner().invoke(app, ["publish", str(source)])
    assert result.exit_code == 2  # bad input
    assert "line 1: stream: 'trades' is not one of results, metrics, guidance" in result.output
