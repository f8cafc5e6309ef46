"""The line view's HTTP routes (FastAPI), served by ``provkit server`` under ``/line``.

Pages are rendered on the server (Jinja2, autoescaped); the overview's live part is a
fragment the page's small script fetches again every few seconds. Every page's filter is
in its URL (links can be shared) and every page exports what it shows as JSON or CSV.
Reading needs no key; revoking a device needs a browser signed in with an administrators
API key (:mod:`provkit.server.lineview.sessions`).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from typing import Annotated, Any, Final
from urllib.parse import parse_qs, quote, urlsplit

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.concurrency import run_in_threadpool

from provkit.errors import ApiUnauthorized
from provkit.registry import Registry
from provkit.registry.apikeys import Role
from provkit.server.lineview.chart import render_chart
from provkit.server.lineview.sessions import COOKIE, LineSessions, SignedIn
from provkit.server.lineview.views import (
    ATTEMPT_COLUMNS,
    MAX_HOURS,
    OVERVIEW_TABLES,
    OverviewFilter,
    attempt_row,
    batch_row,
    counters,
    failure_row,
    overview_csv,
    overview_json,
    read_device,
    read_overview,
    search,
    to_csv,
)

PREFIX: Final = "/line"
MAX_FORM_BYTES: Final = 4096
"""A sign-in or revoke form is a few fields; more is refused."""
_STATIC: Final = {"lineview.js": "text/javascript", "lineview.css": "text/css"}
_NO_STORE: Final = {"Cache-Control": "no-store"}

Hours = Annotated[float, Query(gt=0, le=MAX_HOURS, description="The window, in hours")]
Endpoint = Annotated[str, Query(min_length=1, max_length=256, description="The device's endpoint name")]
Quiet = Annotated[float, Query(gt=0, le=24 * 60, description="Minutes before a busy station is quiet")]
Refresh = Annotated[float, Query(ge=1, le=3600, description="Seconds between the page's updates")]


@cache
def _templates() -> Environment:
    environment = Environment(
        loader=PackageLoader("provkit.server.lineview", "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["when"] = _when
    environment.filters["percent"] = _percent
    environment.filters["duration"] = _duration
    return environment


def _when(moment: datetime | str | None) -> str:
    if moment is None:
        return "—"
    value = datetime.fromisoformat(moment) if isinstance(moment, str) else moment
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _percent(share: float | None) -> str:
    return "—" if share is None else f"{share * 100:.1f} %"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {secs:02d} s"


def _registry(request: Request) -> Registry:
    registry = request.app.state.registry
    assert isinstance(registry, Registry)
    return registry


def _sessions(request: Request) -> LineSessions:
    sessions = getattr(request.app.state, "line_sessions", None)
    if sessions is None:
        sessions = request.app.state.line_sessions = LineSessions(_registry(request))
    assert isinstance(sessions, LineSessions)
    return sessions


def _signed_in(request: Request) -> SignedIn | None:
    return _sessions(request).current(request.cookies.get(COOKIE))


def _page(request: Request, template: str, status_code: int = 200, **values: Any) -> HTMLResponse:
    signed_in = _signed_in(request)
    html = (
        _templates()
        .get_template(template)
        .render(prefix=PREFIX, path=request.url.path, signed_in=signed_in, **values)
    )
    return HTMLResponse(html, status_code=status_code, headers=_NO_STORE)


def _safe_next(target: str | None) -> str:
    """A same-site path to go back to after signing in (never another site)."""
    if not target:
        return PREFIX
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith(PREFIX) or "\\" in target:
        return PREFIX
    return target


async def _form(request: Request) -> dict[str, str]:
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            return {}
    fields = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True, max_num_fields=16)
    return {name: values[0] for name, values in fields.items()}


def _overview_values(registry: Registry, settings: OverviewFilter) -> dict[str, Any]:
    activity = read_overview(registry, settings)
    return {
        "settings": settings,
        "activity": activity,
        "counters": counters(activity),
        "chart": render_chart(activity.series, activity.since, activity.until),
        "batches": [batch_row(batch) for batch in activity.batches],
        "failures": [failure_row(failure) for failure in activity.failures],
        "stations": overview_json(activity, settings)["stations"],
        "refresh": settings.refresh_seconds,
    }


def build_router() -> APIRouter:
    """The line view's routes."""
    router = APIRouter(prefix=PREFIX, tags=["line view"], include_in_schema=False)

    @router.get("")
    def overview(
        request: Request, hours: Hours = 3.0, quiet: Quiet = 5.0, refresh: Refresh = 3.0
    ) -> HTMLResponse:
        """The line now: rate per station, batches, yield, failures, quiet stations."""
        values = _overview_values(_registry(request), OverviewFilter(hours, quiet, refresh))
        return _page(request, "overview.html", **values)

    @router.get("/live")
    def live(request: Request, hours: Hours = 3.0, quiet: Quiet = 5.0) -> HTMLResponse:
        """The overview's live part, fetched again by the page."""
        values = _overview_values(_registry(request), OverviewFilter(hours, quiet))
        html = _templates().get_template("_live.html").render(prefix=PREFIX, **values)
        return HTMLResponse(html, headers=_NO_STORE)

    @router.get("/chart.svg")
    def chart(request: Request, hours: Hours = 3.0) -> Response:
        """The per-minute chart alone, as an SVG document."""
        activity = read_overview(_registry(request), OverviewFilter(hours))
        svg = render_chart(activity.series, activity.since, activity.until)
        return Response(svg, media_type="image/svg+xml", headers=_NO_STORE)

    @router.get("/now.json")
    def now_json(request: Request, hours: Hours = 3.0, quiet: Quiet = 5.0) -> Response:
        """The overview as JSON."""
        settings = OverviewFilter(hours, quiet)
        body = overview_json(read_overview(_registry(request), settings), settings)
        return Response(json.dumps(body, indent=1), media_type="application/json", headers=_NO_STORE)

    @router.get("/now.csv")
    def now_csv(
        request: Request,
        table: Annotated[str, Query(pattern="^(" + "|".join(OVERVIEW_TABLES) + ")$")] = "per_minute",
        hours: Hours = 3.0,
        quiet: Quiet = 5.0,
    ) -> Response:
        """One table of the overview as CSV."""
        settings = OverviewFilter(hours, quiet)
        text = overview_csv(read_overview(_registry(request), settings), settings, table)
        return _csv(text, f"line-{table}.csv")

    @router.get("/devices")
    def devices(request: Request, q: Annotated[str, Query(max_length=256)] = "") -> Response:
        """Find a device by endpoint name, serial number, fingerprint, enrollment id or attempt id."""
        found = search(_registry(request), q)
        endpoints = list(dict.fromkeys(attempt.endpoint_name for attempt in found))
        if len(endpoints) == 1 and request.query_params.get("go") == "1":
            return RedirectResponse(f"{PREFIX}/device?endpoint={quote(endpoints[0])}", status_code=303)
        rows = [attempt_row(attempt) for attempt in found]
        return _page(request, "devices.html", q=q, rows=rows, endpoints=endpoints)

    @router.get("/devices.json")
    def devices_json(request: Request, q: Annotated[str, Query(max_length=256)] = "") -> Response:
        """A search's attempts as JSON."""
        rows = [attempt_row(attempt) for attempt in search(_registry(request), q)]
        return Response(json.dumps({"q": q, "attempts": rows}, indent=1), media_type="application/json")

    @router.get("/devices.csv")
    def devices_csv(request: Request, q: Annotated[str, Query(max_length=256)] = "") -> Response:
        """A search's attempts as CSV."""
        rows = [_flat(attempt_row(attempt)) for attempt in search(_registry(request), q)]
        return _csv(to_csv(rows, ATTEMPT_COLUMNS), "line-devices.csv")

    @router.get("/device")
    def device(request: Request, endpoint: Endpoint) -> HTMLResponse:
        """A device: every attempt, its certificate, its connections."""
        page = read_device(_registry(request), endpoint)
        if page is None:
            return _page(request, "missing.html", status_code=404, endpoint=endpoint)
        rows = [attempt_row(attempt) for attempt in page.attempts]
        return _page(request, "device.html", page=page, rows=rows, message=request.query_params.get("done"))

    @router.get("/device.json")
    def device_json(request: Request, endpoint: Endpoint) -> Response:
        """A device's page as JSON."""
        page = read_device(_registry(request), endpoint)
        if page is None:
            return Response(
                json.dumps({"error": "no such device"}), status_code=404, media_type="application/json"
            )
        return Response(json.dumps(page.to_json(), indent=1), media_type="application/json")

    @router.get("/device.pem")
    def device_pem(request: Request, endpoint: Endpoint) -> Response:
        """A device's certificate, PEM (public material)."""
        page = read_device(_registry(request), endpoint)
        if page is None or page.certificate is None:
            return PlainTextResponse("no certificate recorded for this device\n", status_code=404)
        return Response(page.certificate.pem, media_type="application/x-pem-file")

    @router.post("/device/revoke")
    async def revoke(request: Request) -> Response:
        """Revoke a device: the servers refuse its connections (administrators only)."""
        form = await _form(request)
        endpoint = form.get("endpoint", "")
        signed_in = await run_in_threadpool(_signed_in, request)
        if signed_in is None:
            back = f"{PREFIX}/device?endpoint={quote(endpoint)}"
            return RedirectResponse(f"{PREFIX}/signin?next={quote(back)}", status_code=303)
        if not signed_in.accepts(form.get("form_token", "")) or not endpoint:
            return PlainTextResponse("the form is stale or incomplete; reload the page\n", status_code=400)
        if signed_in.key.role != Role.ADMINISTRATORS:
            return PlainTextResponse("revoking needs an administrators API key\n", status_code=403)
        registry = _registry(request)
        reason = form.get("reason", "")[:200] or f"revoked from the line view by {signed_in.key.name}"
        await run_in_threadpool(registry.revocations.revoke_endpoint, endpoint, reason)
        return RedirectResponse(f"{PREFIX}/device?endpoint={quote(endpoint)}&done=revoked", status_code=303)

    @router.get("/signin")
    def signin_page(request: Request, next: str = PREFIX) -> HTMLResponse:
        """Sign in with an API key."""
        return _page(request, "signin.html", next=_safe_next(next), error=None)

    @router.post("/signin")
    async def signin(request: Request) -> Response:
        """Check the API key and start a session."""
        form = await _form(request)
        target = _safe_next(form.get("next"))
        try:
            session = await run_in_threadpool(_sessions(request).sign_in, form.get("api_key", ""))
        except ApiUnauthorized as exc:
            return _page(request, "signin.html", status_code=401, next=target, error=exc.message)
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(
            COOKIE,
            session.session_id,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path=PREFIX,
        )
        return response

    @router.post("/signout")
    async def signout(request: Request) -> Response:
        """End the session."""
        _sessions(request).sign_out(request.cookies.get(COOKIE))
        response = RedirectResponse(PREFIX, status_code=303)
        response.delete_cookie(COOKIE, path=PREFIX)
        return response

    @router.get("/static/{name}")
    def static(name: str) -> Response:
        """The page's script and style sheet, served from the package (no CDN)."""
        media_type = _STATIC.get(name)
        if media_type is None:
            return PlainTextResponse("not found\n", status_code=404)
        body = resources.files("provkit.server.lineview").joinpath("static", name).read_bytes()
        return Response(body, media_type=media_type, headers={"Cache-Control": "max-age=300"})

    return router


def _flat(row: dict[str, Any]) -> dict[str, Any]:
    return {key: "; ".join(value) if isinstance(value, list) else value for key, value in row.items()}


def _csv(text: str, filename: str) -> Response:
    headers = {"Content-Disposition": f'attachment; filename="{filename}"'}
    return Response(text, media_type="text/csv; charset=utf-8", headers=headers)
