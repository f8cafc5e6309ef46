"""Provisioning a Zephyr board running Anjay's factory provisioning image, over SMP files.

The flow of AVSystem/Anjay-zephyr-client ``tools/provisioning-tool/ptool.py``, without
the Go ``mcumgr`` CLI:

1. read ``/factory/endpoint.txt``: the endpoint name the device chose (unless one is given);
2. build the SenML CBOR blob for that endpoint (certificates get it as their CN);
3. upload it to ``/factory/provision.cbor``;
4. read ``/factory/result.txt``: ``0`` means the device applied and persisted it.

``result.txt`` decides, always: the device applies a blob as a whole or not at all, and
reading the result ends the blob. When the upload fails after the device took part of it
(a chunk without an answer, retries exhausted), the result is read all the same: ``0``
means the blob did arrive (only the last answers were lost), anything else that nothing
was applied.

The link is a :class:`~provkit.transport.link.SmpFiles` (:class:`provkit.transport.smp_link.SmpLink`,
or any other object that downloads and uploads files).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final, Protocol, TypeVar

from provkit.errors import SmpDeviceError, SmpError, SmpProvisioningFailed
from provkit.transport.link import SmpFiles
from provkit.wire.smp import (
    ALREADY_PROVISIONED_LINE,
    ENDPOINT_PATH,
    PROVISION_PATH,
    READY_LINE,
    RESULT_PATH,
    parse_result,
)

_log = logging.getLogger(__name__)

MAX_ENDPOINT_BYTES: Final = 255
"""Longest endpoint name taken from a device."""

ENDPOINT_UNUSABLE: Final = 7004
RESULT_FAILED: Final = 7005


@dataclass(frozen=True, slots=True)
class ZephyrResult:
    """How provisioning one board went (it succeeded: failures raise).

    Attributes:
        endpoint_name: the endpoint the blob was built for.
        blob_bytes: the blob's size.
        upload_recovered: the upload failed at its end but ``result.txt`` showed the blob arrived.
    """

    endpoint_name: str
    blob_bytes: int
    upload_recovered: bool = False


def read_endpoint_name(link: SmpFiles) -> str:
    """Read ``/factory/endpoint.txt``.

    Raises:
        SmpProvisioningFailed: 7004 when the device has no ``/factory`` (already provisioned,
            or not running the provisioning image) or the name is not usable text.
        SmpError: the link failed.
    """
    try:
        raw = link.download(ENDPOINT_PATH, max_bytes=MAX_ENDPOINT_BYTES)
    except SmpDeviceError as exc:
        raise SmpProvisioningFailed(
            f"{link.describe}: cannot read {ENDPOINT_PATH}: {exc.message.split(': ', 1)[-1]}",
            code=ENDPOINT_UNUSABLE,
            hint="a device already provisioned does not mount /factory: erase it and flash the provisioning "
            "image again; otherwise check it runs the provisioning image",
        ) from exc
    try:
        name = raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        name = ""
    if not name or not name.isprintable():
        raise SmpProvisioningFailed(
            f"{link.describe}: {ENDPOINT_PATH} holds no usable endpoint name ({raw[:40]!r})",
            code=ENDPOINT_UNUSABLE,
        )
    return name


def read_result(link: SmpFiles) -> int:
    """Read ``/factory/result.txt`` (this ends the blob on the device).

    Raises:
        SmpProvisioningFailed: 7005 when it is not a decimal number.
        SmpError: the link failed.
    """
    raw = link.download(RESULT_PATH, max_bytes=32)
    try:
        return parse_result(raw)
    except ValueError as exc:
        raise SmpProvisioningFailed(
            f"{link.describe}: {RESULT_PATH} is not a result: {raw[:32]!r}", code=RESULT_FAILED
        ) from exc


def deliver_blob(
    link: SmpFiles,
    blob: bytes,
    endpoint_name: str,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> ZephyrResult:
    """Upload ``blob`` and let ``result.txt`` decide.

    Raises:
        SmpProvisioningFailed: 7005 when the device reports a result other than 0 (nothing applied).
        SmpError: the upload failed before the device took a byte, or the result cannot be read.
    """
    held = [0]

    def track(done: int, total: int) -> None:
        held[0] = done
        if progress is not None:
            progress(done, total)

    recovered = False
    try:
        link.upload(PROVISION_PATH, blob, progress=track)
    except SmpError as exc:
        if held[0] == 0:
            raise  # the device took nothing; reading the result would only end an empty blob
        _log.warning("%s: upload failed after %d bytes (%s); reading the result", link.describe, held[0], exc)
        try:
            result = read_result(link)
        except SmpError:
            raise exc from None
        if result != 0:
            raise SmpProvisioningFailed(
                f"{exc.message}; the device then reported result {result}: nothing was applied",
                code=RESULT_FAILED,
                result=result,
            ) from exc
        recovered = True
    else:
        result = read_result(link)
    if result != 0:
        raise SmpProvisioningFailed(
            f"{link.describe}: the device reported result {result}: it refused the blob or could not "
            "store it; nothing was applied",
            code=RESULT_FAILED,
            result=result,
            hint="inspect the blob: its target profile must match the device's client; the device "
            "takes another blob after a reset",
        )
    return ZephyrResult(endpoint_name, len(blob), recovered)


class ConsoleLink(Protocol):
    """A link that can watch the device's console (a serial SMP link)."""

    describe: str

    def wait_for_console(self, texts: Sequence[str], timeout_s: float) -> str:
        """Wait for a console line containing one of ``texts``; return it."""
        ...


def wait_until_ready(link: ConsoleLink, timeout_s: float) -> None:
    """Wait for the provisioning image's ``Device ready for provisioning.`` (after a flash or reset).

    Raises:
        SmpProvisioningFailed: 7004 when the board logs instead that it already holds
            provisioning data (it mounts no ``/factory``).
        SmpTimeout: neither line within ``timeout_s``.
    """
    line = link.wait_for_console((READY_LINE, ALREADY_PROVISIONED_LINE), timeout_s)
    if ALREADY_PROVISIONED_LINE in line:
        raise SmpProvisioningFailed(
            f"{link.describe}: the board says: {ALREADY_PROVISIONED_LINE}",
            code=ENDPOINT_UNUSABLE,
            hint="erase the board's settings and flash the provisioning image again to provision it anew",
        )


class _Provisioner(Protocol):
    def provision_zephyr(
        self, link: SmpFiles, *, progress: Callable[[int, int], None] | None = None
    ) -> ZephyrResult: ...


_P = TypeVar("_P", bound=_Provisioner)


def provision_board(
    link: SmpFiles,
    prepare: Callable[[str], _P],
    *,
    endpoint_name: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[_P, ZephyrResult]:
    """The whole board flow: endpoint (given, or read from the device), prepare, upload, result.

    Args:
        link: the board's SMP link.
        prepare: builds the provisioning for an endpoint name (loads the configuration,
            installs or generates certificates for it); nothing is sent if it fails.
        endpoint_name: overrides ``endpoint.txt`` (``-e``).
        progress: upload progress ``(bytes held, total)``.

    Returns:
        What ``prepare`` built (for registration) and the outcome.
    """
    endpoint = endpoint_name or read_endpoint_name(link)
    provisioning = prepare(endpoint)
    return provisioning, provisioning.provision_zephyr(link, progress=progress)
