"""API keys as bearer tokens: who is calling, and whether their role allows the call.

``Authorization: Bearer ak_…`` (the scheme is case-insensitive). No header, another
scheme, or a key that is malformed, unknown or revoked is 401 with one message for all,
so an answer tells nothing about which keys exist. A key whose role does not allow the
call is 403. Routes say what they need with :data:`AnyKey` or :data:`AdminKey`; other
apps on the same server (a web view) use :func:`authenticate` or :func:`require`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Final

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from provkit.errors import ApiForbidden, ApiUnauthorized
from provkit.registry import Registry
from provkit.registry.apikeys import ApiKey, Role

_bearer: Final = HTTPBearer(auto_error=False, description="An API key: provkit server api-key create NAME")


@dataclass(frozen=True, slots=True)
class Principal:
    """The API key a request was made with.

    Attributes:
        key: its record.
    """

    key: ApiKey

    @property
    def account_id(self) -> str:
        """The account the key acts for."""
        return self.key.account_id

    @property
    def role(self) -> Role:
        """What the key may do."""
        return self.key.role

    def allows(self, role: Role) -> bool:
        """Whether the key may do what ``role`` may (administrators may do everything)."""
        return self.key.role is Role.ADMINISTRATORS or self.key.role is role


def authenticate(registry: Registry, token: str | None) -> Principal:
    """The principal of API key ``token``.

    Raises:
        ApiUnauthorized: no key, or a malformed, unknown or revoked one.
    """
    key = registry.api_keys.authenticate(token) if token else None
    if key is None:
        raise ApiUnauthorized(
            "missing or invalid API key" if token else "an API key is required (Authorization: Bearer ak_…)",
            hint="create one with: provkit server api-key create NAME",
        )
    return Principal(key)


def _registry(request: Request) -> Registry:
    registry = request.app.state.registry
    assert isinstance(registry, Registry)
    return registry


def current_principal(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Principal:
    """FastAPI dependency: the caller's principal (any role)."""
    return authenticate(_registry(request), credentials.credentials if credentials else None)


def require(role: Role) -> Callable[[Principal], Principal]:
    """A FastAPI dependency for the caller's principal that also checks its role.

    Raises (in the dependency):
        ApiUnauthorized: no valid key. ApiForbidden: the key's role is not enough.
    """

    def dependency(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
        if not principal.allows(role):
            raise ApiForbidden(
                f"this needs an API key of the {role.value} group; this key is {principal.role.value}"
            )
        return principal

    return dependency


AnyKey = Annotated[Principal, Depends(current_principal)]
"""A route parameter: any valid API key."""
AdminKey = Annotated[Principal, Depends(require(Role.ADMINISTRATORS))]
"""A route parameter: an administrators key."""
