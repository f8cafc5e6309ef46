"""Root of the ``provkit`` command line.

The root group takes the factory tool demo's global options and loads each subcommand
lazily, so ``provkit device serve`` on a production line does not import the registry's
database drivers and ``provkit --help`` stays fast.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Final

import click

from provkit import __version__
from provkit.cli._lazy import LazyGroup
from provkit.cli._state import CliState, ca_key_options
from provkit.errors import LogFileError

# name -> "module:attribute" of a click command; imported only when that command runs.
_SUBCOMMANDS: Final[dict[str, tuple[str, str]]] = {
    "init": ("provkit.cli.factory_cmds:init_cmd", "Write a commented fcu.yml template."),
    "setup": ("provkit.cli.factory_cmds:setup_cmd", "Create the factory CA (keystore)."),
    "inject": ("provkit.cli.factory_cmds:inject_cmd", "Provision one device (prepare, write, verify)."),
    "demo": ("provkit.cli.factory_cmds:demo_cmd", "Provision a virtual device on loopback."),
    "device": ("provkit.cli.device_cmds:device_group", "Run or inspect a device agent."),
    "batch": ("provkit.cli.batch_cmds:batch_group", "Provision many devices."),
    "registry": ("provkit.cli.registry_cmds:registry_group", "Query the device registry."),
    "lwm2m": ("provkit.cli.lwm2m_cmds:lwm2m_group", "LwM2M SenML factory provisioning."),
    "server": ("provkit.cli.server_cmds:server_group", "LwM2M bootstrap/registration server, trust."),
    "developer": (
        "provkit.cli.developer_cmds:developer_group",
        "Developer flow: API key, developer and update certificates.",
    ),
}


def configure_logging(verbosity: int, log_file: Path | None) -> None:
    """Send provkit's log records to stderr (and ``log_file``) at the chosen verbosity.

    Raises:
        LogFileError: ``log_file`` cannot be created or opened for appending.
    """
    level = {0: logging.WARNING, 1: logging.INFO}.get(verbosity, logging.DEBUG)
    handlers: list[logging.Handler] = [logging.StreamHandler()]
    if log_file is not None:
        try:
            log_file.parent.mkdir(parents=True, exist_ok=True)
            handlers.append(logging.FileHandler(log_file, encoding="utf-8"))
        except (OSError, ValueError) as exc:  # ValueError: a NUL in the name
            raise LogFileError(log_file, exc) from exc
    logging.basicConfig(
        level=level,
        handlers=handlers,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        force=True,
    )


@click.group(cls=LazyGroup, lazy=_SUBCOMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="provkit")
@click.option("-v", "--verbose", "verbosity", count=True, help="More output: -v info, -vv debug.")
@click.option("--log-file", type=click.Path(dir_okay=False, path_type=Path), help="Also log to this file.")
@click.option(
    "--config-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="fcu.yml to use (default: <home>/config/fcu.yml).",
)
@click.option(
    "--home-dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="FCU_HOME_DIR",
    help="FCU home directory (default: $FCU_HOME_DIR or the working directory).",
)
@ca_key_options
@click.pass_context
def cli(
    ctx: click.Context,
    verbosity: int,
    log_file: Path | None,
    config_file: Path | None,
    home_dir: Path | None,
    ca_key: str | None,
    pkcs11_module: Path | None,
    pin_file: Path | None,
) -> None:
    """Provision IoT devices with keys, certificates and configuration."""
    configure_logging(verbosity, log_file)
    ctx.obj = CliState(verbosity, log_file, config_file, home_dir, ca_key, pkcs11_module, pin_file)


def main() -> None:
    """Console entry point: run the CLI, turning provkit errors into exit status 1."""
    try:
        status = cli.main(standalone_mode=False)
    except click.exceptions.Abort as abort:
        click.echo("Aborted.", err=True)
        # click turns Ctrl-C into an Abort raised from (or, at a prompt, during) a KeyboardInterrupt:
        # that is the shell's 130. A declined confirmation is an ordinary refusal, exit status 1.
        interrupted = any(isinstance(e, KeyboardInterrupt) for e in (abort.__cause__, abort.__context__))
        raise SystemExit(130 if interrupted else 1) from None
    except click.ClickException as error:
        error.show()
        raise SystemExit(error.exit_code) from None
    if isinstance(status, int) and status:
        raise SystemExit(status)
