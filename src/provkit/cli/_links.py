"""Command-line options that name a device and how long to wait for it.

Every command builds its :class:`~provkit.transport.spec.LinkTarget` through the one link
parser (:mod:`provkit.transport.spec`) and its timeouts from the one set of defaults
(:mod:`provkit.transport.link`), whichever spelling its options use: ``--link SPEC``, the
factory tool demo's ``inject … tcp --ip --port``, or ``--tcp IP:PORT``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final, TypeVar

import click

from provkit.errors import LinkSpecError
from provkit.transport.link import DEFAULT_BAUD_RATE, DEFAULT_LINK_SETTINGS, LinkSettings
from provkit.transport.spec import FileTarget, LinkTarget, SerialTarget, link_usage, parse_link

_F = TypeVar("_F", bound=Callable[..., Any])


def link_target(build: Callable[[], LinkTarget], param_hint: str | None = None) -> LinkTarget:
    """Build a target from command options; a spec that does not parse is a usage error (exit 2)."""
    try:
        return build()
    except LinkSpecError as exc:
        raise click.BadParameter(exc.message, param_hint=param_hint) from exc


def link_settings_options(defaults: LinkSettings = DEFAULT_LINK_SETTINGS) -> Callable[[_F], _F]:
    """Add ``--timeout``, ``--connect-timeout`` and ``--retries``; the command gets ``settings``."""

    def decorate(command: _F) -> _F:
        @functools.wraps(command)
        def with_settings(
            *args: Any, timeout: float, connect_timeout: float, retries: int, **kwargs: Any
        ) -> Any:
            settings = LinkSettings(timeout, connect_timeout, retries, defaults.retry_delay_s)
            return command(*args, settings=settings, **kwargs)

        options = (
            click.option(
                "--timeout",
                type=click.FloatRange(min=0.1),
                default=defaults.timeout_s,
                show_default=True,
                help="Seconds to wait for the device's answer.",
            ),
            click.option(
                "--connect-timeout",
                type=click.FloatRange(min=0.1),
                default=defaults.connect_timeout_s,
                show_default=True,
                help="Seconds a TCP connection may take to open.",
            ),
            click.option(
                "--retries",
                type=click.IntRange(0),
                default=defaults.retries,
                show_default=True,
                help="Tries again, on a new connection, after a transport failure.",
            ),
        )
        wrapped: Any = with_settings
        for option in reversed(options):
            wrapped = option(wrapped)
        return wrapped  # type: ignore[no-any-return]

    return decorate


def device_options(*, required: bool = True) -> Callable[[_F], _F]:
    """Add the options naming one device; the command gets it as ``device``.

    Exactly one of ``--link``, ``--tcp``, ``--serial`` or ``--file`` must be given; unless
    ``required``, none is allowed too and ``device`` is then ``None``.
    """

    def decorate(command: _F) -> _F:
        @functools.wraps(command)
        def with_target(
            *args: Any,
            link: str | None,
            tcp: str | None,
            serial: str | None,
            baud_rate: int,
            file: Path | None,
            **kwargs: Any,
        ) -> Any:
            given = (("--link", link), ("--tcp", tcp), ("--serial", serial), ("--file", file))
            chosen = [name for name, value in given if value]
            if len(chosen) > 1 or (required and not chosen):
                raise click.UsageError(
                    "give exactly one of --tcp IP:PORT, --serial PORT, --file PATH, --link SPEC"
                )
            return command(*args, device=_target(link, tcp, serial, baud_rate, file), **kwargs)

        wrapped: Any = with_target
        for option in reversed(_DEVICE_OPTIONS):
            wrapped = option(wrapped)
        return wrapped  # type: ignore[no-any-return]

    return decorate


def _target(
    link: str | None, tcp: str | None, serial: str | None, baud_rate: int, file: Path | None
) -> LinkTarget | None:
    if link:
        return link_target(lambda: parse_link(link), "--link")
    if tcp:
        return link_target(lambda: parse_link(f"tcp:{tcp}"), "--tcp")
    if serial:
        return link_target(lambda: SerialTarget(serial, baud_rate), "--serial")
    if file:
        return link_target(lambda: FileTarget(file), "--file")
    return None


_DEVICE_OPTIONS: Final = (
    click.option("--link", "link", metavar="SPEC", help=f"The device as a link spec: {link_usage()}."),
    click.option("--tcp", "tcp", metavar="IP:PORT", help="Device agent over TCP (tcp:IP:PORT)."),
    click.option("--serial", "serial", metavar="PORT", help="Device agent on a serial port (serial:PORT)."),
    click.option("--baud-rate", default=DEFAULT_BAUD_RATE, show_default=True, help="Serial line speed."),
    click.option(
        "--file",
        "file",
        type=click.Path(dir_okay=False, path_type=Path),
        help="Write the request frame to a file instead (no device answer; file:PATH).",
    ),
)
