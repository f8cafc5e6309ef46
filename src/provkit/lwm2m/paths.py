"""LwM2M paths (``/oid/iid/rid/riid``) as the Anjay device parses them (``anjay_senml_in.c``).

A path is ``/`` or one to four ``/``-separated decimal ids, each 0..65534 (65535 is the
"no id" marker and therefore invalid), with no empty segment and no trailing slash, and
at most 24 bytes long (``sizeof("/65535/65535/65535/65535")`` minus the NUL).
"""

from __future__ import annotations

from typing import Final

from provkit.errors import SenmlError

MAX_ID: Final = 65534
"""Largest object, instance or resource id."""

MAX_PATH_BYTES: Final = 24
"""Longest path text the device's buffer holds."""

Path = tuple[int, ...]


class PathError(SenmlError):
    """A path is malformed, too long, or does not reach the level required."""


def parse_path(text: str) -> Path:
    """Parse ``text`` into its ids (``"/"`` → ``()``).

    Raises:
        SenmlError: the path is too long, not absolute, has an empty or non-decimal
            segment, an id above 65534, or more than four levels.
    """
    if len(text.encode("utf-8")) > MAX_PATH_BYTES:
        raise PathError(f"path {text[:40]!r} is longer than {MAX_PATH_BYTES} bytes")
    if not text.startswith("/"):
        raise PathError(f"path {text!r} does not start with '/'")
    if text == "/":
        return ()
    parts = text[1:].split("/")
    if len(parts) > 4:
        raise PathError(f"path {text!r} has more than 4 levels")
    ids = []
    for part in parts:
        # isdecimal() also admits non-ASCII digits; the device only knows 0-9.
        if not part or not part.isascii() or not part.isdigit():
            raise PathError(f"path {text!r} has an invalid segment {part!r}")
        value = int(part)
        if value > MAX_ID:
            raise PathError(f"path {text!r}: id {value} is above {MAX_ID}")
        ids.append(value)
    return tuple(ids)


def parse_resource_path(text: str) -> Path:
    """Parse a path that must name a Resource or Resource Instance (3 or 4 levels).

    Raises:
        SenmlError: as :func:`parse_path`, or the path stops above a resource.
    """
    ids = parse_path(text)
    if len(ids) < 3:
        raise PathError(f"path {text!r} does not reach a resource (/oid/iid/rid needed)")
    return ids


def format_path(ids: Path) -> str:
    """Return the text of a path (``(0, 1, 3)`` → ``"/0/1/3"``).

    Raises:
        SenmlError: more than four ids, or an id outside 0..65534.
    """
    if len(ids) > 4:
        raise PathError(f"path {ids!r} has more than 4 levels")
    for value in ids:
        if not 0 <= value <= MAX_ID:
            raise PathError(f"id {value} is outside 0..{MAX_ID}")
    return "/" + "/".join(str(value) for value in ids) if ids else "/"
