"""The FastAPI application of the Device Management API.

:func:`create_app` builds it on a registry and a developer CA; the server process mounts
it (HTTP next to the LwM2M servers, one process, one database). Other apps of the same
server (a web view) add routers to it and reuse its authentication
(:mod:`provkit.server.api.auth`) and error answers (:mod:`provkit.server.api.errors`).
OpenAPI docs are at ``/docs`` (and ``/openapi.json``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from fastapi import APIRouter, FastAPI
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from provkit import __version__
from provkit.server.api.context import ApiContext
from provkit.server.api.errors import install_error_handlers
from provkit.server.api.models import ErrorBody
from provkit.server.api.routes import (
    accounts,
    developer_certificates,
    devices,
    enrollments,
    server_credentials,
    trusted_certificates,
)

MAX_BODY_BYTES: Final = 64 * 1024
"""The largest request body taken: a certificate is a few KiB; more is a mistake or an attack."""

ROUTERS: Final = (
    accounts.router,
    developer_certificates.router,
    trusted_certificates.router,
    enrollments.router,
    devices.router,
    server_credentials.router,
)


class _Guard:
    """Refuse bodies over :data:`MAX_BODY_BYTES` (413) and serve ``/v3/x/`` as ``/v3/x``.

    The SDKs spell some paths with a trailing slash (``/v3/devices/``) and others without;
    Device Management answers both. A redirect is no answer here: clients do not follow
    one with the API key (provkit's own client refuses to).
    """

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        if path.startswith("/v3/") and len(path) > 4 and path.endswith("/"):
            scope = {**scope, "path": path.rstrip("/")}
        declared = dict(scope.get("headers") or ()).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            await _too_large(send, self.limit, str(scope.get("state", {}).get("request_id", "")))
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.limit:
                # Raised while the route reads its body, before any answer has started;
                # FastAPI lets an HTTPException through, and the error handler answers it.
                raise HTTPException(413, f"the request body is larger than {self.limit} bytes")
            return message

        await self.app(scope, counted, send)


async def _too_large(send: Send, limit: int, request_id: str) -> None:
    # Answered before routing (the body is never read), so written here rather than by
    # the error handlers, in the same JSON.
    body = (
        ErrorBody(
            code=413,
            type="payload_too_large",
            message=f"the request body is larger than {limit} bytes",
            request_id=request_id,
        )
        .model_dump_json(exclude_none=True)
        .encode()
    )
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def create_app(context: ApiContext, *, extra_routers: Iterable[APIRouter] = ()) -> FastAPI:
    """The Device Management API on ``context``.

    Args:
        context: the registry and the developer CA.
        extra_routers: more routers to serve from the same app (they may use
            :data:`~provkit.server.api.auth.AnyKey` and friends).
    """
    app = FastAPI(
        title="provkit Device Management API",
        version=__version__,
        description=(
            "A self-hosted subset of Device Management's v3 API: accounts, API keys, developer "
            "certificates, trusted (factory) CA certificates, first-to-claim enrollments and the "
            "device directory. Authenticate with `Authorization: Bearer ak_…` "
            "(`provkit server api-key create NAME`)."
        ),
        docs_url="/docs",
        redoc_url=None,
        redirect_slashes=False,
    )
    app.state.context = context
    app.state.registry = context.registry
    for router in (*ROUTERS, *extra_routers):
        app.include_router(router)
    app.add_middleware(_Guard, limit=MAX_BODY_BYTES)
    install_error_handlers(app)  # its request-id middleware goes outside the guard
    return app
