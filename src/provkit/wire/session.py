"""The session flags of a request bundle and FCC's rules for combining them.

A bundle says how its session goes with three integer flags and a session id:
``Verify`` (run device verification after storing; FCC's default is yes), ``Disable``
(close the factory flow after this bundle), ``KpAlvSess`` (more bundles follow on this
connection) and ``SID`` (the FCU's session id, echoed in the response). The factory
encoder refuses a combination FCC would refuse, and the device answers it with FCC's
status, from the same rules (:func:`session_violation`), as ``fcc_bundle_handler.c`` in
PelionIoT/mbed-cloud-client applies them once every group of a bundle is read.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Final

from provkit.codes import FccStatus


class SessionFlag(StrEnum):
    """The wire keys of the three integer flags (``fcc_bundle_fields.h``)."""

    VERIFY = "Verify"
    DISABLE = "Disable"
    KEEP_ALIVE = "KpAlvSess"


SID_KEY: Final = "SID"
"""The wire key of the session id."""


@dataclass(frozen=True, slots=True)
class SessionFlags:
    """What a bundle says about its session; ``None`` means the key is absent.

    Attributes:
        verify: ``Verify``: run device verification once the bundle is stored.
        disable: ``Disable``: refuse every later bundle.
        keep_alive: ``KpAlvSess``: the session stays open for another bundle.
        sid: ``SID``: the FCU session id the device echoes.
    """

    verify: bool | None = None
    disable: bool | None = None
    keep_alive: bool | None = None
    sid: str | None = None

    @property
    def verifies(self) -> bool:
        """Whether the device verifies after storing (FCC's default when ``Verify`` is absent)."""
        return self.verify is not False

    @property
    def disables(self) -> bool:
        """Whether the factory flow closes after this bundle."""
        return bool(self.disable)

    @property
    def session_finished(self) -> bool:
        """Whether the session ends with this bundle (``KpAlvSess`` absent or 0)."""
        return not self.keep_alive

    def get(self, flag: SessionFlag) -> bool | None:
        """The value of one flag as the bundle gave it."""
        return {
            SessionFlag.VERIFY: self.verify,
            SessionFlag.DISABLE: self.disable,
            SessionFlag.KEEP_ALIVE: self.keep_alive,
        }[flag]

    def with_flag(self, flag: SessionFlag | str, value: bool) -> SessionFlags:
        """A copy with one flag set, as a later copy of its key overrides an earlier one."""
        match SessionFlag(flag):
            case SessionFlag.VERIFY:
                return replace(self, verify=value)
            case SessionFlag.DISABLE:
                return replace(self, disable=value)
            case SessionFlag.KEEP_ALIVE:
                return replace(self, keep_alive=value)

    def with_sid(self, sid: str) -> SessionFlags:
        """A copy with the session id set."""
        return replace(self, sid=sid)


@dataclass(frozen=True, slots=True)
class SessionViolation:
    """A combination of flags FCC refuses: the status it answers and why."""

    status: FccStatus
    reason: str


def session_violation(flags: SessionFlags, *, csr_requested: bool) -> SessionViolation | None:
    """Apply FCC's session rules to a bundle's flags; return the first one broken.

    Args:
        flags: the bundle's session flags.
        csr_requested: whether the bundle has a ``CsrReqs`` group.

    Returns:
        ``None`` when the combination is acceptable; else status 35 for ``Disable`` with
        ``KpAlvSess``, or 20 for ``CsrReqs`` without ``SID``, without an explicit
        ``Verify`` 0, or with ``Disable`` 1.
    """
    if flags.disable and flags.keep_alive:
        return SessionViolation(
            FccStatus.BUNDLE_INVALID_KEEP_ALIVE_SESSION_STATUS,
            "Disable=1 is not allowed in a keep-alive session",
        )
    if csr_requested:
        # The device answers with the CSRs and waits for the certificate message: it must
        # know the session, must not verify a half-provisioned device, nor close the flow.
        if flags.sid is None:
            return SessionViolation(FccStatus.BUNDLE_ERROR, "CsrReqs require a SID")
        if flags.verify is not False:
            return SessionViolation(FccStatus.BUNDLE_ERROR, "CsrReqs require Verify explicitly set to 0")
        if flags.disable:
            return SessionViolation(FccStatus.BUNDLE_ERROR, "CsrReqs cannot be combined with Disable=1")
    return None
