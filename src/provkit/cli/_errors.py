"""One place that turns a :class:`~provkit.errors.ProvkitError` into CLI output and exit status."""

from __future__ import annotations

import re
from typing import Final, NoReturn

import click

from provkit.errors import ProvkitError

EXIT_FAILURE = 1
"""Exit status of a command that failed with a provkit error (click uses 2 for usage errors)."""


CLI_SPELLING: Final[dict[str, str]] = {
    "allow_remote": "--allow-remote",
    "api_host": "--api-host",
    "config_file": "--config-file",
    "devices": "--devices",
    "endpoint": "--endpoint",
    "force": "--force",
    "https_cert": "--https-cert",
    "https_key": "--https-key",
    "insecure_http": "--insecure-http",
    "log_file": "--log-file",
    "no_bootstrap": "--no-bootstrap",
    "out": "--out",
    "pin_file": "--pin-file",
    "pkcs11_module": "--pkcs11-module",
    "registry": "--registry",
    "secret_file": "--secret-file",
    "storage": "--storage",
}
"""Library settings named in hints (as `` `name` ``) and the CLI option that sets each."""

_SETTING: Final = re.compile(r"`([a-z0-9_]+)`")


def cli_text(text: str) -> str:
    """``text`` with the library settings it names (`` `pkcs11_module` ``) spelled as CLI options."""
    return _SETTING.sub(lambda m: CLI_SPELLING.get(m.group(1), m.group(1)), text)


def format_error(error: ProvkitError) -> str:
    """Return ``Error <space>-<code>: <message>`` plus the hint, if the error has one.

    The code is qualified by its space (``FCU-210``, ``KCM-11``; docs/errors.md): numbers
    of different spaces overlap.
    """
    head = f"Error {error.qualified_code}: {error.message}" if error.code is not None else error.message
    return f"{head}\nHint: {cli_text(error.hint)}" if error.hint else head


def exit_with(error: ProvkitError) -> NoReturn:
    """Print ``error`` to stderr and leave with :data:`EXIT_FAILURE`."""
    click.echo(format_error(error), err=True)
    raise SystemExit(EXIT_FAILURE)


class ProvkitGroup(click.Group):
    """A click group whose subcommands' provkit errors become one message and exit status 1.

    Every group of the CLI is one, so a command raises its library's error and never
    catches it just to print it; run on its own (as tests run a group), a group answers
    as it does under ``provkit``.
    """

    def invoke(self, ctx: click.Context) -> object:
        """Run the subcommand; a provkit error becomes a message and exit status 1."""
        try:
            return super().invoke(ctx)
        except ProvkitError as error:
            exit_with(error)
