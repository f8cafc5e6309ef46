"""The LwM2M bootstrap server: hands a device its account on this server's LwM2M server.

A device that reached the bootstrap server with its factory credentials asks
``POST /bs?ep=NAME`` (Bootstrap-Request). The server answers 2.04 Changed, then, as the
CoAP client of that same DTLS session:

1. ``DELETE /`` — Bootstrap-Delete: everything but the bootstrap account goes;
2. ``GET /0`` (Accept: link format) — Bootstrap-Discover: which Security instance ids
   are taken (the bootstrap account keeps its own);
3. ``PUT /0/<iid>`` — Bootstrap-Write of the LwM2M server's Security instance (SenML
   CBOR): the server URI, the security mode and the credentials this server issues for
   the device — a fresh P-256 key with a certificate (CN = endpoint name) signed by the
   server's device CA, or a fresh PSK recorded in the registry — and the server's own
   certificate in ``/0/x/4`` (certificate usage 3 by default: an exact match);
4. ``PUT /1/0`` — Bootstrap-Write of the Server instance (short server id, lifetime,
   binding);
5. ``POST /bs`` — Bootstrap-Finish.

The device is recorded as ``bootstrapped`` once it acknowledged Bootstrap-Finish.
``GET /bspack`` (LwM2M 1.2 Bootstrap-Pack-Request) is answered 4.04, after which
devices fall back to the Bootstrap-Request above.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import re
import secrets
from dataclasses import dataclass
from typing import Any, Final

from aiocoap.util import linkformat

from provkit.crypto import certconfig, issue, keys, x509
from provkit.errors import ProvkitError, ServerError
from provkit.lwm2m.senml import Entry
from provkit.lwm2m.senml_cbor import encode_cbor
from provkit.registry import ConnectionEvent, ConnectionOutcome, Registry, Service
from provkit.server.coap import CONTENT_LINK_FORMAT, CONTENT_SENML_CBOR, CoapTimeout, Code, Message
from provkit.server.counters import Counters
from provkit.server.endpoint import Session
from provkit.server.home import ServerMaterial
from provkit.server.policy import Policy, diagnostic, endpoint_name_of, query_parameters
from provkit.server.recorder import Recorder

_log = logging.getLogger(__name__)

SHORT_SERVER_ID: Final = 1
"""Short Server ID of the LwM2M server account written to devices."""
PSK_BYTES: Final = 16
ISSUED_VALIDITY_YEARS: Final = 20
_SECURITY_INSTANCE: Final = re.compile(r"^/0/(\d+)$")
_BOOTSTRAPPING: Final = "bootstrapping"


class IssueMode:
    """Which credentials the bootstrap server issues for the LwM2M server."""

    SAME = "same"
    """Certificate for a device that bootstrapped with a certificate, PSK for a PSK device."""
    CERTIFICATE = "certificate"
    PSK = "psk"
    ALL: Final = (SAME, CERTIFICATE, PSK)


@dataclass(frozen=True)
class BootstrapSettings:
    """What the bootstrap server writes.

    Attributes:
        lwm2m_uri: the LwM2M server URI (``coaps://host:port``).
        lifetime: registration lifetime written to ``/1/x/1``.
        binding: binding written to ``/1/x/7``.
        issue: see :class:`IssueMode`.
        request_timeout: seconds to wait for each of the device's answers.
    """

    lwm2m_uri: str
    lifetime: int = 86400
    binding: str = "U"
    issue: str = IssueMode.SAME
    request_timeout: float = 30.0


class BootstrapService:
    """Answers Bootstrap-Request and runs the bootstrap sequence."""

    name = "bootstrap"

    def __init__(
        self,
        settings: BootstrapSettings,
        material: ServerMaterial,
        registry: Registry,
        recorder: Recorder,
        policy: Policy,
        counters: Counters,
    ) -> None:
        self._settings = settings
        self._material = material
        self._registry = registry
        self._recorder = recorder
        self._policy = policy
        self._counters = counters
        self._issuer = issue.DeviceCertificateIssuer(
            material.device_ca_key,
            material.device_ca_cert,
            {"organization-name": "provkit"},
            ISSUED_VALIDITY_YEARS,
        )
        self._tasks: set[asyncio.Task[None]] = set()

    async def serve(self, session: Session, request: Any) -> Any:
        """Answer Bootstrap-Request (and start the sequence), or 4.04."""
        path = tuple(request.opt.uri_path)
        if path != ("bs",) or request.code is not Code.POST:
            return diagnostic(Code.NOT_FOUND, "no such resource on the bootstrap server")
        self._counters.bootstrap_requests += 1
        endpoint = endpoint_name_of(query_parameters(request))
        if endpoint is None:
            self._counters.refused_other += 1
            return diagnostic(Code.BAD_REQUEST, "Bootstrap-Request needs a printable endpoint name (ep=…)")
        refusal = self._policy.refusal(session, endpoint)
        if refusal is not None:
            return self._policy.refuse(self.name, session, endpoint, refusal)
        if session.state.get(_BOOTSTRAPPING):
            return Message(code=Code.CHANGED)  # a retransmitted request: the sequence runs already
        session.state[_BOOTSTRAPPING] = True
        task = asyncio.get_running_loop().create_task(self._bootstrap(session, endpoint))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return Message(code=Code.CHANGED)

    async def _ask(self, session: Session, message: Any, expected: Any, step: str) -> Any:
        response = await session.coap.request(message, timeout=self._settings.request_timeout)
        if response.code is not expected:
            detail = response.payload.decode("utf-8", "replace")[:200]
            raise BootstrapStepError(f"{step}: the device answered {response.code} {detail}".rstrip())
        return response

    async def _bootstrap(self, session: Session, endpoint: str) -> None:
        try:
            await self._ask(session, Message(code=Code.DELETE), Code.DELETED, "Bootstrap-Delete /")
            discover = Message(code=Code.GET, uri_path=("0",))
            discover.opt.accept = CONTENT_LINK_FORMAT
            answer = await self._ask(session, discover, Code.CONTENT, "Bootstrap-Discover /0")
            iid = _free_instance(answer.payload)
            entries = await self._security_entries(session, endpoint, iid)
            write = Message(code=Code.PUT, uri_path=("0", str(iid)), payload=encode_cbor(entries))
            write.opt.content_format = CONTENT_SENML_CBOR
            await self._ask(session, write, Code.CHANGED, f"Bootstrap-Write /0/{iid}")
            server = Message(code=Code.PUT, uri_path=("1", "0"), payload=encode_cbor(self._server_entries()))
            server.opt.content_format = CONTENT_SENML_CBOR
            await self._ask(session, server, Code.CHANGED, "Bootstrap-Write /1/0")
            await self._ask(
                session, Message(code=Code.POST, uri_path=("bs",)), Code.CHANGED, "Bootstrap-Finish"
            )
        except (CoapTimeout, BootstrapStepError, ProvkitError) as exc:
            self._counters.bootstraps_failed += 1
            self._policy.refusals.refuse(
                "bootstrap", "bootstrap of %s from %s failed: %s", endpoint, session.label, exc
            )
            return
        finally:
            session.state.pop(_BOOTSTRAPPING, None)
        event = ConnectionEvent(
            endpoint_name=endpoint,
            service=self.name,
            outcome=ConnectionOutcome.BOOTSTRAPPED,
            address=session.label,
            mode=session.mode,
            fingerprint=session.certificate.fingerprint if session.certificate else None,
        )
        if await self._recorder.record(event):
            self._counters.bootstraps_finished += 1
        _log.info("bootstrapped %s from %s (%s mode)", endpoint, session.label, session.mode)

    async def _security_entries(self, session: Session, endpoint: str, iid: int) -> list[Entry]:
        mode = self._settings.issue
        if mode == IssueMode.SAME:
            mode = IssueMode.PSK if session.mode == "psk" else IssueMode.CERTIFICATE
        base = f"/0/{iid}"
        entries = [
            Entry(f"{base}/0", self._settings.lwm2m_uri),
            Entry(f"{base}/1", False),
        ]
        if mode == IssueMode.PSK:
            key = secrets.token_bytes(PSK_BYTES)
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(None, self._record_psk, endpoint, key)
            entries += [
                Entry(f"{base}/2", 0),
                Entry(f"{base}/3", endpoint.encode("utf-8")),
                Entry(f"{base}/5", key),
            ]
        else:
            device_key = keys.generate_p256()
            certificate = self._issuer.issue(device_key.public_key(), endpoint, dt.datetime.now(dt.UTC))
            entries += [
                Entry(f"{base}/2", 2),
                Entry(f"{base}/3", x509.certificate_der(certificate)),
                Entry(f"{base}/4", self._material.server_cert_der),
                Entry(f"{base}/5", certconfig.private_key_pkcs8(device_key)),
            ]
        entries.append(Entry(f"{base}/10", SHORT_SERVER_ID))
        return entries

    def _record_psk(self, endpoint: str, key: bytes) -> None:
        self._registry.psk.record(
            endpoint, endpoint, key, service=Service.LWM2M, source="bootstrap", replace=True
        )

    def _server_entries(self) -> list[Entry]:
        return [
            Entry("/1/0/0", SHORT_SERVER_ID),
            Entry("/1/0/1", self._settings.lifetime),
            Entry("/1/0/6", False),
            Entry("/1/0/7", self._settings.binding),
        ]


class BootstrapStepError(ServerError):
    """The device refused a step of the bootstrap sequence."""


def _free_instance(payload: bytes) -> int:
    """The lowest Security instance id above 0 that Bootstrap-Discover did not list."""
    taken: set[int] = set()
    try:
        for link in linkformat.parse(payload.decode("utf-8")).links:
            match = _SECURITY_INSTANCE.match(link.href)
            if match:
                taken.add(int(match.group(1)))
    except (UnicodeDecodeError, ValueError, AttributeError, IndexError) as exc:
        raise BootstrapStepError(f"Bootstrap-Discover answer is not CoRE link format: {exc}") from exc
    iid = 1
    while iid in taken:
        iid += 1
    return iid
