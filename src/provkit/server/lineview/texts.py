"""Words for the codes a registry records, as the line view shows them.

An attempt's ``error_code`` comes from one of three spaces that do not overlap: the
FCU's (100–409), the factory tool's (1000–1023, ``ft_demo``) and provkit's own (4000
and up, each the ``default_code`` of an exception class). A device that refused a bundle
is recorded with the factory tool's 1004 and its own ``ReturnStatus``, an FCC status.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Final

from provkit.codes import FccStatus, FcuErrorCode, FtErrorCode
from provkit.errors import ProvkitError

_PLACEHOLDER: Final = re.compile(r"\s*\{\}")


def _template_text(template: str) -> str:
    """A message template without its placeholders (``"Error #{}"`` → ``"Error #…"``)."""
    text = _PLACEHOLDER.sub(" …", template).strip()
    return re.sub(r"\s+([:.,;])", r"\1", text).replace("# …", "#…")


@cache
def _provkit_codes() -> dict[int, str]:
    found: dict[int, str] = {}
    pending: list[type[ProvkitError]] = [ProvkitError]
    while pending:
        kind = pending.pop()
        pending.extend(kind.__subclasses__())
        code = getattr(kind, "default_code", None)
        summary = (kind.__doc__ or "").strip().splitlines()
        if isinstance(code, int) and code >= 4000 and summary and code not in found:
            found[code] = summary[0].rstrip(".")
    return found


def code_text(code: int) -> str:
    """What error code ``code`` means, in the words of the tool that defines it."""
    for space in (FcuErrorCode, FtErrorCode):
        try:
            return _template_text(space(code).template)
        except ValueError:
            continue
    return _provkit_codes().get(code, "unknown code")


def device_status_text(status: int) -> str:
    """An FCC ``ReturnStatus`` as its C name and description."""
    try:
        known = FccStatus(status)
    except ValueError:
        return f"FCC status {status}"
    return f"{known.c_name}: {known.description}"
