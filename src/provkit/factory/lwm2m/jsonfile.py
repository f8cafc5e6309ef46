"""Reading the small JSON input files of the LwM2M tools (cert-config, server file)."""

from __future__ import annotations

import json
from pathlib import Path

from provkit.errors import ProvkitError


def read_json(path: str | Path, error: type[ProvkitError], what: str) -> object:
    """Return the parsed JSON content of ``path``.

    Args:
        path: the file.
        error: the error class of the caller's domain (each carries its own code).
        what: how the message names the file, e.g. ``"cert-config"``.

    Raises:
        ProvkitError: an ``error`` when the file is unreadable or not JSON.
    """
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise error(f"cannot read {what} {path}: {exc}") from exc
