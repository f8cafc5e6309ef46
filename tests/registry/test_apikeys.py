"""API keys in the registry: only a digest is kept, checks compare in constant time, revocation is at once."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import select

from provkit.errors import ApiConflict, ApiNotFound, ApiRequestInvalid
from provkit.registry import Registry
from provkit.registry.apikeys import KEY_LENGTH, KeyStatus, Role, split_key
from provkit.registry.schema import api_keys


@pytest.fixture
def registry(registry_url: str):
    with Registry.open(registry_url) as opened:
        yield opened


def test_key_shape_and_only_its_digest_is_stored(registry: Registry) -> None:
    """ak_ + 32-hex id + 43 secret characters; the row holds the secret's SHA-256, never the key."""
    record, key = registry.api_keys.create("ci", Role.ADMINISTRATORS)
    assert len(key) == KEY_LENGTH and key.startswith("ak_") and split_key(key) == (record.id, key[35:])
    assert record.role is Role.ADMINISTRATORS and record.status is KeyStatus.ACTIVE
    with registry.transaction() as conn:
        row = conn.execute(select(api_keys)).one()
    assert key not in repr(tuple(row)) and key[35:] not in repr(tuple(row))
    assert row.secret_sha256 == hashlib.sha256(key[35:].encode()).hexdigest()
    assert registry.api_keys.authenticate(key).id == record.id
    assert registry.api_keys.authenticate(key).last_used_at is not None


def test_wrong_malformed_and_revoked_keys_do_not_authenticate(registry: Registry) -> None:
    """Any change of the secret, a foreign shape, or revocation: None."""
    record, key = registry.api_keys.create("dev")
    for bad in (
        key[:-1] + ("x" if key[-1] != "x" else "y"),
        key + "a",
        key.upper(),
        "",
        "ak_",
        "Bearer " + key,
    ):
        assert registry.api_keys.authenticate(bad) is None
    revoked = registry.api_keys.revoke("dev")
    assert revoked.status is KeyStatus.REVOKED and revoked.revoked_at is not None
    assert registry.api_keys.authenticate(key) is None
    assert registry.api_keys.revoke(record.id).revoked_at == revoked.revoked_at  # idempotent


def test_names_roles_and_lookups(registry: Registry) -> None:
    """Names unique and printable; two roles; found by name or id; the list keeps revoked keys."""
    first, _ = registry.api_keys.create("one")
    with pytest.raises(ApiConflict, match="'one' exists"):
        registry.api_keys.create("one")
    for name in ("", "   ", "x" * 257, "tab\there"):
        with pytest.raises(ApiRequestInvalid):
            registry.api_keys.create(name)
    with pytest.raises(ApiRequestInvalid, match="unknown role"):
        registry.api_keys.create("two", "root")
    with pytest.raises(ApiNotFound):
        registry.api_keys.find("nobody")
    assert registry.api_keys.find(first.id) == registry.api_keys.find("one")
    registry.api_keys.revoke("one")
    assert [key.name for key in registry.api_keys.list()] == ["one"]
