"""Turning expected failures into one clear line on stderr and exit code 1."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from molvae.errors import GenerationShortfall, NonFiniteLossError

err_console = Console(stderr=True)

# Bad input and failed runs, as opposed to bugs, which keep their traceback.
USER_ERRORS: tuple[type[Exception], ...] = (ValueError, FileNotFoundError, NonFiniteLossError,
                                             GenerationShortfall)

P = ParamSpec("P")
R = TypeVar("R")


@contextmanager
def exit_on(*errors: type[Exception], label: str = "error") -> Iterator[None]:
    """Print ``label: message`` for ``errors`` and exit 1.

    Messages are escaped (paths may hold ``[...]``, which rich would read as markup) and
    soft-wrapped so long paths stay copyable.
    """
    try:
        yield
    except errors as exc:
        err_console.print(f"[red]{label}:[/red] {escape(error_message(exc))}", soft_wrap=True)
        raise typer.Exit(1) from exc


def error_message(exc: Exception) -> str:
    """The error's own words; an OS error as "reason: path" rather than "[Errno 2] ...: 'path'"."""
    if isinstance(exc, OSError) and exc.strerror and exc.filename is not None:
        return f"{exc.strerror}: {exc.filename}"
    return str(exc)


def user_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Decorate a command so that :data:`USER_ERRORS` end it with a message, not a traceback."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with exit_on(*USER_ERRORS):
            return command(*args, **kwargs)

    return wrapper
