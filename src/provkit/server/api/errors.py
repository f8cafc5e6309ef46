"""Every failure of the API answered as Device Management's JSON error.

``{"object": "error", "code": <HTTP status>, "type": …, "message": …, "fields": […],
"request_id": …}``. A :class:`~provkit.errors.DeviceManagementError` carries its status
and type; request validation (FastAPI's) becomes 400 ``validation_error`` naming each
field; an unknown path 404, a wrong method 405, a registry that cannot be reached 503,
and anything unexpected 500 with the traceback in the server log under the request id
(never in the answer).
"""

from __future__ import annotations

import logging
import uuid
from typing import Any, Final

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from provkit.errors import DeviceManagementError, ProvkitError, RegistryError
from provkit.server.api.models import ErrorBody, FieldError

_log = logging.getLogger(__name__)

REQUEST_ID_HEADER: Final = "X-Request-ID"
_STATUS_TYPES: Final = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_supported",
    406: "not_acceptable",
    409: "duplicate",
    413: "payload_too_large",
    415: "unsupported_media_type",
    500: "internal_server_error",
    503: "system_unavailable",
}


def request_id(request: Request) -> str:
    """The id of this request (made by :func:`install_error_handlers`' middleware)."""
    return str(getattr(request.state, "request_id", "") or uuid.uuid4().hex)


def error_response(
    request: Request,
    status: int,
    message: str,
    *,
    error_type: str | None = None,
    fields: tuple[tuple[str, str], ...] = (),
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """The JSON error answer."""
    body = ErrorBody(
        code=status,
        type=error_type or _STATUS_TYPES.get(status, "bad_request"),
        message=message,
        fields=[FieldError(name=name, message=text) for name, text in fields] or None,
        request_id=request_id(request),
    )
    answer_headers = {REQUEST_ID_HEADER: body.request_id, **(headers or {})}
    return JSONResponse(body.model_dump(exclude_none=True), status_code=status, headers=answer_headers)


def _field_name(location: tuple[Any, ...]) -> str:
    parts = [str(part) for part in location if part not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def _provkit_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ProvkitError)
    if isinstance(exc, DeviceManagementError):
        headers = {"WWW-Authenticate": "Bearer"} if exc.http_status == 401 else None
        return error_response(
            request,
            exc.http_status,
            exc.message,
            error_type=exc.error_type,
            fields=exc.fields,
            headers=headers,
        )
    if isinstance(exc, RegistryError):
        _log.error("request %s: registry unavailable: %s", request_id(request), exc)
        return error_response(request, 503, "the registry database is unavailable; try again later")
    # A library error the route did not translate: the request was unusable.
    return error_response(request, 400, exc.message)


def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    fields = tuple(
        ("body", "the body is not JSON")
        if e.get("type") == "json_invalid"
        else (_field_name(tuple(e.get("loc", ()))), str(e.get("msg", "invalid")))
        for e in exc.errors()
    )
    summary = "; ".join(f"{name}: {text}" for name, text in fields[:5])
    return error_response(
        request, 400, f"invalid request: {summary}", error_type="validation_error", fields=fields
    )


def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    message = {404: "no such path", 405: f"{request.method} is not supported here"}.get(
        exc.status_code, str(exc.detail)
    )
    return error_response(request, exc.status_code, message, headers=dict(exc.headers or {}))


def _unexpected(request: Request, exc: Exception) -> Response:
    _log.exception("request %s failed", request_id(request), exc_info=exc)
    return error_response(
        request, 500, "internal error; the server log has the details under this request id"
    )


def install_error_handlers(app: FastAPI) -> None:
    """Answer every failure as a JSON error and give every request an id."""
    app.add_exception_handler(ProvkitError, _provkit_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)

    app.add_middleware(_RequestIds)


class _RequestIds:
    """Give every request an id (``request.state.request_id``) and answer it in X-Request-ID.

    A plain ASGI middleware: Starlette's ``BaseHTTPMiddleware`` would run the route in a
    task group and turn an exception raised while reading the body into an exception
    group the route's handlers do not recognise.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        identifier = uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = identifier

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault(REQUEST_ID_HEADER, identifier)
            await send(message)

        await self.app(scope, receive, send_with_id)
