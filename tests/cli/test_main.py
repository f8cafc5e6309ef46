"""The root command: global options, lazy subcommands, error mapping."""

from __future__ import annotations

import subprocess
import sys

from click.testing import CliRunner

from provkit.cli.main import cli


def test_help_lists_every_subcommand_without_importing_them() -> None:
    """--help shows all subcommands from the lazy table."""
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    for name in ("init", "setup", "inject", "demo", "device", "batch", "registry", "lwm2m"):
        assert name in result.output


def test_version_option() -> None:
    """--version prints the package version."""
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0
    assert "provkit" in result.output


def test_help_does_not_import_heavy_modules() -> None:
    """Running --help imports neither the registry's SQLAlchemy nor the device side."""
    code = (
        "import sys\n"
        "from provkit.cli.main import cli\n"
        "try:\n    cli.main(['--help'], standalone_mode=False)\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in sys.modules if m.startswith(('sqlalchemy', 'provkit.device'))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_unknown_command_is_a_usage_error() -> None:
    """An unknown subcommand exits with click's usage status 2."""
    result = CliRunner().invoke(cli, ["no-such-command"])
    assert result.exit_code == 2
