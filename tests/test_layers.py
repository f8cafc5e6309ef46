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


def loaded_after(imports: str) -> list[str]:
    """Names of every module a fresh interpreter has loaded after running ``imports``."""
    code = f"import sys\n{imports}\nprint('\\n'.join(sorted(sys.modules)))\n"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return out.stdout.split()


def test_device_side_imports_no_factory_registry_or_cli() -> None:
    """Importing provkit.device loads no factory, registry, line or CLI code, nor click or SQLAlchemy."""
    loaded = loaded_after("import provkit.device, provkit.device.fcc, provkit.device.kcm")
    bad = [
        m
        for m in loaded
        if m.split(".")[0] in ("click", "sqlalchemy", "rich")
        or m.startswith(("provkit.factory", "provkit.registry", "provkit.cli", "provkit.line"))
    ]
    assert bad == []


def test_pure_layers_import_no_io_libraries() -> None:
    """provkit.wire, provkit.params and provkit.lwm2m load no sockets, serial, sqlite or cryptography."""
    loaded = loaded_after(
        "import provkit.wire.bundle, provkit.wire.response, provkit.wire.framing\n"
        "import provkit.params, provkit.lwm2m"
    )
    io = ("serial", "sqlite3", "_sqlite3", "sqlalchemy", "cryptography", "click", "rich")
    assert [m for m in loaded if m.split(".")[0] in io] == []


def test_transports_know_neither_side() -> None:
    """Importing every transport module loads no device, factory, registry, line or CLI code."""
    loaded = loaded_after(
        "import importlib, pkgutil, provkit.transport\n"
        "for m in pkgutil.iter_modules(provkit.transport.__path__):\n"
        "    importlib.import_module('provkit.transport.' + m.name)"
    )
    sides = ("provkit.device", "provkit.factory", "provkit.registry", "provkit.line", "provkit.cli")
    assert [m for m in loaded if m.startswith((*sides, "provkit.developer"))] == []
