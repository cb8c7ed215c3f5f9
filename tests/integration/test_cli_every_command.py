"""Every command, as the app declares them, answers an unreachable Redis, bad input and an
unknown company with one line on stderr and the exit status of the table in `failures`: 1 not
found or unreachable, 2 bad usage or input. With --json that line is a JSON object. A command
added to the app without a case here fails `test_every_command_has_its_cases`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import typer.main
from typer.testing import CliRunner, Result

from services.cli import app
from services.cli.demo import DEFAULT_DATA_DIR
from services.cli.failures import EXIT_BAD_INPUT, EXIT_FAILED
from services.common.embedded import free_port

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
UNREACHABLE = f"redis://127.0.0.1:{free_port()}/0"  # a closed loopback port
HISTORY = str(DEFAULT_DATA_DIR / "qfin_quarterly.csv")
ANNOUNCEMENT = str(DEFAULT_DATA_DIR / "qfin_2024q1_announcement.txt")
EVENTS = str(ROOT / "tests" / "fixtures" / "qfin_2024q1_events.jsonl")
NO_REDIS_NEEDED = {"backtest", "schemas export"}
NO_RESULT_TO_REPORT = {"run", "serve"}  # the only commands without --json: they keep running


@dataclass(frozen=True)
class Case:
    args: list[str]
    says: str  # a word of the one line


def command_paths() -> Iterator[str]:
    """Every command the app runs, a group that runs on its own (history) included."""

    def walk(command: object, path: list[str]) -> Iterator[str]:
        children = getattr(command, "commands", None)
        if not children:
            yield " ".join(path)
            return
        if getattr(command, "invoke_without_command", False):
            yield " ".join(path)
        for name, child in children.items():
            yield from walk(child, [*path, name])

    yield from walk(typer.main.get_command(app), [])


def has_json_option(path: str) -> bool:
    command: object = typer.main.get_command(app)
    for name in path.split():
        command = command.commands[name]  # type: ignore[attr-defined]
    return any("--json" in p.opts for p in command.params)  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("inputs")
    bad_history = folder / "bad_history.csv"
    bad_history.write_text("qtr,net_income\n2023Q1,100\n")
    bad_events = folder / "bad_events.jsonl"
    bad_events.write_text('{"stream": "trades", "event": {}}\n')
    a_file = folder / "a_file"
    a_file.write_text("")
    return {"bad_history": str(bad_history), "bad_events": str(bad_events),
            "a_file": str(a_file), "out": str(folder / "out")}  # fmt: skip


def unreachable_cases(files: dict[str, str]) -> dict[str, Case | None]:
    """Each command that needs Redis, given everything else right; None: needs no Redis
    (serve needs none to start: it serves and its /ready says Redis is down)."""
    unreachable = "cannot reach Redis"
    return {
        "demo": Case(["demo", "--redis-url", UNREACHABLE, "--timeout", "5"], unreachable),
        "run": Case(["run", "--services", "alerts"], unreachable),
        "publish": Case(["publish", EVENTS], unreachable),
        "backfill": Case(["backfill", "--history", HISTORY, "--company", "QFIN"], unreachable),
        "backtest": None,
        "ingest-announcement": Case(["ingest-announcement", ANNOUNCEMENT], unreachable),
        "serve": None,
        "plot": Case(["plot", "--company", "ACME", "--out", files["out"]], unreachable),
        "alerts tail": Case(["alerts", "tail", "--timeout", "1"], unreachable),
        "dlq list": Case(["dlq", "list"], unreachable),
        "dlq replay": Case(["dlq", "replay", "--all"], unreachable),
        "dlq purge": Case(["dlq", "purge", "--before", "2024-01-01"], unreachable),
        "silence add": Case(
            ["silence", "add", "--match", "company=ACME", "--comment", "why"], unreachable
        ),
        "silence list": Case(["silence", "list"], unreachable),
        "silence expire": Case(["silence", "expire", "abc123"], unreachable),
        "schemas export": None,
        "history": Case(["history", "--company", "ACME"], unreachable),
        "history retract": Case(
            [
                "history",
                "retract",
                "--company",
                "ACME",
                "--metric",
                "net_income",
                "--period",
                "2024Q1",
            ],
            unreachable,
        ),
    }


def bad_input_cases(files: dict[str, str]) -> dict[str, Case]:
    """Each command given what a hurried operator might type; refused before Redis is asked."""
    return {
        "demo": Case(["demo", "--data-dir", files["out"] + "/missing"], "No such file"),
        "run": Case(["run", "--services", "ingest,nope"], "GUIDEPOST_SERVICES"),
        "publish": Case(["publish", files["bad_events"]], "'trades' is not one of"),
        "backfill": Case(
            ["backfill", "--history", HISTORY, "--company", "qfin"],
            "'qfin' is not a company identifier",
        ),
        "backtest": Case(["backtest", "--history", files["bad_history"]], "'quarter' column"),
        "ingest-announcement": Case(
            ["ingest-announcement", HISTORY, "--dry-run"], "no reporting period"
        ),
        "serve": Case(["serve", "--port", "eighty"], "--port"),
        "plot": Case(
            ["plot", "--company", "acme", "--out", files["out"]],
            "'acme' is not a company identifier",
        ),
        "alerts tail": Case(["alerts", "tail", "--count", "some"], "--count"),
        "dlq list": Case(
            ["dlq", "list", "--redis-url", "http://redis:6379"], "GUIDEPOST_REDIS_URL"
        ),
        "dlq replay": Case(["dlq", "replay", "--reason", "bored"], "not a dead-letter reason"),
        "dlq purge": Case(["dlq", "purge", "--before", "last tuesday"], "--before"),
        "silence add": Case(
            [
                "silence",
                "add",
                "--match",
                "company=ACME",
                "--comment",
                "why",
                "--duration",
                "forever",
            ],
            "duration",
        ),
        "silence list": Case(
            ["silence", "list", "--redis-url", "redis://:6379:6379"], "GUIDEPOST_REDIS_URL"
        ),
        "silence expire": Case(["silence", "expire"], "Missing argument 'silence_id'"),
        "schemas export": Case(["schemas", "export", files["a_file"]], "not a directory"),
        "history": Case(["history", "--company", "ACME", "--as-of", "yesterday"], "--as-of"),
        "history retract": Case(
            [
                "history",
                "retract",
                "--company",
                "ACME",
                "--metric",
                "net_incme",
                "--period",
                "2024Q1",
            ],
            "unknown metric",
        ),
    }


def guidepost(args: list[str]) -> Result:
    return CliRunner().invoke(app, args, env={"GUIDEPOST_REDIS_URL": UNREACHABLE})


def assert_one_line(result: Result, status: int, *words: str) -> str:
    """The failure's one line on stderr, after checking the status and that nothing escaped."""
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert result.exit_code == status, result.stderr
    for word in words:
        assert word in lines[0]
    return lines[0]


def test_every_command_has_its_cases(files: dict[str, str]) -> None:
    commands = set(command_paths())

    assert set(unreachable_cases(files)) == commands
    assert set(bad_input_cases(files)) == commands
    assert {c for c in commands if unreachable_cases(files)[c] is None} == NO_REDIS_NEEDED | {
        "serve"
    }


@pytest.mark.parametrize("command", sorted(command_paths()))
def test_an_unreachable_redis_is_one_line_and_exit_1(command: str, files: dict[str, str]) -> None:
    case = unreachable_cases(files).get(command)
    if case is None:
        assert command in NO_REDIS_NEEDED | {"serve"}, f"give {command!r} an unreachable case"
        return

    assert_one_line(guidepost(case.args), EXIT_FAILED, f"guidepost {command}:", case.says)


@pytest.mark.parametrize("command", sorted(command_paths()))
def test_bad_input_is_one_line_and_exit_2(command: str, files: dict[str, str]) -> None:
    case = bad_input_cases(files)[command]

    assert_one_line(guidepost(case.args), EXIT_BAD_INPUT, f"guidepost {command}:", case.says)


def test_every_command_that_reports_takes_json() -> None:
    without = {path for path in command_paths() if not has_json_option(path)}

    assert without == NO_RESULT_TO_REPORT


@pytest.mark.parametrize(
    "command", sorted(c for c in command_paths() if c not in NO_RESULT_TO_REPORT)
)
def test_with_json_the_failure_is_one_json_object(command: str, files: dict[str, str]) -> None:
    case = unreachable_cases(files)[command] or bad_input_cases(files)[command]
    status = EXIT_BAD_INPUT if unreachable_cases(files)[command] is None else EXIT_FAILED

    result = guidepost([*case.args, "--json"])

    error = json.loads(assert_one_line(result, status))
    assert error["command"] == f"guidepost {command}"
    assert error["exit_code"] == status
    assert case.says in error["error"]
    assert result.stdout == ""


def test_a_usage_error_names_the_option_in_one_line_not_a_panel() -> None:
    result = guidepost(["dlq", "replay", "--all", "--jsno"])

    line = assert_one_line(result, EXIT_BAD_INPUT, "No such option: --jsno")
    assert line.startswith("guidepost dlq replay:")
    assert "--help" in line


def test_a_csv_without_the_quarter_column_names_it_for_backfill(files: dict[str, str]) -> None:
    result = guidepost(["backfill", "--history", files["bad_history"], "--company", "QFIN"])

    assert_one_line(result, EXIT_BAD_INPUT, "no quarter column", "found: qtr, net_income")


def test_flags_are_shown_without_a_value_placeholder() -> None:
    result = CliRunner().invoke(app, ["alerts", "tail", "--help"], env={"COLUMNS": "200"})

    assert result.exit_code == 0
    assert "<bool>" not in result.output
    assert "<int>" in result.output  # an option that takes a value keeps its placeholder


def test_the_exit_status_table_is_in_the_help() -> None:
    result = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "200"})

    assert "Exit status: 0 done; 1 not found" in result.output
    assert "2 bad usage or input" in result.output


@pytest.mark.parametrize(
    "args",
    [
        ["history", "--company", "NOPE"],
        ["history", "--company", "NOPE", "--json"],
        ["history", "retract", "--company", "NOPE", "--metric", "net_income", "--period", "2024Q1"],
        ["plot", "--company", "NOPE", "--out", "{out}"],
        ["silence", "expire", "nope"],
        ["dlq", "replay", "--id", "1-1"],
    ],
)
def test_an_unknown_company_or_id_is_not_found_exit_1(
    args: list[str], redis_url: str, namespace: str, tmp_path: Path
) -> None:
    env = {"GUIDEPOST_REDIS_URL": redis_url, "GUIDEPOST_NAMESPACE": namespace}
    args = [a.replace("{out}", str(tmp_path / "charts")) for a in args]

    result = CliRunner().invoke(app, args, env=env)

    line = assert_one_line(result, EXIT_FAILED)
    assert "NOPE" in line or "nope" in line or "1-1" in line
    assert result.stdout == ""
    assert not (tmp_path / "charts").exists()
