"""State shared by all subcommands: the ft_demo-style global options."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import click

if TYPE_CHECKING:
    from provkit.factory.api import FactoryToolApi
    from provkit.factory.ca_key import CaKeySource


@dataclass(frozen=True, slots=True)
class CliState:
    """Global options given before the subcommand.

    Attributes:
        verbosity: 0 (warnings), 1 (``-v``, info) or 2 (``-vv``, debug).
        log_file: where log records also go, if set.
        config_file: ``fcu.yml`` to use instead of ``<home>/config/fcu.yml``.
        home_dir: FCU home directory (else ``FCU_HOME_DIR`` or the working directory).
        ca_key: the factory CA key's PKCS#11 URI (``--ca-key``).
        pkcs11_module: the PKCS#11 module file (``--pkcs11-module``).
        pin_file: file holding the token's user PIN (``--pin-file``).
    """

    verbosity: int = 0
    log_file: Path | None = None
    config_file: Path | None = None
    home_dir: Path | None = None
    ca_key: str | None = None
    pkcs11_module: Path | None = None
    pin_file: Path | None = None

    def ca_key_choice(self) -> CaKeySource | None:
        """The CA key options given, or ``None`` when there are none."""
        from provkit.factory.ca_key import CaKeySource

        if not (self.ca_key or self.pkcs11_module or self.pin_file):
            return None
        module = str(self.pkcs11_module) if self.pkcs11_module else None
        return CaKeySource(self.ca_key or "", module=module, pin_file=self.pin_file)

    def factory_api(self) -> FactoryToolApi:
        """The FCU API for these options (home, fcu.yml, CA key)."""
        from provkit.factory.api import FactoryToolApi

        choice = self.ca_key_choice()
        return FactoryToolApi(home_dir=self.home_dir, config_file=self.config_file, ca_key=choice)


_F = TypeVar("_F", bound=Callable[..., object])


def ca_key_options(func: _F) -> _F:
    """Add ``--ca-key``, ``--pkcs11-module`` and ``--pin-file`` (the factory CA key in a token)."""
    options = [
        click.option(
            "--ca-key",
            metavar="URI",
            help="The factory CA key in a PKCS#11 token (RFC 7512, e.g. 'pkcs11:token=factory;object=ca').",
        ),
        click.option(
            "--pkcs11-module",
            type=click.Path(dir_okay=False, path_type=Path),
            help="The token's PKCS#11 module (e.g. /usr/lib/softhsm/libsofthsm2.so).",
        ),
        click.option(
            "--pin-file",
            type=click.Path(dir_okay=False, path_type=Path),
            help="File holding the token's user PIN (else $PROVKIT_PKCS11_PIN; never on the command line).",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func
