"""The device side's message handlers for the transport's device agent.

The device side sits above the transports: it plugs FCC and the LwM2M acceptor into a
:class:`~provkit.transport.agent.DeviceAgent` (TCP, serial) by token.

* FCC (:data:`~provkit.wire.framing.FCC_TOKEN`): as the C example's main loop does, a
  ``HandlerResult`` with no response buffer, or status ``FCC_STATUS_BUNDLE_RESPONSE_ERROR``
  (21), is answered with transport status 9 and no body; anything else with status 0 and
  the response CBOR, even when its ``ReturnStatus`` is an error. The connection stays open
  while the bundle's keep-alive session (``KpAlvSess``) is open.
* LwM2M (:data:`~provkit.wire.framing.LWM2M_TOKEN`): the SenML blob goes to
  ``Lwm2mAcceptor.accept``; its encoded result is the response body.

Wiping storage on the first bundle of a run (``fcc_storage_delete`` in the C example) is
available but **off by default**: the C demo starts every run on a scratch device, while a
provkit agent serves persistent storage and may be restarted between two messages of a
line, where a silent wipe would destroy a provisioned identity.
"""

from __future__ import annotations

import logging
import threading

from provkit.codes import FccStatus
from provkit.device.fcc import FactoryConfiguratorClient, HandlerResult
from provkit.device.kcm import Kcm
from provkit.device.lwm2m import make_lwm2m_handler
from provkit.transport.agent import MessageHandler, Reply
from provkit.wire.framing import FCC_TOKEN, LWM2M_TOKEN

_log = logging.getLogger(__name__)


def fcc_handler(client: FactoryConfiguratorClient, *, wipe_on_first: bool = False) -> MessageHandler:
    """Return a handler feeding bundles to ``client.bundle_handler``.

    Args:
        client: the device's FCC.
        wipe_on_first: call ``client.storage_delete()`` before the first bundle this handler
            sees, like the C example (see the module docstring for why it is off by default).
    """
    pending_wipe = [wipe_on_first]
    lock = threading.Lock()

    def handle(message: bytes) -> Reply:
        with lock:
            if pending_wipe[0]:
                _log.info("first bundle of this run: wiping device storage")
                client.storage_delete()
                pending_wipe[0] = False
            result = client.bundle_handler(message)
        return Reply(response_body(result), session_finished=result.session_finished)

    return handle


def response_body(result: HandlerResult) -> bytes | None:
    """The frame body answering a handler result: its response, or ``None`` (status 9, no body).

    As the C example's main loop: no response buffer, or ``BUNDLE_RESPONSE_ERROR`` (21),
    is answered with transport status 9; anything else with the response CBOR, even when
    its ``ReturnStatus`` is an error.
    """
    if result.response is None or result.status == FccStatus.BUNDLE_RESPONSE_ERROR:
        return None
    return result.response


def lwm2m_handler(kcm: Kcm) -> MessageHandler:
    """Return a handler feeding SenML blobs to an :class:`~provkit.device.lwm2m.Lwm2mAcceptor`."""
    handle = make_lwm2m_handler(kcm)
    # The agent serves one connection at a time; the lock also keeps a farm's shared
    # storage consistent if a caller ever runs several agents over one KCM.
    lock = threading.Lock()

    def locked(message: bytes) -> bytes:
        with lock:
            return handle(message)

    return locked


def device_handlers(
    client: FactoryConfiguratorClient, kcm: Kcm | None = None, *, wipe_on_first: bool = False
) -> dict[bytes, MessageHandler]:
    """The standard handler table: FCC bundles, plus LwM2M SenML when ``kcm`` is given."""
    handlers: dict[bytes, MessageHandler] = {FCC_TOKEN: fcc_handler(client, wipe_on_first=wipe_on_first)}
    if kcm is not None:
        handlers[LWM2M_TOKEN] = lwm2m_handler(kcm)
    return handlers
