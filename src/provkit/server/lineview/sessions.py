"""Signing in to the line view with an API key of the Device Management API.

Reading the line view needs no key. Changing state (revoking a device) needs a signed-in
browser: the supervisor gives an administrators API key once, the server keeps, in
memory, a random session id that names the key (never the key itself) and sets it as an
``HttpOnly``, ``SameSite=Strict`` cookie. Every use checks the key again, so revoking the
key ends its sessions; each session has a form token that state-changing forms must echo
(compared in constant time), and sessions expire after :data:`SESSION_LIFETIME`.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Final

from provkit.errors import ApiNotFound, ApiUnauthorized
from provkit.registry import Registry
from provkit.registry.apikeys import ApiKey

COOKIE: Final = "provkit_line_session"
SESSION_LIFETIME: Final = 8 * 3600.0
"""Seconds a sign-in lasts: a shift."""
_HINT: Final = "create one with the server's api-key command, in the administrators group"
MAX_SESSIONS: Final = 1024
"""Sessions kept at most; the oldest go first (a line has a few screens, not thousands)."""


@dataclass(frozen=True, slots=True)
class LineSession:
    """A signed-in browser.

    Attributes:
        session_id: the cookie's value.
        key_id: the API key it signed in with.
        form_token: what its state-changing forms carry.
        expires: when it ends (``time.monotonic`` seconds).
    """

    session_id: str
    key_id: str
    form_token: str
    expires: float


@dataclass(frozen=True, slots=True)
class SignedIn:
    """A session whose key is still valid.

    Attributes:
        session: the session.
        key: its API key's record, as read now.
    """

    session: LineSession
    key: ApiKey

    def accepts(self, form_token: str) -> bool:
        """Whether ``form_token`` is this session's (constant time)."""
        return hmac.compare_digest(self.session.form_token.encode(), form_token.encode())


class LineSessions:
    """The signed-in browsers of one server process."""

    def __init__(self, registry: Registry, lifetime: float = SESSION_LIFETIME) -> None:
        self._registry = registry
        self._lifetime = lifetime
        self._sessions: dict[str, LineSession] = {}
        self._lock = threading.Lock()

    def sign_in(self, token: str) -> LineSession:
        """Start a session for API key ``token``.

        Raises:
            ApiUnauthorized: the key is malformed, unknown or revoked.
        """
        key = self._registry.api_keys.authenticate(token.strip()) if token.strip() else None
        if key is None:
            raise ApiUnauthorized(
                "missing or invalid API key", hint="create one with the server's api-key command"
            )
        session = LineSession(
            secrets.token_urlsafe(32), key.id, secrets.token_urlsafe(24), time.monotonic() + self._lifetime
        )
        with self._lock:
            while len(self._sessions) >= MAX_SESSIONS:
                self._sessions.pop(next(iter(self._sessions)))
            self._sessions[session.session_id] = session
        return session

    def current(self, session_id: str | None) -> SignedIn | None:
        """The session ``session_id`` names, if it is live and its key still active."""
        if not session_id:
            return None
        with self._lock:
            session = self._sessions.get(session_id)
            if session is not None and session.expires <= time.monotonic():
                del self._sessions[session_id]
                session = None
        if session is None:
            return None
        try:
            key = self._registry.api_keys.get(session.key_id)
        except ApiNotFound:
            key = None
        if key is None or not key.active:
            self.sign_out(session_id)
            return None
        return SignedIn(session, key)

    def sign_out(self, session_id: str | None) -> None:
        """End session ``session_id`` (nothing if there is none)."""
        if session_id:
            with self._lock:
                self._sessions.pop(session_id, None)
