"""Sending a provisioning blob to a device over any :class:`~provkit.transport.link.DeviceLink`.

The blob travels as an ``lwm2mfpv`` frame over TCP, serial or into a file; the answer
body is the acceptor's :class:`~provkit.lwm2m.response.AcceptResult`.
"""

from __future__ import annotations

from provkit.errors import CodeSpace, DeviceResponseError, SenmlError
from provkit.factory import provision
from provkit.factory.provision import OneMessage, converse
from provkit.lwm2m.response import AcceptResult
from provkit.transport.link import DEFAULT_LINK_SETTINGS, DeviceLink, LinkSettings
from provkit.transport.spec import LinkTarget
from provkit.wire.framing import LWM2M_TOKEN


class ProvisioningRefused(DeviceResponseError):
    """The device answered, but refused the blob; ``result`` holds its code and reason."""

    default_code = 5010
    space = CodeSpace.LWM2M

    def __init__(self, result: AcceptResult) -> None:
        super().__init__(
            f"device refused the LwM2M configuration ({result.status.name}): {result.reason}",
            code=5010 + int(result.status),
        )
        self.result = result


def read_result(answer: bytes) -> AcceptResult:
    """The LwM2M acceptor's accepted result in a device's answer.

    Raises:
        ProvisioningRefused: the device refused the blob (nothing changed on it).
        DeviceResponseError: the answer is not an acceptor result.
    """
    try:
        result = AcceptResult.decode(answer)
    except SenmlError as exc:
        message = f"the device's answer is not an LwM2M result: {exc}"
        raise DeviceResponseError(message, code=5010) from exc
    if not result.ok:
        raise ProvisioningRefused(result)
    return result


def deliver(
    link: DeviceLink | LinkTarget,
    blob: bytes,
    *,
    timeout_s: float | None = None,
    settings: LinkSettings = DEFAULT_LINK_SETTINGS,
) -> AcceptResult | None:
    """Send ``blob`` through provkit's one flow and return the device's accepted result.

    Args:
        link: an open link (one try), or a target to open a link to for each try.
        blob: the SenML CBOR blob.
        timeout_s: how long an open link waits for the answer (``None``: the link's own).
        settings: a target's timeouts and retries.

    Returns:
        The device's result, or ``None`` for a link that carries no answer back (a
        ``FileLink``: the frame is replayed to the device later).

    Raises:
        ProvisioningRefused: the device refused it (nothing changed on the device).
        DeviceResponseError: the answer is not an acceptor result.
        TransportError: the link failed.
    """
    conversation = OneMessage(LWM2M_TOKEN, blob, read_result)
    if not isinstance(link, LinkTarget):
        return converse(conversation, link, timeout_s=timeout_s)[1]
    delivery = provision.deliver(conversation, link, settings)
    if delivery.error is not None:
        raise delivery.error
    return delivery.verdict
