"""State shared by all subcommands: the ft_demo-style global options."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class CliState:
    """Global options given before the subcommand.

    Attributes:
        verbosity: 0 (warnings), 1 (``-v``, info) or 2 (``-vv``, debug).
        log_file: where log records also go, if set.
        config_file: ``fcu.yml`` to use instead of ``<home>/config/fcu.yml``.
        home_dir: FCU home directory (else ``FCU_HOME_DIR`` or the working directory).
    """

    verbosity: int = 0
    log_file: Path | None = None
    config_file: Path | None = None
    home_dir: Path | None = None
