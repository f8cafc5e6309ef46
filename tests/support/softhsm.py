"""A real SoftHSM2 token per test: its own ``SOFTHSM2_CONF`` and token directory under ``tmp_path``.

SoftHSM2 is required (a missing one fails the test) when ``CI`` or ``PROVKIT_TEST_POSTGRES_URL``
is set, as they are in CI and in the team's pre-landing checks; elsewhere a machine without
SoftHSM2 skips these tests with the command that installs it.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import pytest

MODULE: Final = "/usr/lib/softhsm/libsofthsm2.so"
UTIL: Final = "softhsm2-util"
PIN: Final = "4826-1357"
SO_PIN: Final = "so-secret-99"

_FLAGS_ATTRIBUTE: Final = struct.pack(">QQ", 0x8000534B, 2)
"""SoftHSM2's token file: attribute CKA_OS_TOKENFLAGS (vendor 0x80005348 + 3), kind 2 (unsigned long)."""
_USER_PIN_LOCKED: Final = 0x00040000
"""CKF_USER_PIN_LOCKED in CK_TOKEN_INFO.flags."""


def required() -> bool:
    """Whether a missing SoftHSM2 must fail the test rather than skip it."""
    return bool(os.environ.get("CI") or os.environ.get("PROVKIT_TEST_POSTGRES_URL"))


def require_softhsm() -> None:
    """Skip (or, when :func:`required`, fail) unless SoftHSM2's module and tool are installed."""
    if Path(MODULE).is_file() and shutil.which(UTIL):
        return
    message = f"SoftHSM2 is not installed ({MODULE}, {UTIL}): apt-get install softhsm2"
    if required():
        pytest.fail(message)
    pytest.skip(message)


@dataclass(frozen=True, slots=True)
class SoftToken:
    """An initialised SoftHSM2 token of this test.

    Attributes:
        label: the token label (unique per test, so no other test's token matches).
        conf: the ``SOFTHSM2_CONF`` file.
        tokendir: the directory holding the token.
        pin: the user PIN.
    """

    label: str
    conf: Path
    tokendir: Path
    pin: str = PIN
    module: str = MODULE

    def uri(self, obj: str = "provkit-ca", *, module: bool = False) -> str:
        """``pkcs11:token=<label>;object=<obj>``, with ``module-path`` when ``module``."""
        text = f"pkcs11:token={self.label};object={obj}"
        return f"{text}?module-path={self.module}" if module else text

    def env(self) -> dict[str, str]:
        """The environment a subprocess needs to see this token (and its PIN)."""
        return {**os.environ, "SOFTHSM2_CONF": str(self.conf), "PROVKIT_PKCS11_PIN": self.pin}

    def token_directory(self) -> Path:
        """The token's own directory (SoftHSM2 names it by a UUID)."""
        (found,) = [path for path in self.tokendir.iterdir() if path.is_dir()]
        return found

    def lock_user_pin(self) -> None:
        """Set CKF_USER_PIN_LOCKED in the token's stored flags, as a token that locked its PIN reports.

        SoftHSM2 itself never locks a PIN after failed logins; a hardware token does, and
        then reports the flag in ``CK_TOKEN_INFO``.
        """
        path = self.token_directory() / "token.object"
        data = bytearray(path.read_bytes())
        at = data.index(_FLAGS_ATTRIBUTE) + len(_FLAGS_ATTRIBUTE)
        (flags,) = struct.unpack_from(">Q", data, at)
        struct.pack_into(">Q", data, at, flags | _USER_PIN_LOCKED)
        path.write_bytes(bytes(data))

    def remove(self) -> Path:
        """Take the token away (its directory moves aside); returns where it went."""
        source = self.token_directory()
        aside = self.tokendir.parent / f"removed-{source.name}"
        source.rename(aside)
        return aside


def make_token(base: Path, monkeypatch: pytest.MonkeyPatch) -> SoftToken:
    """Create a SoftHSM2 configuration under ``base`` and initialise one token in it.

    ``SOFTHSM2_CONF`` is set for the rest of the test; provkit rescans the module when it
    does not find the token, so the new token is seen even if an earlier test loaded it.
    """
    require_softhsm()
    tokendir = base / "tokens"
    tokendir.mkdir(parents=True)
    conf = base / "softhsm2.conf"
    settings = f"directories.tokendir = {tokendir}\nobjectstore.backend = file\nlog.level = ERROR\n"
    conf.write_text(settings, encoding="utf-8")
    monkeypatch.setenv("SOFTHSM2_CONF", str(conf))
    label = f"factory-{uuid.uuid4().hex[:12]}"
    subprocess.run(
        [UTIL, "--init-token", "--free", "--label", label, "--so-pin", SO_PIN, "--pin", PIN],
        check=True,
        capture_output=True,
        env={**os.environ, "SOFTHSM2_CONF": str(conf)},
        timeout=60,
    )
    return SoftToken(label, conf, tokendir)
