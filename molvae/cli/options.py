"""Options shared by commands, and parsing of option values that typer passes through as text."""

from __future__ import annotations

import typer

from molvae.device import PRECISION_HELP

Precision = typer.Option("auto", "--precision", help=PRECISION_HELP)
# The flows' commands: unset keeps the config file's value.
FlowPrecision = typer.Option(None, "--precision", help=PRECISION_HELP)


def parse_widths(text: str, option: str = "--hidden") -> list[int]:
    """``1024,512`` → [1024, 512]; anything but positive integers is an error naming the option."""
    try:
        widths = [int(part) for part in text.split(",")]
    except ValueError:
        widths = []
    if not widths or min(widths) < 1:
        raise ValueError(f"{option} takes comma-separated positive layer widths, e.g. 1024,512; got {text!r}")
    return widths
