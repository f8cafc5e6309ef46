"""``/v3/accounts/me`` and ``/v3/api-keys/me``: who the key belongs to (what mbl-cli checks a key with)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from provkit.registry import Registry
from provkit.server.api.auth import AnyKey
from provkit.server.api.models import AccountBody, ApiKeyBody

router = APIRouter(tags=["accounts"])


@router.get("/v3/accounts/me", response_model=AccountBody)
def get_my_account(request: Request, principal: AnyKey) -> AccountBody:
    """The account the API key belongs to; any valid key may read it."""
    registry: Registry = request.app.state.registry
    account = registry.accounts.current()
    return AccountBody(
        id=account.id,
        display_name=account.display_name,
        created_at=account.created_at,
        updated_at=account.created_at,
        etag=str(int(account.created_at.timestamp())),
    )


@router.get("/v3/api-keys/me", response_model=ApiKeyBody)
def get_my_api_key(principal: AnyKey) -> ApiKeyBody:
    """The API key the request was made with (its record, never its secret)."""
    key = principal.key
    return ApiKeyBody(
        id=key.id,
        account_id=key.account_id,
        name=key.name,
        status=key.status.value,
        groups=[key.role.value],
        key=f"ak_{key.id}…",
        created_at=key.created_at,
        last_login_time=int(key.last_used_at.timestamp() * 1000) if key.last_used_at else 0,
        etag=str(int(key.created_at.timestamp())),
    )
