"""How an exception becomes a command's one line and exit status."""

from __future__ import annotations

import json

import pytest
import typer.main
from pydantic import ValidationError
from redis.exceptions import AuthenticationError, ResponseError
from redis.exceptions import ConnectionError as RedisConnectionError

from schemas.metrics import MetricReported
from services.cli import app
from services.cli.failures import (
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    BadInputError,
    Failure,
    NotFoundError,
    describe_failure,
)
from services.cli.group import GuidepostGroup, command_path, wants_json
from services.common.settings import RedisSettings

pytestmark = pytest.mark.unit


def validation_error_of(model: type, **values: object) -> ValidationError:
    try:
        model(**values)
    except ValidationError as error:
        return error
    raise AssertionError("the values were valid")


def test_a_command_names_its_own_failures_with_their_status() -> None:
    assert describe_failure(NotFoundError("no silence abc")) == Failure(
        "no silence abc", EXIT_FAILED
    )
    assert describe_failure(BadInputError("--reason 'x'")).exit_code == EXIT_BAD_INPUT


def test_redis_unreachable_or_refusing_is_exit_1_and_says_what_to_check() -> None:
    unreachable = describe_failure(RedisConnectionError("Error 111 connecting"))
    refused = describe_failure(AuthenticationError("invalid username-password pair"))
    rejected = describe_failure(ResponseError("NOPERM this user has no permissions"))

    assert unreachable.exit_code == refused.exit_code == rejected.exit_code == EXIT_FAILED
    assert "GUIDEPOST_REDIS_URL" in unreachable.message
    assert "GUIDEPOST_REDIS_PASSWORD" in refused.message
    assert "NOPERM" in rejected.message


def test_a_bad_setting_names_the_variable_without_its_value() -> None:
    error = validation_error_of(RedisSettings, redis_url="redis://user:s3cret@host:port/0")

    failure = describe_failure(error)

    assert failure.exit_code == EXIT_BAD_INPUT
    assert failure.message.startswith("invalid settings: GUIDEPOST_REDIS_URL:")
    assert "s3cret" not in failure.message


def test_an_invalid_event_names_its_field() -> None:
    failure = describe_failure(validation_error_of(MetricReported, company="qfin"))

    assert failure.exit_code == EXIT_BAD_INPUT
    assert failure.message.startswith("invalid input: ")


def test_a_missing_file_is_bad_input_naming_it() -> None:
    failure = describe_failure(FileNotFoundError(2, "No such file or directory", "/no/such.csv"))

    assert failure == Failure("/no/such.csv: No such file or directory", EXIT_BAD_INPUT)


def test_a_task_groups_failure_is_its_first_tasks() -> None:
    group = ExceptionGroup("tasks", [RedisConnectionError("refused"), ValueError("later")])

    assert "cannot reach Redis" in describe_failure(group).message


def test_anything_else_is_exit_1_naming_its_type_and_the_debug_switch() -> None:
    failure = describe_failure(KeyError("quarter"))

    assert failure.exit_code == EXIT_FAILED
    assert failure.message == "KeyError: 'quarter' (GUIDEPOST_DEBUG=1 shows the traceback)"


def test_the_line_is_one_line_plain_or_json() -> None:
    failure = Failure("first problem\n  second problem", EXIT_BAD_INPUT)

    plain = failure.line(command="guidepost publish", as_json=False)
    as_json = json.loads(failure.line(command="guidepost publish", as_json=True))

    assert plain == "guidepost publish: first problem second problem"
    assert as_json == {"command": "guidepost publish", "error": "first problem second problem",
                       "exit_code": EXIT_BAD_INPUT}  # fmt: skip


def test_the_command_path_and_json_come_from_the_arguments() -> None:
    group = typer.main.get_command(app)
    assert isinstance(group, GuidepostGroup)

    assert command_path(group, ["dlq", "replay", "--all"]) == "guidepost dlq replay"
    assert command_path(group, ["history", "--company", "ACME"]) == "guidepost history"
    assert wants_json(["dlq", "list", "--json"])
    assert not wants_json(["publish", "--", "--json"])
