"""Sending a provisioning blob to a device over any :class:`~provkit.transport.link.DeviceLink`.

The blob travels as an ``lwm2mfpv`` frame over TCP, serial or into a file; the answer
body is the acceptor's :class:`~provkit.lwm2m.response.AcceptResult`.
"""

from __future__ import annotations

from provkit.errors import DeviceResponseError, SenmlError
from provkit.lwm2m.response import AcceptResult
from provkit.transport.link import DeviceLink
from provkit.wire.framing import LWM2M_TOKEN


class ProvisioningRefused(DeviceResponseError):
    """The device answered, but refused the blob; ``result`` holds its code and reason."""

    default_code = 5010

    def __init__(self, result: AcceptResult) -> None:
        super().__init__(
            f"device refused the LwM2M configuration ({result.status.name}): {result.reason}",
            code=5010 + int(result.status),
        )
        self.result = result


def deliver(link: DeviceLink, blob: bytes, *, timeout_s: float | None = 30.0) -> AcceptResult | None:
    """Send ``blob`` and return the device's accepted result.

    Returns:
        The device's result, or ``None`` for a link that carries no answer back (a
        ``FileLink``: the frame is replayed to the device later).

    Raises:
        ProvisioningRefused: the device refused it (nothing changed on the device).
        DeviceResponseError: the answer is not an acceptor result.
        TransportError: the link failed.
    """
    body = link.exchange(blob, timeout_s=timeout_s, token=LWM2M_TOKEN)
    if not link.returns_responses:
        return None
    try:
        result = AcceptResult.decode(body)
    except SenmlError as exc:
        raise DeviceResponseError(f"the device's answer is not an LwM2M result: {exc}", code=5010) from exc
    if not result.ok:
        raise ProvisioningRefused(result)
    return result
