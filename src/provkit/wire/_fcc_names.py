"""How FCC matches the names it receives: ``strncmp(known, received, received_len) == 0``.

Every key FCC's bundle parser reads — top-level groups, item fields, CSR extensions and
storage media, key types and formats — and the config-param names it treats specially
(``mbed.CurrentTime`` and the three four-byte parameters) are compared this way in
``fcc-bundle-handler/source/*.c`` of PelionIoT/mbed-cloud-client: only the received
name's own length counts, so a prefix of a known name (``Cert``, ``Nam``, ``ECCPriv``,
even ``""``) selects it, and the comparison stops at a NUL byte in either string. The
first candidate in FCC's own order wins.
"""

from __future__ import annotations

from functools import lru_cache


def wire_bytes(text: str) -> bytes:
    """The bytes a received text string had on the wire (invalid UTF-8 kept as read)."""
    return text.encode("utf-8", "surrogateescape")


def fcc_name_matches(known: str, received: str) -> bool:
    """Whether FCC takes ``received`` for ``known``: ``strncmp(known, received, len(received)) == 0``."""
    reference = known.encode("ascii")
    for index, byte in enumerate(wire_bytes(received)):
        expected = reference[index] if index < len(reference) else 0
        if expected != byte:
            return False
        if expected == 0:
            return True  # both strings end here
    return True


def fcc_match(received: str, candidates: tuple[str, ...]) -> str | None:
    """The first of ``candidates`` (in FCC's order) that ``received`` selects, or ``None``."""
    return _first_match(str(received), candidates)


@lru_cache(maxsize=4096)
def _first_match(received: str, candidates: tuple[str, ...]) -> str | None:
    # A bundle repeats a handful of names many times: remember the answers.
    return next((known for known in candidates if fcc_name_matches(known, received)), None)
