"""Bad input anywhere in the command ends in a clear message and an exit status, never a raw
traceback: the real `guidepost` process, given what a hurried operator would type."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from services.cli.demo import DEFAULT_DATA_DIR
from services.common.embedded import free_port
from tests.reliability.support import daily_metric

pytestmark = pytest.mark.integration
UNREACHABLE = f"redis://127.0.0.1:{free_port()}/0"


def guidepost(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "services.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PATH": "/usr/bin:/bin", "GUIDEPOST_REDIS_URL": UNREACHABLE, **(env or {})},
    )


def assert_clear(result: subprocess.CompletedProcess[str], status: int, *words: str) -> None:
    output = result.stdout + result.stderr
    assert result.returncode == status, output
    assert "Traceback" not in output
    for word in words:
        assert word in output


def test_publish_names_the_line_that_is_not_utf8(tmp_path: Path) -> None:
    good = json.dumps(
        {"stream": "metrics", "event": json.loads(daily_metric("A", 1, 5).model_dump_json())}
    )
    path = tmp_path / "events.jsonl"
    path.write_bytes(good.encode() + b"\n" + b'{"stream": "\xff\xfe"}\n')

    assert_clear(guidepost("publish", str(path)), 2, "line 2", "not UTF-8", "nothing was published")


def test_a_silence_of_absurd_length_is_refused(tmp_path: Path) -> None:
    result = guidepost("silence", "add", "--match", "company=ACME", "--comment", "x",
                       "--duration", "99999999999999999999d")  # fmt: skip

    assert_clear(result, 2, "longer than 366 days")


def test_an_announcement_above_the_size_limit_is_refused_and_the_flag_raises_it(
    tmp_path: Path,
) -> None:
    document = DEFAULT_DATA_DIR / "qfin_2024q1_announcement.txt"

    refused = guidepost("ingest-announcement", str(document), "--dry-run", "--max-bytes", "1000")
    allowed = guidepost("ingest-announcement", str(document), "--dry-run", "--json")

    assert_clear(refused, 2, "larger than 1,000 bytes", "--max-bytes")
    assert_clear(allowed, 0)


def test_retracting_an_unknown_metric_or_period_says_which() -> None:
    metric = guidepost("history", "retract", "--company", "ACME", "--metric", "net_incme",
                       "--period", "2024Q1")  # fmt: skip
    period = guidepost("history", "retract", "--company", "ACME", "--metric", "net_income",
                       "--period", "2024Q٣")  # fmt: skip

    assert_clear(metric, 2, "unknown metric 'net_incme'")
    assert_clear(period, 2, "is not a period")


@pytest.mark.parametrize(
    "command",
    [["dlq", "list"], ["alerts", "tail", "--timeout", "1"], ["history", "--company", "ACME"]],
)
def test_an_unreachable_redis_is_one_line_not_a_traceback(command: list[str]) -> None:
    assert_clear(guidepost(*command), 1, "cannot reach Redis", "GUIDEPOST_REDIS_URL")


def test_a_bad_setting_names_the_setting() -> None:
    result = guidepost("dlq", "list", env={"GUIDEPOST_PARTITIONS": "many"})

    assert_clear(result, 2, "GUIDEPOST_PARTITIONS")


def test_an_unknown_redis_client_names_the_setting_and_the_choices() -> None:
    result = guidepost("run", env={"GUIDEPOST_REDIS_CLIENT": "pooled"})

    assert_clear(result, 2, "GUIDEPOST_REDIS_CLIENT", "multiplexed", "stock")
