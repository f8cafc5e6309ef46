"""Running provkit commands in-process, FCU homes made by the CLI, and reading its JSON status."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

from provkit.cli.main import cli
from provkit.factory.home import write_demo_server_cas


def run_cli(*args: str) -> Result:
    """Invoke ``provkit ARGS`` in-process; exceptions propagate (a crash fails the test)."""
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def make_fcu_home(root: Path, *, setup: bool = True, intermediate: bool = False) -> Path:
    """``provkit init`` a home under ``root`` with the demo server CAs; run setup unless told not to."""
    home = root / "fcu"
    assert run_cli("init", str(home)).exit_code == 0
    write_demo_server_cas(home / "resources")
    if intermediate:
        config = home / "config" / "fcu.yml"
        config.write_text(
            config.read_text().replace("setup-ca-as-intermediate: false", "setup-ca-as-intermediate: true")
        )
    if setup:
        result = run_cli("--home-dir", str(home), "setup")
        assert result.exit_code == 0, result.output
    return home


def json_status(output: str) -> dict[str, Any]:
    """The last JSON object line a command printed (the ft_demo-style final status)."""
    lines = [line for line in output.splitlines() if line.startswith("{")]
    assert lines, f"no JSON status in output: {output!r}"
    return json.loads(lines[-1])  # type: ignore[no-any-return]
