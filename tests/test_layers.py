"""The layer rules hold: import-linter contracts, and what importing the device side pulls in."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_import_linter_contracts_are_kept() -> None:
    """lint-imports reports every contract in pyproject.toml as kept."""
    lint_imports = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run(
        [str(lint_imports), "--no-cache"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_device_side_imports_no_factory_registry_or_cli() -> None:
    """Importing provkit.device loads no factory, registry, line or CLI code, nor click or SQLAlchemy."""
    code = (
        "import sys, provkit.device, provkit.device.fcc, provkit.device.kcm\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('click', 'sqlalchemy', 'rich')\n"
        "       or m.startswith(('provkit.factory', 'provkit.registry', 'provkit.cli', 'provkit.line'))]\n"
        "print(sorted(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_pure_layers_import_no_io_libraries() -> None:
    """provkit.wire, provkit.params and provkit.lwm2m load no sockets, serial, sqlite or cryptography."""
    code = (
        "import sys, provkit.wire.bundle, provkit.wire.response, provkit.wire.framing\n"
        "import provkit.params, provkit.lwm2m\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in\n"
        "       ('serial', 'sqlite3', '_sqlite3', 'sqlalchemy', 'cryptography', 'click', 'rich')]\n"
        "print(sorted(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
