"""PKCS#11 modules, tokens and logged-in sessions, through ``python-pkcs11``.

A module is loaded once per process. A process created by ``fork`` inherits the parent's
loaded module, but PKCS#11 requires every process to call ``C_Initialize`` itself (its
sessions are the parent's): the first use in the child re-initialises the module, so
worker pools may fork from a parent that has already signed.

Within one process, :class:`SessionPool` lends each signing operation a session of its own
(a session carries one operation's state between ``C_SignInit`` and ``C_Sign``). The pool's
first session logs the user in; PKCS#11 logins are per application and token, so every
later session is logged in too and is opened without the PIN. Closing the pool closes the
others first and the logging-in session last (closing it logs out).

``python-pkcs11`` initialises a module with ``C_Initialize(NULL)``, which tells it that the
application makes no concurrent calls; SoftHSM2 then runs without its mutexes, and
concurrent calls from several threads crash it. Every call into a module therefore holds
:data:`LIBRARY_LOCK`: threads of one process take turns at the token (a signature takes
tens of microseconds in SoftHSM2, while building the certificate around it runs in
parallel), and processes each have their own module instance and sign in parallel.

Every library failure is translated into an :class:`~provkit.errors.HsmError` with its FCU
code (400–409); the PIN never appears in a message.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Final

import pkcs11
from pkcs11 import exceptions as p11e

from provkit.codes import FcuErrorCode
from provkit.crypto.hsm.uri import Pkcs11Uri
from provkit.errors import HsmError

if TYPE_CHECKING:
    from pkcs11._pkcs11 import lib as Library

PIN_ENV: Final = "PROVKIT_PKCS11_PIN"
"""Environment variable holding the token's user PIN."""

MODULE_DIRS: Final = (
    "/usr/lib/x86_64-linux-gnu/pkcs11",
    "/usr/lib/aarch64-linux-gnu/pkcs11",
    "/usr/lib64/pkcs11",
    "/usr/lib/pkcs11",
    "/usr/lib/softhsm",
    "/usr/local/lib/softhsm",
)
"""Where ``module-name=<name>`` is looked for, as ``lib<name>.so`` or ``<name>.so`` (p11-kit's
module directories and SoftHSM2's)."""

_TOKEN_GONE: Final = (
    p11e.TokenNotPresent,
    p11e.TokenNotRecognised,
    p11e.DeviceRemoved,
    p11e.DeviceError,
    p11e.DeviceMemory,
    p11e.SessionClosed,
    p11e.SessionHandleInvalid,
    p11e.SessionCount,
    p11e.ObjectHandleInvalid,
    p11e.KeyHandleInvalid,
    p11e.GeneralError,
    p11e.FunctionFailed,
    p11e.UserNotLoggedIn,
)
"""Failures of a token that was usable a moment ago: removed, reset or broken."""

LIBRARY_LOCK: Final = threading.RLock()
"""Held around every call into a PKCS#11 module (see the module docstring)."""
_lock = LIBRARY_LOCK
_modules: dict[str, _Module] = {}
_pools: dict[tuple[str, str], SessionPool] = {}


@dataclass(slots=True)
class _Module:
    """A loaded module: the process that initialised it and how often it was (re)initialised."""

    library: Library
    pid: int
    generation: int


@dataclass(frozen=True, slots=True)
class TokenKeyRef:
    """Where a token key is and how to log in: the URI, the module file and the PIN.

    Attributes:
        uri: the key's PKCS#11 URI (path attributes select token and object).
        module: the PKCS#11 module file.
        pin: the user PIN (kept out of ``repr``).
    """

    uri: Pkcs11Uri
    module: str
    pin: str = field(repr=False)
    pool_key: tuple[str, str] = field(init=False, repr=False, compare=False)
    """Which session pool serves the key: module and token attributes (computed once, used per signature)."""

    def __post_init__(self) -> None:
        token = self.uri.without_query().replace(object=None, id=None, type=None)
        object.__setattr__(self, "pool_key", (self.module, str(token)))

    @property
    def label(self) -> str:
        """The URI without module and PIN attributes, for messages."""
        return str(self.uri.without_query())


def resolve_module(uri: Pkcs11Uri, module: str | os.PathLike[str] | None) -> str:
    """The module file to load: ``module`` if given, else the URI's ``module-path`` or ``module-name``.

    Raises:
        HsmError: 400 when none is given or ``module-name`` is found in no module directory.
    """
    if module:
        return os.fspath(module)
    if uri.module_path:
        return uri.module_path
    if uri.module_name:
        for directory in MODULE_DIRS:
            for name in (f"lib{uri.module_name}.so", f"{uri.module_name}.so"):
                candidate = Path(directory) / name
                if candidate.is_file():
                    return str(candidate)
        raise HsmError.from_code(
            FcuErrorCode.HSM_MODULE_LOAD_FAILED,
            uri.module_name,
            f"no lib{uri.module_name}.so in {', '.join(MODULE_DIRS)}",
            hint="give the module file as `pkcs11_module` or module-path in the URI",
        )
    raise HsmError.from_code(
        FcuErrorCode.HSM_MODULE_LOAD_FAILED,
        "(none given)",
        "no PKCS#11 module named",
        hint="give `pkcs11_module` (a path), module-path=PATH in the URI, or pkcs11-module in fcu.yml",
    )


def read_pin(
    pin_file: str | os.PathLike[str] | None, uri: Pkcs11Uri, *, environ: Mapping[str, str] | None = None
) -> str:
    """The user PIN: from ``pin_file``, else ``$PROVKIT_PKCS11_PIN``, else the URI's ``pin-source`` file.

    A PIN file holds the PIN on its first line (a trailing newline is not part of it).

    Raises:
        HsmError: 408 when there is no PIN, or the PIN file cannot be read.
    """
    env = os.environ if environ is None else environ
    source = pin_file or (None if env.get(PIN_ENV) else uri.pin_source)
    if source is None:
        pin = env.get(PIN_ENV)
        if pin:
            return pin
        raise HsmError.from_code(
            FcuErrorCode.HSM_PIN_MISSING,
            str(uri.without_query()),
            hint=f"set {PIN_ENV} or give `pin_file` (the PIN is never taken from the command line)",
        )
    path = os.fspath(source)
    if path.startswith("file:"):
        path = path[len("file:") :].removeprefix("//")
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise HsmError.from_code(
            FcuErrorCode.HSM_PIN_MISSING,
            str(uri.without_query()),
            hint=f"cannot read the PIN file {path}: {exc}",
        ) from exc
    pin = text.splitlines()[0] if text else ""
    if not pin:
        raise HsmError.from_code(
            FcuErrorCode.HSM_PIN_MISSING, str(uri.without_query()), hint=f"the PIN file {path} is empty"
        )
    return pin


def load_module(path: str) -> Library:
    """Load and initialise the PKCS#11 module at ``path`` (once per process).

    Raises:
        HsmError: 400 when the file is missing, not a PKCS#11 module, or fails to initialise.
    """
    return _module(path).library


def _module(path: str) -> _Module:
    with _lock:
        loaded = _modules.get(path)
        if loaded is not None and loaded.pid == os.getpid():
            return loaded
        if loaded is not None:  # inherited through fork: this process must initialise it itself
            return _reinitialize(path, loaded)
        try:
            library = pkcs11.lib(path)
        except (p11e.PKCS11Error, OSError) as exc:
            raise _load_failed(path, exc) from exc
        _modules[path] = module = _Module(library, os.getpid(), 0)
        return module


def rescan(path: str) -> None:
    """Finalise and initialise the module again, so it sees tokens attached since it was loaded.

    Sessions of that module are closed by this (their pools reopen and log in again on
    next use). Many modules, SoftHSM2 among them, list their tokens only when initialised.

    Raises:
        HsmError: 400 when the module fails to initialise.
    """
    with _lock:
        loaded = _modules.get(path)
        if loaded is None:
            _module(path)
        else:
            _reinitialize(path, loaded)


def discard(ref: TokenKeyRef) -> None:
    """Forget ``ref``'s token after it failed in use: its sessions are dropped and the module rescanned.

    A token that comes back (plugged in again, its HSM reachable again) is then found and
    logged in to afresh by the next :func:`pool_for`; while it is away, that reports it absent.
    """
    with _lock:
        loaded = _modules.get(ref.module)
        if loaded is not None and loaded.pid == os.getpid():
            with contextlib.suppress(HsmError):  # the next use reports what is wrong
                _reinitialize(ref.module, loaded)


def _reinitialize(path: str, loaded: _Module) -> _Module:
    for key in [key for key in _pools if key[0] == path]:
        del _pools[key]  # their sessions die with the module's state
    try:
        loaded.library.reinitialize()
    except (p11e.PKCS11Error, OSError) as exc:
        raise _load_failed(path, exc) from exc
    loaded.pid = os.getpid()
    loaded.generation += 1
    return loaded


def _load_failed(path: str, exc: Exception) -> HsmError:
    return HsmError.from_code(
        FcuErrorCode.HSM_MODULE_LOAD_FAILED,
        path,
        str(exc) or type(exc).__name__,
        hint="check `pkcs11_module` (or module-path): it must be the token's PKCS#11 library",
    )


def find_token(path: str, uri: Pkcs11Uri) -> pkcs11.Token:
    """The one present token of module ``path`` that matches the URI's token, slot and library attributes.

    When none matches, the module is rescanned once (:func:`rescan`): a token plugged in
    after the module was loaded is found too.

    Raises:
        HsmError: 400 when the module cannot be loaded; 401 when no token or several match;
            406 when the module fails.
    """
    try:
        tokens = _matching_tokens(load_module(path), uri)
    except HsmError as exc:
        if exc.code != FcuErrorCode.HSM_TOKEN_FAILED:
            raise
        tokens = []  # listing failed on a token removed since the module was initialised
    if not tokens:
        rescan(path)
        tokens = _matching_tokens(load_module(path), uri)
    if len(tokens) != 1:
        why = "no present token has these attributes" if not tokens else f"{len(tokens)} tokens match"
        raise HsmError.from_code(
            FcuErrorCode.HSM_TOKEN_NOT_FOUND,
            str(uri.without_query()),
            hint=f"{why}; check the token is attached and its label (token=...) or serial",
        )
    return tokens[0]


def _matching_tokens(module: Library, uri: Pkcs11Uri) -> list[pkcs11.Token]:
    label = str(uri.without_query())
    if not _library_matches(module, uri):
        return []
    try:
        slots = module.get_slots(token_present=True)
        tokens = [slot.get_token() for slot in slots if _slot_matches(slot, uri)]
    except p11e.PKCS11Error as exc:
        raise token_failure(exc, label) from exc
    return [token for token in tokens if _token_matches(token, uri)]


def _library_matches(module: Library, uri: Pkcs11Uri) -> bool:
    version = ".".join(map(str, module.library_version))
    return (
        _same(uri.library_manufacturer, module.manufacturer_id)
        and _same(uri.library_description, module.library_description)
        and (uri.library_version is None or _version_matches(uri.library_version, version))
    )


def _version_matches(wanted: str, actual: str) -> bool:
    # "2" matches 2.x; "2.6" matches exactly (RFC 7512: a missing minor version means 0,
    # but tokens report e.g. 2.6 for a module its users call "2"; matching the major is kinder).
    return actual == wanted if "." in wanted else actual.split(".")[0] == wanted


def _slot_matches(slot: pkcs11.Slot, uri: Pkcs11Uri) -> bool:
    return (
        (uri.slot_id is None or slot.slot_id == uri.slot_id)
        and _same(uri.slot_description, slot.slot_description)
        and _same(uri.slot_manufacturer, slot.manufacturer_id)
    )


def _token_matches(token: pkcs11.Token, uri: Pkcs11Uri) -> bool:
    return (
        _same(uri.token, token.label)
        and _same(uri.manufacturer, token.manufacturer_id)
        and _same(uri.model, token.model)
        and _same(uri.serial, token_serial(token))
    )


def _same(wanted: str | None, actual: str) -> bool:
    # CK_TOKEN_INFO fields are blank-padded fixed-size arrays.
    return wanted is None or wanted.rstrip(" ") == actual.rstrip(" \x00")


def token_serial(token: pkcs11.Token) -> str:
    """The token's serial number as text."""
    return token.serial.decode("ascii", "replace").rstrip(" \x00")


def token_failure(exc: Exception, label: str) -> HsmError:
    """The :class:`HsmError` for a library failure during use of the token ``label``."""
    if isinstance(exc, p11e.PinIncorrect):
        return HsmError.from_code(
            FcuErrorCode.HSM_PIN_INCORRECT,
            label,
            hint=f"check {PIN_ENV} or the PIN file; repeated failures may lock the token",
        )
    if isinstance(exc, p11e.PinLocked):
        return HsmError.from_code(
            FcuErrorCode.HSM_PIN_LOCKED,
            label,
            hint="have the token's security officer unlock or reset the PIN",
        )
    if isinstance(exc, p11e.PinExpired | p11e.UserPinNotInitialized):
        return HsmError.from_code(
            FcuErrorCode.HSM_PIN_LOCKED, label, hint="the user PIN is expired or not set: have it set anew"
        )
    detail = type(exc).__name__ + (f": {exc}" if str(exc) else "")
    return HsmError.from_code(
        FcuErrorCode.HSM_TOKEN_FAILED,
        label,
        detail,
        hint="reconnect the token (or check the HSM's network link), then rerun; nothing was signed",
    )


def check_pin_state(token: pkcs11.Token, label: str) -> None:
    """Refuse before logging in when the token reports its user PIN locked.

    Raises:
        HsmError: 403.
    """
    if token.flags & pkcs11.TokenFlag.USER_PIN_LOCKED:
        raise token_failure(p11e.PinLocked(), label)


@dataclass(slots=True)
class PooledSession:
    """A session of a pool and the object handles already looked up in it."""

    session: pkcs11.Session
    handles: dict[object, object] = field(default_factory=dict)


class SessionPool:
    """Sessions of one token in this process, one per concurrently signing thread.

    Get it with :func:`pool_for`; pools are shared by every signer of the token in the
    process, so closing one signer never logs the others out.
    """

    def __init__(self, ref: TokenKeyRef, token: pkcs11.Token, generation: int) -> None:
        self._ref = ref
        self.token = token
        self.generation = generation
        self.pin = ref.pin
        self._lock = threading.Lock()
        check_pin_state(token, ref.label)
        try:
            login = token.open(user_pin=ref.pin)
        except p11e.PKCS11Error as exc:
            raise token_failure(exc, ref.label) from exc
        self._login: pkcs11.Session | None = login
        self._idle: list[PooledSession] = [PooledSession(login)]

    @contextmanager
    def session(self) -> Iterator[PooledSession]:
        """Borrow a session; one whose use failed is closed rather than reused.

        Raises:
            HsmError: 406 when no session can be opened (token removed or failed).
        """
        with LIBRARY_LOCK:
            with self._lock:
                entry = self._idle.pop() if self._idle else None
            if entry is None:
                try:
                    entry = PooledSession(self.token.open())
                except p11e.PKCS11Error as exc:
                    raise token_failure(exc, self._ref.label) from exc
            try:
                yield entry
            except BaseException:
                # A failed session is dropped; the logging-in one stays open (closing it logs out).
                if entry.session is not self._login:
                    close_quietly(entry.session)
                raise
            with self._lock:
                self._idle.append(entry)

    def forget_handles(self) -> None:
        """Drop the object handles looked up so far (after objects were destroyed or replaced)."""
        with self._lock:
            for entry in self._idle:
                entry.handles.clear()

    def close(self) -> None:
        """Close the idle sessions, the logging-in one last (closing it logs out)."""
        with LIBRARY_LOCK:
            with self._lock:
                entries, self._idle = self._idle, []
            for entry in entries:
                if entry.session is not self._login:
                    close_quietly(entry.session)
            if self._login is not None:
                close_quietly(self._login)
                self._login = None


def pool_for(ref: TokenKeyRef) -> SessionPool:
    """The session pool of ``ref``'s token in this process, created (and logged in) on first use.

    A pool made with another PIN is replaced, so the PIN is checked by the token.

    Raises:
        HsmError: 400–406 when the module, token or PIN is unusable.
    """
    key = ref.pool_key
    with _lock:
        module = _module(ref.module)
        pool = _pools.get(key)
        if pool is not None and pool.generation == module.generation and pool.pin == ref.pin:
            return pool
        if pool is not None:
            del _pools[key]
            if pool.generation == module.generation:
                pool.close()
        pool = _new_pool(ref)
        _pools[key] = pool
        return pool


def _new_pool(ref: TokenKeyRef) -> SessionPool:
    for delay in _SETTLE_DELAYS:
        try:
            return _open_pool(ref)
        except HsmError as exc:
            if exc.code not in _TRANSIENT:
                raise
            time.sleep(delay)
    return _open_pool(ref)


def _open_pool(ref: TokenKeyRef) -> SessionPool:
    token = find_token(ref.module, ref.uri)
    module = _module(ref.module)  # a rescan while finding the token starts a new generation
    return SessionPool(ref, token, module.generation)


_SETTLE_DELAYS: Final = (0.01, 0.02, 0.05, 0.1, 0.2)
"""Pauses before trying again to reach a token that was not found or failed while logging in.

Several processes logging in to one token at once can see a transient failure or even
a token without its label: a login rewrites SoftHSM2's token file (its PIN-count flags)
while another process reads it. A token that is really absent or gone still fails after
these pauses (under half a second).
"""
_TRANSIENT: Final = (FcuErrorCode.HSM_TOKEN_NOT_FOUND, FcuErrorCode.HSM_TOKEN_FAILED)


def close_quietly(session: pkcs11.Session) -> None:
    """Close ``session``, ignoring a token that is gone or a session already closed."""
    with contextlib.suppress(p11e.PKCS11Error):  # nothing left to release
        session.close()
