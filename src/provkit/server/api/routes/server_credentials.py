"""``/v3/server-credentials``: where devices connect and which CA signed the servers' certificates."""

from __future__ import annotations

from fastapi import APIRouter

from provkit.crypto import x509
from provkit.errors import ApiNotFound
from provkit.server.api.auth import AnyKey
from provkit.server.api.context import ApiContext, Context
from provkit.server.api.models import ServerCredentialsBody

router = APIRouter(tags=["server credentials"])


def _body(context: ApiContext, which: str, uri: str | None) -> ServerCredentialsBody:
    if uri is None:
        raise ApiNotFound(f"this server runs without an LwM2M {which} server")
    ca = x509.load_certificate(context.identity.server_ca)
    created = x509.not_valid_before(ca)
    return ServerCredentialsBody(
        id=f"{which}-{x509.der_fingerprint(context.identity.server_ca).hex()[:16]}",
        server_uri=uri,
        server_certificate=x509.certificate_pem([ca]).decode("ascii"),
        created_at=created,
        etag=str(int(created.timestamp())),
    )


@router.get("/v3/server-credentials/bootstrap", response_model=ServerCredentialsBody)
def bootstrap_credentials(context: Context, principal: AnyKey) -> ServerCredentialsBody:
    """The bootstrap server's URI (with the account's ``aid``) and its certificate's CA."""
    return _body(context, "bootstrap", context.developer.bootstrap_uri())


@router.get("/v3/server-credentials/lwm2m", response_model=ServerCredentialsBody)
def lwm2m_credentials(context: Context, principal: AnyKey) -> ServerCredentialsBody:
    """The LwM2M server's URI and its certificate's CA."""
    return _body(context, "lwm2m", context.identity.lwm2m_uri)


@router.get("/v3/server-credentials", response_model=dict[str, ServerCredentialsBody])
def all_credentials(context: Context, principal: AnyKey) -> dict[str, ServerCredentialsBody]:
    """Both, as ``{"bootstrap_server_credentials", "lwm2m_server_credentials"}``."""
    return {
        "bootstrap_server_credentials": _body(context, "bootstrap", context.developer.bootstrap_uri()),
        "lwm2m_server_credentials": _body(context, "lwm2m", context.identity.lwm2m_uri),
    }
