"""The LwM2M client side of the first connection: bootstrap and register as a device does.

:func:`bootstrap` runs Bootstrap-Request against a bootstrap server account and serves
the server's Bootstrap-Delete / Discover / Write / Finish, returning what was written;
:func:`register` registers with an LwM2M server account (and can update and
de-register). Both speak CoAP over DTLS 1.2 through :class:`~provkit.server.link.DeviceLink`
and fail with a classified :class:`~provkit.errors.ConnectError`.

An *account* is what a device holds for one server: the URI, the security mode and the
credentials — read from FCC/KCM items or from the LwM2M Security object
(:mod:`provkit.server.device_store`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import urlsplit

from provkit.errors import ConnectError, ProvkitError
from provkit.lwm2m.senml import Entry
from provkit.lwm2m.strict import decode_strict
from provkit.server import dtls
from provkit.server.coap import CONTENT_LINK_FORMAT, CONTENT_SENML_CBOR, Code, Message
from provkit.server.link import DeviceLink
from provkit.server.outcome import REFUSAL_FAILURES, Failure

DEFAULT_OBJECTS: Final = "</1/0>,</3/0>"
"""Objects a virtual device registers (its Server and Device instances)."""
LWM2M_VERSION: Final = "1.1"


@dataclass(frozen=True)
class Credentials:
    """A device's DTLS credentials for one server.

    Attributes:
        mode: ``certificate``, ``psk`` or ``nosec``.
        chain: the device certificate and any chain above it (DER, leaf first).
        private_key: the device's private key (DER).
        psk_identity: PSK identity bytes.
        psk_key: PSK key bytes.
        server_ca: a CA the server certificate must chain to (FCC's server CA items, or
            Security ``/0/x/4`` with certificate usage 0 or 2).
        server_certificate: the exact server certificate (Security ``/0/x/4`` with
            certificate usage 1 or 3, the LwM2M default).
    """

    mode: str
    chain: tuple[bytes, ...] = ()
    private_key: bytes | None = field(default=None, repr=False)
    psk_identity: bytes | None = None
    psk_key: bytes | None = field(default=None, repr=False)
    server_ca: bytes | None = None
    server_certificate: bytes | None = None


@dataclass(frozen=True)
class Account:
    """One server account of a device.

    Attributes:
        uri: ``coaps://host:port`` (or ``coap://``).
        bootstrap: whether it is the bootstrap server.
        credentials: how the device authenticates and checks the server.
        short_server_id: the LwM2M Short Server ID (not for the bootstrap server).
        lifetime: registration lifetime from the Server object.
        binding: binding from the Server object.
        security_instance: the Security instance id it came from, if any.
    """

    uri: str
    bootstrap: bool
    credentials: Credentials
    short_server_id: int | None = None
    lifetime: int | None = None
    binding: str = "U"
    security_instance: int | None = None


@dataclass(frozen=True)
class Registration:
    """A registration held at an LwM2M server.

    Attributes:
        endpoint_name: the name registered.
        location: ``/rd/<id>``.
        server: ``host:port`` of the server.
        local_address: the device's ``host:port``.
        mode: security mode used.
    """

    endpoint_name: str
    location: str
    server: str
    local_address: str
    mode: str


def _split_uri(uri: str) -> tuple[str, str, int]:
    parts = urlsplit(uri)
    if parts.scheme not in ("coap", "coaps") or not parts.hostname:
        raise ConnectError(
            f"{uri!r} is not a coap:// or coaps:// URI",
            failure=Failure.DEVICE_CONFIG,
            code=Failure.DEVICE_CONFIG.code,
        )
    try:
        port = parts.port or (5684 if parts.scheme == "coaps" else 5683)
    except ValueError as exc:
        raise ConnectError(
            f"{uri!r} has a bad port", failure=Failure.DEVICE_CONFIG, code=Failure.DEVICE_CONFIG.code
        ) from exc
    return parts.scheme, parts.hostname, port


def _server_check(credentials: Credentials) -> Any:
    expected = credentials.server_certificate
    if expected is None:
        return None

    def check(server_der: bytes) -> None:
        if server_der != expected:
            raise ConnectError(
                "the server certificate is not the one stored in the device (Security /0/x/4)",
                failure=Failure.CA_UNTRUSTED,
                code=Failure.CA_UNTRUSTED.code,
            )

    return check


def open_link(account: Account, *, timeout: float = 10.0) -> DeviceLink:
    """Connect to ``account``'s server (DTLS handshake done) and return the link.

    Raises:
        ConnectError: classified (see :mod:`provkit.server.link`).
    """
    scheme, host, port = _split_uri(account.uri)
    credentials = account.credentials
    if scheme == "coap":
        configuration = None
    elif credentials.mode == "psk":
        if not credentials.psk_identity or not credentials.psk_key:
            raise ConnectError(
                "PSK mode needs an identity and a key",
                failure=Failure.DEVICE_CONFIG,
                code=Failure.DEVICE_CONFIG.code,
            )
        try:
            identity = credentials.psk_identity.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ConnectError(
                "the PSK identity is not UTF-8",
                failure=Failure.DEVICE_CONFIG,
                code=Failure.DEVICE_CONFIG.code,
            ) from exc
        configuration = dtls.client_configuration(
            psk=(identity, credentials.psk_key), handshake_timeout=timeout
        )
    elif credentials.mode == "certificate":
        if not credentials.chain or credentials.private_key is None:
            raise ConnectError(
                "certificate mode needs the device certificate and key",
                failure=Failure.DEVICE_CONFIG,
                code=Failure.DEVICE_CONFIG.code,
            )
        anchors = [credentials.server_ca] if credentials.server_ca else []
        configuration = dtls.client_configuration(
            chain=credentials.chain,
            key_der=credentials.private_key,
            anchors=anchors,
            handshake_timeout=timeout,
        )
    else:
        raise ConnectError(
            f"security mode {credentials.mode!r} needs a coap:// URI",
            failure=Failure.DEVICE_CONFIG,
            code=Failure.DEVICE_CONFIG.code,
        )
    link = DeviceLink(host, port, configuration, timeout=timeout, check_server=_server_check(credentials))
    try:
        link.connect()
    except BaseException:
        link.close()
        raise
    return link


def refused(response: Any, what: str, where: str) -> ConnectError:
    """The classified error for a CoAP error answer (the server's diagnostic says why)."""
    detail = response.payload.decode("utf-8", "replace") if response.payload else ""
    key = detail.partition(":")[0]
    failure = REFUSAL_FAILURES.get(key, Failure.REFUSED)
    return ConnectError(
        f"{where} refused {what}: {response.code} {detail}".rstrip(), failure=failure, code=failure.code
    )


def register(
    account: Account,
    endpoint_name: str,
    *,
    lifetime: int | None = None,
    objects: str = DEFAULT_OBJECTS,
    timeout: float = 10.0,
    deregister: bool = False,
) -> Registration:
    """Register ``endpoint_name`` with ``account``'s LwM2M server (optionally de-register after).

    Raises:
        ConnectError: the handshake or the registration failed (classified).
    """
    link = open_link(account, timeout=timeout)
    try:
        return _register_on(
            link, account, endpoint_name, lifetime=lifetime, objects=objects, deregister=deregister
        )
    finally:
        link.close()


def _register_on(
    link: DeviceLink,
    account: Account,
    endpoint_name: str,
    *,
    lifetime: int | None,
    objects: str,
    deregister: bool,
) -> Registration:
    where = f"{link.host}:{link.port}"
    query = [
        f"ep={endpoint_name}",
        f"lt={lifetime or account.lifetime or 86400}",
        f"lwm2m={LWM2M_VERSION}",
        f"b={account.binding}",
    ]
    message = Message(code=Code.POST, uri_path=("rd",), uri_query=tuple(query), payload=objects.encode())
    message.opt.content_format = CONTENT_LINK_FORMAT
    response = link.request(message)
    if response.code is not Code.CREATED:
        raise refused(response, "the registration", where)
    location = "/" + "/".join(response.opt.location_path)
    if deregister:
        answer = link.request(Message(code=Code.DELETE, uri_path=tuple(response.opt.location_path)))
        if answer.code is not Code.DELETED:
            raise refused(answer, "the de-registration", where)
    return Registration(endpoint_name, location, where, link.local_address, account.credentials.mode)


@dataclass
class _BootstrapTarget:
    """What a device's bootstrap session writes: the data model minus the bootstrap account."""

    keep: dict[str, Entry]
    written: dict[str, Entry] = field(default_factory=dict)
    finished: bool = False

    def serve(self, request: Any) -> Any:
        path = tuple(request.opt.uri_path)
        if request.code is Code.DELETE:
            self.written.clear()
            return Message(code=Code.DELETED)
        if request.code is Code.GET and path in (("0",), ()):
            links = ["</>;lwm2m=1.1", "</0>"]
            links += sorted({f"</0/{entry.ids[1]}>" for entry in self.keep.values()})
            links += sorted({f"</0/{entry.ids[1]}>" for entry in self.written.values() if entry.ids[0] == 0})
            answer = Message(code=Code.CONTENT, payload=",".join(links).encode())
            answer.opt.content_format = CONTENT_LINK_FORMAT
            return answer
        if request.code is Code.PUT and len(path) in (2, 3) and all(p.isdigit() for p in path):
            if request.opt.content_format is None or int(request.opt.content_format) != CONTENT_SENML_CBOR:
                return Message(code=Code.UNSUPPORTED_CONTENT_FORMAT)
            try:
                entries = decode_strict(request.payload)
            except ProvkitError:
                return Message(code=Code.BAD_REQUEST)
            prefix = "/" + "/".join(path) + "/"
            if any(not entry.path.startswith(prefix) for entry in entries):
                return Message(code=Code.BAD_REQUEST)
            if any(entry.path in self.keep for entry in entries):
                return Message(code=Code.BAD_REQUEST)  # the bootstrap account is not the server's to change
            for entry in entries:
                self.written[entry.path] = entry
            return Message(code=Code.CHANGED)
        if request.code is Code.POST and path == ("bs",):
            self.finished = True
            return Message(code=Code.CHANGED)
        return Message(code=Code.NOT_FOUND)


def bootstrap(
    account: Account, endpoint_name: str, *, keep: list[Entry] | None = None, timeout: float = 10.0
) -> list[Entry]:
    """Bootstrap ``endpoint_name`` from ``account``'s bootstrap server; return the entries written.

    Args:
        account: the bootstrap server account.
        endpoint_name: the device's endpoint name.
        keep: the device's own bootstrap account entries (Discover lists them; writes to them are refused).
        timeout: seconds for the handshake and for each step.

    Raises:
        ConnectError: the handshake failed, the server refused the request, or it did not
            finish the sequence in time (classified).
    """
    link = open_link(account, timeout=timeout)
    where = f"{link.host}:{link.port}"
    target = _BootstrapTarget({entry.path: entry for entry in keep or []})
    try:
        request = Message(code=Code.POST, uri_path=("bs",), uri_query=(f"ep={endpoint_name}",))
        response = link.request(request, serve=target.serve)
        if response.code is not Code.CHANGED:
            raise refused(response, "the Bootstrap-Request", where)
        link.serve_until(target.serve, lambda: target.finished, timeout=timeout * 3)
    finally:
        link.close()
    if not target.written:
        raise ConnectError(
            f"{where} finished the bootstrap without writing an account",
            failure=Failure.REFUSED,
            code=Failure.REFUSED.code,
        )
    return sorted(target.written.values(), key=lambda entry: entry.ids)
