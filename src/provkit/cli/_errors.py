"""One place that turns a :class:`~provkit.errors.ProvkitError` into CLI output and exit status."""

from __future__ import annotations

from typing import NoReturn

import click

from provkit.errors import ProvkitError

EXIT_FAILURE = 1
"""Exit status of a command that failed with a provkit error (click uses 2 for usage errors)."""


def format_error(error: ProvkitError) -> str:
    """Return ``Error <code>: <message>`` plus the hint, if the error has one."""
    head = f"Error {error.code}: {error.message}" if error.code is not None else error.message
    return f"{head}\nHint: {error.hint}" if error.hint else head


def exit_with(error: ProvkitError) -> NoReturn:
    """Print ``error`` to stderr and leave with :data:`EXIT_FAILURE`."""
    click.echo(format_error(error), err=True)
    raise SystemExit(EXIT_FAILURE)
