"""Only :mod:`provkit.crypto` may import ``cryptography``: every other module goes through it."""

from __future__ import annotations

import ast
from pathlib import Path

import provkit

SRC = Path(provkit.__file__).parent
CRYPTO = SRC / "crypto"


def _imports_cryptography(tree: ast.AST) -> list[int]:
    """Return the line numbers of every ``import cryptography…`` / ``from cryptography… import``."""
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        if any(name == "cryptography" or name.startswith("cryptography.") for name in names):
            lines.append(node.lineno)
    return lines


def test_detector_sees_every_import_form() -> None:
    """The scan finds plain, dotted, from- and function-local imports, and ignores look-alikes."""
    source = (
        "import cryptography\n"
        "import os, cryptography.x509\n"
        "from cryptography.hazmat.primitives import hashes\n"
        "def f():\n"
        "    from cryptography import x509\n"
        "import cryptographyx\n"
        "from provkit.crypto import keys\n"
        "from .cryptography import thing\n"
    )
    assert _imports_cryptography(ast.parse(source)) == [1, 2, 3, 5]


def test_no_module_outside_provkit_crypto_imports_cryptography() -> None:
    """Scan every module of src/provkit outside provkit/crypto."""
    modules = [path for path in SRC.rglob("*.py") if CRYPTO not in path.parents]
    assert len(modules) > 50  # the scan really walked the package
    offenders = {
        str(path.relative_to(SRC)): lines
        for path in modules
        if (lines := _imports_cryptography(ast.parse(path.read_text(encoding="utf-8"), str(path))))
    }
    assert offenders == {}
