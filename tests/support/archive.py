"""Reads a batch's bundle after its attempt is over: unsealed with the station's archive key."""

from __future__ import annotations

from pathlib import Path

from provkit.line.archive import ARCHIVE_PRIVATE_KEY, load_archive_private_key, sealed_path, unseal_bundle
from provkit.line.layout import BatchDir


def settled_bundle(out: Path, home: Path, attempt_id: int, endpoint: str) -> bytes:
    """The clear bundle of a finished attempt, from its ``.sealed`` file and the keystore's archive key."""
    key = load_archive_private_key(home / "keystore" / ARCHIVE_PRIVATE_KEY)
    return unseal_bundle(sealed_path(BatchDir(out).bundle(attempt_id, endpoint)), key)
