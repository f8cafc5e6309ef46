"""The LwM2M server's registration interface: Register, Update, De-register.

* Register — ``POST /rd?ep=NAME&lt=SECONDS&lwm2m=VERSION&b=BINDING`` with the device's
  objects in CoRE link format → 2.01 Created, ``Location-Path: rd/<id>``;
* Update — ``POST /rd/<id>[?lt=…&b=…]`` → 2.04 Changed;
* De-register — ``DELETE /rd/<id>`` → 2.02 Deleted.

Only the device that holds a registration may update or delete it. Every outcome is
recorded in the registry before the device is answered.
"""

from __future__ import annotations

import asyncio
import secrets
from typing import Any, Final

from aiocoap.util import linkformat

from provkit.registry import Connection, ConnectionEvent, ConnectionOutcome, Registry
from provkit.server.coap import Code, Message
from provkit.server.counters import Counters
from provkit.server.endpoint import Session
from provkit.server.policy import Policy, diagnostic, endpoint_name_of, query_parameters
from provkit.server.recorder import Recorder

DEFAULT_LIFETIME: Final = 86400
"""Registration lifetime when the device names none (LwM2M's default)."""
MAX_OBJECTS_TEXT: Final = 4096
_REGISTRATION: Final = "registration"


def _lifetime(text: str | None, default: int | None) -> int | None:
    if text is None:
        return default
    if not text.isascii() or not text.isdigit() or not 0 < int(text) < 2**31:
        raise ValueError(f"lifetime {text!r} is not a positive number of seconds")
    return int(text)


def _objects(request: Any) -> str | None:
    """The registered objects as link-format text (validated), or ``None`` without a payload."""
    if not request.payload:
        return None
    try:
        text = str(request.payload.decode("utf-8"))
        links = linkformat.parse(text)
    except (UnicodeDecodeError, ValueError, AttributeError, IndexError) as exc:
        raise ValueError(f"the object list is not CoRE link format: {exc}") from exc
    if not links.links:
        raise ValueError("the object list is empty")
    return text[:MAX_OBJECTS_TEXT]


class RegistrationService:
    """Answers Register / Update / De-register on the LwM2M server's endpoint."""

    name = "lwm2m"

    def __init__(self, registry: Registry, recorder: Recorder, policy: Policy, counters: Counters) -> None:
        self._registry = registry
        self._recorder = recorder
        self._policy = policy
        self._counters = counters

    async def serve(self, session: Session, request: Any) -> Any:
        """Dispatch on method and path."""
        path = tuple(request.opt.uri_path)
        if path == ("rd",) and request.code is Code.POST:
            return await self._register(session, request)
        if len(path) == 2 and path[0] == "rd" and request.code in (Code.POST, Code.DELETE):
            return await self._update_or_delete(session, request, path[1])
        return diagnostic(Code.NOT_FOUND, "no such resource on the LwM2M server")

    async def _register(self, session: Session, request: Any) -> Any:
        parameters = query_parameters(request)
        endpoint = endpoint_name_of(parameters)
        if endpoint is None:
            self._counters.refused_other += 1
            return diagnostic(Code.BAD_REQUEST, "Register needs a printable endpoint name (ep=…)")
        try:
            lifetime = _lifetime(parameters.get("lt"), DEFAULT_LIFETIME)
            objects = _objects(request)
        except ValueError as exc:
            self._counters.refused_other += 1
            return diagnostic(Code.BAD_REQUEST, str(exc))
        refusal = self._policy.refusal(session, endpoint)
        if refusal is not None:
            return self._policy.refuse(self.name, session, endpoint, refusal)
        location = secrets.token_hex(6)
        event = ConnectionEvent(
            endpoint_name=endpoint,
            service=self.name,
            outcome=ConnectionOutcome.REGISTERED,
            address=session.label,
            mode=session.mode,
            location=f"/rd/{location}",
            lifetime=lifetime,
            binding=parameters.get("b", "U")[:16],
            lwm2m_version=parameters.get("lwm2m", "1.0")[:16],
            objects=objects,
            fingerprint=session.certificate.fingerprint if session.certificate else None,
        )
        if not await self._recorder.record(event):
            return diagnostic(Code.INTERNAL_SERVER_ERROR, "the registration could not be recorded")
        session.state[_REGISTRATION] = (endpoint, location, event)
        self._counters.registrations += 1
        return Message(code=Code.CREATED, location_path=("rd", location))

    async def _holder(
        self, session: Session, location: str
    ) -> tuple[str, ConnectionEvent | Connection] | None:
        """The endpoint holding ``location``, if ``session`` may act for it."""
        held = session.state.get(_REGISTRATION)
        if held is not None and held[1] == location:
            return held[0], held[2]
        loop = asyncio.get_running_loop()
        record = await loop.run_in_executor(None, self._registry.connections.by_location, f"/rd/{location}")
        if record is None or self._policy.refusal(session, record.endpoint_name) is not None:
            return None
        return record.endpoint_name, record

    async def _update_or_delete(self, session: Session, request: Any, location: str) -> Any:
        holder = await self._holder(session, location)
        if holder is None:
            self._counters.refused_other += 1
            return diagnostic(Code.NOT_FOUND, "no registration of yours at this location")
        endpoint, previous = holder
        parameters = query_parameters(request)
        deleting = request.code is Code.DELETE
        try:
            lifetime = _lifetime(parameters.get("lt"), previous.lifetime)
            objects = None if deleting else _objects(request)
        except ValueError as exc:
            return diagnostic(Code.BAD_REQUEST, str(exc))
        event = ConnectionEvent(
            endpoint_name=endpoint,
            service=self.name,
            outcome=ConnectionOutcome.DEREGISTERED if deleting else ConnectionOutcome.UPDATED,
            address=session.label,
            mode=session.mode,
            location=None if deleting else f"/rd/{location}",
            lifetime=lifetime,
            binding=parameters.get("b", previous.binding),
            lwm2m_version=previous.lwm2m_version,
            objects=objects or previous.objects,
            fingerprint=session.certificate.fingerprint if session.certificate else None,
        )
        if not await self._recorder.record(event):
            return diagnostic(Code.INTERNAL_SERVER_ERROR, "the change could not be recorded")
        if deleting:
            session.state.pop(_REGISTRATION, None)
            self._counters.deregistrations += 1
            return Message(code=Code.DELETED)
        session.state[_REGISTRATION] = (endpoint, location, event)
        self._counters.updates += 1
        return Message(code=Code.CHANGED)
