"""How a command that cannot do its work ends: one line on stderr (a JSON object when --json
was given) and an exit status that says what kind of failure it was. Every command goes
through here, so the same failure reads the same everywhere."""

from __future__ import annotations

import errno
import json
import socket
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from services.common.settings import RedisSettings

EXIT_OK = 0
EXIT_FAILED = 1  # not found, nothing matched, Redis unreachable or refusing, unexpected error
EXIT_BAD_INPUT = 2  # usage, options, files, settings: fix the command line and run it again
EXIT_CHECKS_DISAGREE = 3  # ingest-announcement: the document's own figures disagree (--force)

EXIT_CODES = {
    EXIT_OK: "done",
    EXIT_FAILED: "not found or nothing matched, Redis unreachable or refusing, or an "
    "unexpected error (GUIDEPOST_DEBUG=1 shows its traceback)",
    EXIT_BAD_INPUT: "bad usage or input: an option, a file, a company identifier, a setting",
    EXIT_CHECKS_DISAGREE: "ingest-announcement only: its cross-checks disagree (--force "
    "publishes anyway)",
}
_UNREACHABLE_ERRNOS = {errno.ECONNREFUSED, errno.ECONNRESET, errno.EHOSTUNREACH, errno.ENETUNREACH}


class CommandError(Exception):
    """A failure the command names itself; its message is the whole line."""

    exit_code = EXIT_FAILED


class NotFoundError(CommandError):
    """Nothing stored or nothing matched: the company, the silence, the dead letter."""


class BadInputError(CommandError):
    """The command line or a file it names is wrong; the message says which part and why."""

    exit_code = EXIT_BAD_INPUT


@dataclass(frozen=True)
class Failure:
    message: str
    exit_code: int

    def line(self, *, command: str, as_json: bool) -> str:
        text = " ".join(self.message.split())  # one line, whatever the cause's formatting
        if as_json:
            return json.dumps({"command": command, "error": text, "exit_code": self.exit_code})
        return f"{command}: {text}"


def report_failure(failure: Failure, *, command: str, as_json: bool) -> int:
    """Write the failure's one line on stderr; the exit status to end with."""
    sys.stderr.write(failure.line(command=command, as_json=as_json) + "\n")
    sys.stderr.flush()
    return failure.exit_code


def describe_failure(error: BaseException) -> Failure:
    """The line and exit status for any exception a command lets escape."""
    error = _innermost(error)
    if isinstance(error, CommandError):
        return Failure(str(error), error.exit_code)
    named = _redis_failure(error) or _input_failure(error)
    if named is not None:
        return named
    text = str(error) or "no detail"
    return Failure(
        f"{type(error).__name__}: {text} (GUIDEPOST_DEBUG=1 shows the traceback)", EXIT_FAILED
    )


def _innermost(error: BaseException) -> BaseException:
    """A task group's failure is its first task's failure."""
    while isinstance(error, BaseExceptionGroup) and error.exceptions:
        error = error.exceptions[0]
    return error


def _redis_failure(error: BaseException) -> Failure | None:
    from redis import exceptions as redis_errors

    from services.common.transport import RedisUnavailableError

    if isinstance(error, RedisUnavailableError):
        return Failure(str(error), EXIT_FAILED)
    if isinstance(error, redis_errors.AuthenticationError):
        return Failure(
            "Redis refused the credentials: check GUIDEPOST_REDIS_USERNAME and "
            "GUIDEPOST_REDIS_PASSWORD",
            EXIT_FAILED,
        )
    if isinstance(
        error, redis_errors.ConnectionError | redis_errors.TimeoutError | ConnectionError
    ) or (isinstance(error, OSError) and error.errno in _UNREACHABLE_ERRNOS):
        return Failure(
            f"cannot reach Redis ({error}); check GUIDEPOST_REDIS_URL and the credentials",
            EXIT_FAILED,
        )
    if isinstance(error, redis_errors.RedisError):
        return Failure(f"Redis refused the request: {error}", EXIT_FAILED)
    return None


def _input_failure(error: BaseException) -> Failure | None:
    from pydantic import ValidationError

    if isinstance(error, ValidationError):
        return Failure(_validation_text(error), EXIT_BAD_INPUT)
    if isinstance(error, OSError) and error.filename is not None:
        return Failure(f"{error.filename}: {error.strerror or error}", EXIT_BAD_INPUT)
    if isinstance(error, UnicodeDecodeError):
        return Failure(f"not UTF-8 text: {error}", EXIT_BAD_INPUT)
    return None


def _validation_text(error: Any) -> str:
    from services.common.consumer import describe_validation_error
    from services.common.settings import describe_settings_error

    if str(error.title).endswith("Settings"):  # the environment, not the command line
        return "invalid settings: " + "; ".join(describe_settings_error(error).splitlines())
    return f"invalid input: {describe_validation_error(error).error}"


def ensure_reachable(settings: RedisSettings, *, timeout_s: float = 3.0) -> None:
    """Refuse at once when nothing listens where Redis should be. The client's own retries
    (seconds of backoff) let a worker ride out a Redis restart; an operator who mistyped the
    URL should hear of it now."""
    host, port = settings.redis_url.host or "localhost", settings.redis_url.port or 6379
    try:
        socket.create_connection((host, port), timeout=timeout_s).close()
    except OSError as error:
        raise CommandError(
            f"cannot reach Redis at {host}:{port} ({error.strerror or error}); "
            "check GUIDEPOST_REDIS_URL"
        ) from None
