"""The top-level command group: every failure of every command, whether typer's own (a wrong
option) or the work's (Redis unreachable, a bad file), ends here as one line and an exit status
(see `failures`). It sits in the group rather than in `main()` so the tests' in-process runner
and the installed command behave alike."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any

import typer
from typer.core import TyperGroup, TyperOption

from services.cli.failures import EXIT_BAD_INPUT, Failure, describe_failure, report_failure

PROG = "guidepost"


class GuidepostGroup(TyperGroup):
    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        arguments = list(sys.argv[1:] if args is None else args)
        try:
            outcome = super().main(arguments, PROG, complete_var, standalone_mode=False, **extra)
        except Exception as error:
            if os.environ.get("GUIDEPOST_DEBUG"):
                raise
            code = self.report(error, arguments)
        else:
            code = outcome if isinstance(outcome, int) else 0  # an Exit's status, else done
        if standalone_mode:
            sys.exit(code)
        return code

    def report(self, error: Exception, arguments: list[str]) -> int:
        if type(error).__name__ == "NoArgsIsHelpError":  # typer has printed the help already
            return EXIT_BAD_INPUT
        if isinstance(error, typer.Abort):
            return report_failure(Failure("aborted", 1), command=PROG, as_json=False)
        failure, command = _usage_failure(error) or (
            describe_failure(error),
            command_path(self, arguments),
        )
        return report_failure(failure, command=command, as_json=wants_json(arguments))


def _usage_failure(error: Exception) -> tuple[Failure, str] | None:
    """typer's own refusals (a missing or unknown option, a value of the wrong type)."""
    if not isinstance(error, typer.TyperException):
        return None
    ctx = getattr(error, "ctx", None)
    command = ctx.command_path if ctx is not None else PROG
    return Failure(f"{error.format_message()} (see {command} --help)", EXIT_BAD_INPUT), command


def command_path(group: TyperGroup, arguments: list[str]) -> str:
    """'guidepost dlq replay' from the leading arguments naming commands."""
    path, command = [PROG], group
    for token in arguments:
        commands = getattr(command, "commands", {})
        if token not in commands:
            break
        path.append(token)
        command = commands[token]
    return " ".join(path)


def wants_json(arguments: list[str]) -> bool:
    options = arguments[: arguments.index("--")] if "--" in arguments else arguments
    return "--json" in options


def flags_take_no_placeholder() -> None:
    """typer's rich help labels a flag `<bool>` as if it took a value; a flag takes none (the
    plain help already leaves it out)."""
    display = TyperOption.display_type_rich
    if getattr(display, "leaves_flags_bare", False):
        return

    def display_type_rich(self: TyperOption, ctx: Any) -> str | None:
        return None if self.is_flag or self.count else display(self, ctx)

    display_type_rich.leaves_flags_bare = True  # type: ignore[attr-defined]
    TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]
