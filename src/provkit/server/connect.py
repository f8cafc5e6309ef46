"""A provisioned device's first connection, from its storage to a registration.

:func:`connect_device` reads what the device holds (:mod:`provkit.server.device_store`)
and does what the device's LwM2M client would do at first boot: with an LwM2M server
account, register; with only a bootstrap account, bootstrap, keep what the bootstrap
server wrote, then register with it. Used by ``provkit device connect``, the device farm
and the end-of-line check.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from provkit.device.kcm import Kcm
from provkit.device.lwm2m import store as lwm2m_store
from provkit.errors import ConnectError
from provkit.lwm2m.senml import Entry
from provkit.server import client
from provkit.server.device_store import read_identity, store_bootstrapped
from provkit.server.outcome import Failure

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ConnectResult:
    """A successful first connection.

    Attributes:
        endpoint_name: the name registered.
        bootstrapped: whether the device went through the bootstrap server first.
        bootstrap_server: ``host:port`` of the bootstrap server, if used.
        registration: the registration obtained.
        seconds: how long it took.
    """

    endpoint_name: str
    bootstrapped: bool
    bootstrap_server: str | None
    registration: client.Registration
    seconds: float

    def as_dict(self) -> dict[str, object]:
        """A JSON-ready summary."""
        return {
            "endpoint_name": self.endpoint_name,
            "bootstrapped": self.bootstrapped,
            "bootstrap_server": self.bootstrap_server,
            "server": self.registration.server,
            "location": self.registration.location,
            "mode": self.registration.mode,
            "seconds": round(self.seconds, 3),
        }


def connect_device(
    kcm: Kcm,
    *,
    endpoint_name: str | None = None,
    force_bootstrap: bool = False,
    timeout: float = 10.0,
    deregister: bool = False,
) -> ConnectResult:
    """Bootstrap (when needed) and register the device whose storage is ``kcm``.

    Args:
        kcm: the device's storage.
        endpoint_name: overrides the stored endpoint name (Anjay-style stores hold none).
        force_bootstrap: bootstrap even when an LwM2M server account is stored.
        timeout: seconds for each handshake and exchange.
        deregister: de-register right after registering (a check that leaves nothing behind).

    Raises:
        ConnectError: classified (``tls-alert``, ``ca-untrusted``, ``cn-mismatch``, ``revoked``,
            ``timeout``, ``refused``, ``unreachable``, ``device-config``).
        StorageError: the storage is unreadable or refused the bootstrapped account.
    """
    started = time.monotonic()
    identity = read_identity(kcm)
    name = endpoint_name or identity.endpoint_name
    if not name:
        raise ConnectError(
            "the device store names no endpoint",
            failure=Failure.DEVICE_CONFIG,
            code=Failure.DEVICE_CONFIG.code,
            hint="give the endpoint name (`endpoint`)",
        )
    servers = identity.server_accounts
    bootstrap_server = None
    bootstrapped = False
    if force_bootstrap or not servers:
        account = identity.bootstrap_account
        if account is None:
            raise ConnectError(
                "the device holds neither an LwM2M server account nor a bootstrap account",
                failure=Failure.DEVICE_CONFIG,
                code=Failure.DEVICE_CONFIG.code,
            )
        keep = [] if identity.layout == "fcc" else _bootstrap_entries(kcm)
        try:
            written = client.bootstrap(account, name, keep=keep, timeout=timeout)
        except ConnectError as exc:
            exc.service = "bootstrap"
            raise
        store_bootstrapped(kcm, written)
        bootstrap_server = account.uri
        bootstrapped = True
        servers = read_identity(kcm).server_accounts
        if not servers:
            raise ConnectError(
                "the bootstrap server wrote no usable LwM2M server account",
                failure=Failure.REFUSED,
                code=Failure.REFUSED.code,
            )
    try:
        registration = client.register(servers[0], name, timeout=timeout, deregister=deregister)
    except ConnectError as exc:
        exc.service = "lwm2m"
        raise
    _log.info("%s registered at %s%s", name, registration.server, registration.location)
    return ConnectResult(name, bootstrapped, bootstrap_server, registration, time.monotonic() - started)


def _bootstrap_entries(kcm: Kcm) -> list[Entry]:
    entries = lwm2m_store.load(kcm)
    bootstrap_iids = {e.ids[1] for e in entries if e.ids[0] == 0 and e.ids[2] == 1 and e.value is True}
    return [e for e in entries if e.ids[0] == 0 and e.ids[1] in bootstrap_iids]
