"""The KCM item name rule, the one place it is written down.

KCM accepts item names of 1 to 100 characters from ``A–Z a–z 0–9 . - _``
(``KCM_MAX_FILENAME_SIZE`` in ``key-config-manager/kcm_defs.h`` and
``storage_check_name_validity`` in ``storage/source/storage_common.c``, under
``factory-configurator-client/`` of PelionIoT/mbed-cloud-client). The
factory side refuses such names before a bundle is built, the wire encoder before it is
written, and the device's KCM answers the documented status for each fault.
"""

from __future__ import annotations

import re
from enum import Enum
from typing import Final

MAX_NAME_LENGTH: Final = 100
"""Longest KCM item name, in characters."""

NAME_RULE: Final = "1-100 characters of A-Z a-z 0-9 . - _"
"""The rule in words, for error messages."""

_NAME_CHARS: Final = re.compile(r"[A-Za-z0-9._-]+")


class NameFault(Enum):
    """Why a name is not a KCM item name (each has its own KCM status on the device)."""

    EMPTY = "empty"
    TOO_LONG = "too long"
    INVALID_CHARACTERS = "invalid characters"


def name_fault(name: object) -> NameFault | None:
    """Return what is wrong with ``name`` as a KCM item name, or ``None`` when it is valid.

    A name that is not text counts as having invalid characters.
    """
    if not isinstance(name, str):
        return NameFault.INVALID_CHARACTERS
    if not name:
        return NameFault.EMPTY
    if len(name) > MAX_NAME_LENGTH:
        return NameFault.TOO_LONG
    if not _NAME_CHARS.fullmatch(name):
        return NameFault.INVALID_CHARACTERS
    return None


def is_kcm_name(name: object) -> bool:
    """Whether ``name`` is a valid KCM item name."""
    return name_fault(name) is None
