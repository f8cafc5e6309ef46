"""The root command: global options, lazy subcommands, error mapping."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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


def test_unwritable_log_file_is_error_1000_not_a_traceback(tmp_path: Path) -> None:
    """A --log-file that cannot be opened ends with a coded error and exit status 1."""
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    for target in (blocker / "run.log", blocker / "sub" / "run.log"):
        result = CliRunner().invoke(cli, ["--log-file", str(target), "registry", "--help"])
        assert result.exit_code == 1, result.output
        assert f"Error FT-1000: General error on factory tool: cannot open log file {target}" in result.output
        assert "Hint: give --log-file a path" in result.output
        assert result.exception is None or isinstance(result.exception, SystemExit)


def test_writable_log_file_receives_the_records(tmp_path: Path) -> None:
    """A log file in a new directory is created and written."""
    log = tmp_path / "logs" / "run.log"
    code = (
        "import logging, sys\n"
        "from provkit.cli.main import configure_logging\n"
        f"configure_logging(1, __import__('pathlib').Path({str(log)!r}))\n"
        "logging.getLogger('provkit.test').info('hello from the test')\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
    assert "hello from the test" in log.read_text(encoding="utf-8")


def test_every_group_turns_provkit_errors_into_exit_1() -> None:
    """Every click group of the CLI is a ProvkitGroup: commands raise, one place prints and exits."""
    import importlib
    import pkgutil

    import click

    import provkit.cli
    from provkit.cli._errors import ProvkitGroup

    groups = []
    for info in pkgutil.iter_modules(provkit.cli.__path__, "provkit.cli."):
        if info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        groups += [value for value in vars(module).values() if isinstance(value, click.Group)]
    assert len(groups) >= 8
    assert all(isinstance(group, ProvkitGroup) for group in groups), [g.name for g in groups]


def test_hints_name_cli_options_in_the_cli_and_settings_in_the_library() -> None:
    """A library hint names the setting (`pkcs11_module`); the CLI prints the option that sets it."""
    from provkit.cli._errors import CLI_SPELLING, cli_text, format_error
    from provkit.errors import HsmError

    error = HsmError("no module", hint="give `pkcs11_module` or module-path in the URI; `unknown` stays")
    assert format_error(error).endswith("Hint: give --pkcs11-module or module-path in the URI; unknown stays")
    assert all(flag.startswith("--") and "_" not in flag for flag in CLI_SPELLING.values())
    assert cli_text("plain text") == "plain text"


def test_library_hints_name_no_cli_flags() -> None:
    """No hint written outside the CLI spells a command-line option."""
    import re
    from pathlib import Path

    import provkit

    root = Path(provkit.__file__).parent
    offenders = []
    for path in root.rglob("*.py"):
        if "cli" in path.relative_to(root).parts:
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if re.search(r"hint\s*=.*--[a-z]", line):
                offenders.append(f"{path.relative_to(root)}:{number}")
    assert not offenders
