"""API keys of the Device Management API: made, checked and revoked in the registry.

A key reads ``ak_<id><secret>``: ``ak_`` as Device Management keys start, the record's
32-hex id, and 43 characters (256 bits) of URL-safe random secret. The registry keeps
only the secret's SHA-256, so a copy of the database opens no API. A key of that much
entropy needs no slow hash: nobody can guess it back from its digest. Checking a key
reads its record by id and compares digests with :func:`hmac.compare_digest`, and an
unknown id is compared against a dummy digest, so the answer takes as long whether the id
exists, the secret is wrong or the key is revoked.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Final

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from provkit.errors import ApiConflict, ApiNotFound, ApiRequestInvalid
from provkit.registry.ids import ID_LENGTH, is_id, new_id
from provkit.registry.schema import accounts, api_keys

if TYPE_CHECKING:
    from provkit.registry.api import Registry

KEY_PREFIX: Final = "ak_"
_SECRET_CHARS: Final = 43
"""``secrets.token_urlsafe(32)``: 256 bits in 43 URL-safe characters."""
KEY_LENGTH: Final = len(KEY_PREFIX) + ID_LENGTH + _SECRET_CHARS
_DUMMY_DIGEST: Final = hashlib.sha256(b"no such key").hexdigest()
_TOUCH_EVERY: Final = timedelta(minutes=1)
"""``last_used_at`` is written at most this often per key, so reads do not become writes."""
MAX_NAME: Final = 256


class Role(StrEnum):
    """What a key may do."""

    ADMINISTRATORS = "administrators"
    """Everything: trusted (factory) CA certificates, enrollments, developer certificates."""
    DEVELOPERS = "developers"
    """The developer flow: the account, developer certificates, reading the rest."""


class KeyStatus(StrEnum):
    """Whether a key opens the API."""

    ACTIVE = "ACTIVE"
    REVOKED = "REVOKED"


@dataclass(frozen=True, slots=True)
class ApiKey:
    """One API key's record (never the key itself).

    Attributes:
        id: 32 hex digits, also inside the key.
        account_id: the account it acts for.
        name: a label, unique.
        role: what it may do.
        status: active or revoked.
        created_at: when it was made.
        last_used_at: about when it last opened the API (to the minute).
        revoked_at: when it was revoked.
    """

    id: str
    account_id: str
    name: str
    role: Role
    status: KeyStatus
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    @property
    def active(self) -> bool:
        """Whether the key opens the API."""
        return self.status is KeyStatus.ACTIVE


def _aware(value: datetime | None) -> datetime | None:
    # SQLite hands back naive datetimes for timezone-aware columns; all are written in UTC.
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


def _key(row: Any) -> ApiKey:
    created = _aware(row.created_at)
    assert created is not None
    return ApiKey(
        id=row.id,
        account_id=row.account_id,
        name=row.name,
        role=Role(row.role),
        status=KeyStatus(row.status),
        created_at=created,
        last_used_at=_aware(row.last_used_at),
        revoked_at=_aware(row.revoked_at),
    )


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


def split_key(token: str) -> tuple[str, str] | None:
    """``(id, secret)`` of a well-formed key, or ``None``."""
    if len(token) != KEY_LENGTH or not token.startswith(KEY_PREFIX):
        return None
    key_id, secret = token[3 : 3 + ID_LENGTH], token[3 + ID_LENGTH :]
    if not is_id(key_id) or not secret.isascii():
        return None
    return key_id, secret


class ApiKeys:
    """The API keys of a registry (``registry.api_keys``)."""

    def __init__(self, registry: Registry) -> None:
        self._registry = registry

    def create(self, name: str, role: Role | str = Role.DEVELOPERS) -> tuple[ApiKey, str]:
        """Make a key called ``name``; return its record and the key, shown this once.

        Raises:
            ApiRequestInvalid: an empty or overlong name, or an unknown role.
            ApiConflict: a key of that name exists (revoked ones included).
        """
        if not name.strip() or len(name) > MAX_NAME or not name.isprintable():
            raise ApiRequestInvalid(f"an API key name is 1-{MAX_NAME} printable characters, not {name!r}")
        try:
            role = Role(role)
        except ValueError:
            raise ApiRequestInvalid(f"unknown role {role!r}; use administrators or developers") from None
        key_id, secret = new_id(), secrets.token_urlsafe(32)
        try:
            with self._registry.transaction() as conn:
                account_id = conn.execute(select(accounts.c.id)).scalar_one()
                conn.execute(
                    api_keys.insert().values(
                        id=key_id,
                        account_id=account_id,
                        name=name,
                        secret_sha256=_digest(secret),
                        role=role.value,
                        status=KeyStatus.ACTIVE.value,
                        created_at=datetime.now(UTC),
                    )
                )
        except IntegrityError as exc:
            raise ApiConflict(f"an API key named {name!r} exists already") from exc
        return self.get(key_id), f"{KEY_PREFIX}{key_id}{secret}"

    def authenticate(self, token: str) -> ApiKey | None:
        """The active key ``token`` is, or ``None`` (malformed, unknown, wrong or revoked)."""
        parts = split_key(token)
        key_id, secret = parts if parts is not None else ("", "")
        with self._registry.transaction() as conn:
            row = conn.execute(select(api_keys).where(api_keys.c.id == key_id)).first() if parts else None
        expected = row.secret_sha256 if row is not None else _DUMMY_DIGEST
        matches = hmac.compare_digest(_digest(secret), expected)
        if row is None or not matches or row.status != KeyStatus.ACTIVE.value:
            return None
        key = _key(row)
        now = datetime.now(UTC)
        if key.last_used_at is None or now - key.last_used_at > _TOUCH_EVERY:
            with self._registry.transaction() as conn:
                conn.execute(update(api_keys).where(api_keys.c.id == key.id).values(last_used_at=now))
        return key

    def get(self, key_id: str) -> ApiKey:
        """The key record with ``key_id``.

        Raises:
            ApiNotFound: no such key.
        """
        with self._registry.transaction() as conn:
            row = conn.execute(select(api_keys).where(api_keys.c.id == key_id)).first()
        if row is None:
            raise ApiNotFound(f"no API key with id {key_id}")
        return _key(row)

    def find(self, name_or_id: str) -> ApiKey:
        """The key called ``name_or_id``, else the key with that id.

        Raises:
            ApiNotFound: neither.
        """
        with self._registry.transaction() as conn:
            row = conn.execute(select(api_keys).where(api_keys.c.name == name_or_id)).first()
            if row is None:
                row = conn.execute(select(api_keys).where(api_keys.c.id == name_or_id)).first()
        if row is None:
            raise ApiNotFound(f"no API key named {name_or_id!r}")
        return _key(row)

    def list(self) -> list[ApiKey]:
        """Every key record, oldest first (revoked ones included)."""
        with self._registry.transaction() as conn:
            rows = conn.execute(select(api_keys).order_by(api_keys.c.created_at, api_keys.c.id)).all()
        return [_key(row) for row in rows]

    def revoke(self, name_or_id: str) -> ApiKey:
        """Revoke a key at once: the next request with it is refused.

        Raises:
            ApiNotFound: no such key.
        """
        key = self.find(name_or_id)
        if key.active:
            with self._registry.transaction() as conn:
                conn.execute(
                    update(api_keys)
                    .where(api_keys.c.id == key.id)
                    .values(status=KeyStatus.REVOKED.value, revoked_at=datetime.now(UTC))
                )
        return self.get(key.id)
