"""Ids of the Device Management records: 32 lower-case hex digits, in creation order.

The first 12 digits are the creation time in milliseconds and the other 20 are random,
so ids sort in the order records were made (the ``after`` cursor of a listing) and have
the shape Device Management clients check (``^[A-Za-z0-9]{32}``).
"""

from __future__ import annotations

import secrets
import time
from typing import Final

ID_LENGTH: Final = 32


def new_id(now_s: float | None = None) -> str:
    """A fresh id; ``now_s`` (Unix seconds) fixes its time part."""
    millis = int((time.time() if now_s is None else now_s) * 1000)
    return f"{millis & 0xFFFF_FFFF_FFFF:012x}{secrets.token_hex(10)}"


def is_id(text: str) -> bool:
    """Whether ``text`` has the shape of an id (32 hex digits)."""
    return len(text) == ID_LENGTH and all(c in "0123456789abcdef" for c in text)
