"""The device side of LwM2M factory provisioning: accept a SenML CBOR blob into secure storage.

It does what Anjay's ``anjay_factory_provision()`` does
(``src/modules/factory_provisioning/anjay_provisioning.c``), against KCM instead of Anjay's
data model:

1. decode the blob under the device's SenML rules (:mod:`provkit.lwm2m.strict`);
2. check every path against the objects this device supports (Security /0, Server /1,
   Device /3) and every value against its resource type;
3. validate the Security and Server rules (:mod:`provkit.lwm2m.validate`), and in
   certificate modes that the certificate parses and matches its private key;
4. in one storage transaction, wipe the previous LwM2M configuration and write the new
   one; any failure rolls everything back, so the device keeps its old configuration.

The answer is an :class:`~provkit.lwm2m.response.AcceptResult` (code and reason).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Final

from provkit.crypto import certconfig, x509
from provkit.device.kcm import Kcm
from provkit.device.lwm2m import store
from provkit.errors import CryptoError, Lwm2mRefused, SenmlError, StorageError
from provkit.lwm2m.objects import OBJECTS, resource_spec
from provkit.lwm2m.paths import PathError
from provkit.lwm2m.profile import GENERIC, TargetProfile
from provkit.lwm2m.response import AcceptResult, AcceptStatus
from provkit.lwm2m.senml import Entry
from provkit.lwm2m.strict import decode_strict
from provkit.lwm2m.types import check_value
from provkit.lwm2m.validate import ConfigurationRejected, group_instances, validate_instances

_log = logging.getLogger(__name__)

DEFAULT_MAX_BLOB_BYTES: Final = 64 * 1024
"""Largest blob accepted (the transport frame limit)."""

SUPPORTED_OBJECTS: Final = frozenset(OBJECTS)
"""Objects whose instances the acceptor stores."""


def _refused(status: AcceptStatus, reason: str) -> Lwm2mRefused:
    return Lwm2mRefused(reason, accept_status=int(status))


def _typed(entry: Entry, profile: TargetProfile) -> Entry:
    oid, iid, rid, *rest = entry.ids
    if oid not in SUPPORTED_OBJECTS:
        raise _refused(AcceptStatus.NOT_FOUND, f"{entry.path}: object {oid} is not supported by this device")
    if not OBJECTS[oid].multiple and iid != 0:
        raise _refused(AcceptStatus.NOT_FOUND, f"{entry.path}: {OBJECTS[oid].name} has only instance 0")
    spec = resource_spec(oid, rid)
    if spec is None:
        raise _refused(AcceptStatus.NOT_FOUND, f"{entry.path}: object {oid} has no resource {rid}")
    refusal = profile.refusal(oid, rid)
    if refusal is not None:
        # What the client's object does with a write it does not handle (4.04 / 4.05).
        raise _refused(AcceptStatus.NOT_FOUND, f"{entry.path}: {refusal}")
    if spec.multiple != bool(rest):
        why = "needs a resource instance id" if spec.multiple else "is a single-instance resource"
        raise _refused(AcceptStatus.BAD_PATH, f"{entry.path}: {spec.name} {why}")
    try:
        return Entry(entry.path, check_value(spec, entry.value))
    except SenmlError as exc:
        raise _refused(AcceptStatus.BAD_VALUE, f"{entry.path}: {exc}") from exc


def _check_certificates(instances: dict[tuple[int, int], dict[int, object]]) -> None:
    for (oid, iid), res in sorted(instances.items()):
        if oid != 0 or res.get(2) not in (2, 4):
            continue
        cert_der, key_der = res.get(3), res.get(5)
        assert isinstance(cert_der, bytes) and isinstance(key_der, bytes)  # validated before
        try:
            cert = x509.load_certificate(cert_der)
        except CryptoError as exc:
            raise _refused(AcceptStatus.VALIDATION_FAILED, f"/0/{iid}/3: not a certificate: {exc}") from exc
        try:
            matches = certconfig.key_matches_certificate(key_der, cert)
        except CryptoError as exc:
            raise _refused(AcceptStatus.VALIDATION_FAILED, f"/0/{iid}/5: not a private key: {exc}") from exc
        if not matches:
            raise _refused(
                AcceptStatus.VALIDATION_FAILED,
                f"/0/{iid}/5: the private key does not match the certificate /0/{iid}/3",
            )


class Lwm2mAcceptor:
    """Accepts SenML CBOR provisioning blobs into a device's KCM.

    Args:
        kcm: the device's secure storage.
        max_blob_bytes: blobs above this are refused unread.
        profile: the client this device models (:mod:`provkit.lwm2m.profile`): resources it
            does not let a factory bootstrap write are refused (``NOT_FOUND``). The default,
            ``GENERIC``, takes the whole registry; a virtual Anjay device passes ``ANJAY``.
    """

    def __init__(
        self, kcm: Kcm, *, max_blob_bytes: int = DEFAULT_MAX_BLOB_BYTES, profile: TargetProfile = GENERIC
    ) -> None:
        self.kcm = kcm
        self.max_blob_bytes = max_blob_bytes
        self.profile = profile

    def _check(self, blob: bytes) -> list[Entry]:
        if len(blob) > self.max_blob_bytes:
            raise _refused(AcceptStatus.MALFORMED, f"blob of {len(blob)} bytes exceeds {self.max_blob_bytes}")
        try:
            decoded = decode_strict(blob)
        except PathError as exc:
            raise _refused(AcceptStatus.BAD_PATH, str(exc)) from exc
        except SenmlError as exc:
            raise _refused(AcceptStatus.MALFORMED, str(exc)) from exc
        if not decoded:
            # An empty pack would wipe the provisioned configuration and store nothing.
            raise _refused(AcceptStatus.MALFORMED, "the blob holds no records")
        entries = [_typed(entry, self.profile) for entry in decoded]
        instances = group_instances(entries)
        try:
            validate_instances(instances)
        except ConfigurationRejected as exc:
            raise _refused(AcceptStatus.VALIDATION_FAILED, str(exc)) from exc
        _check_certificates(instances)  # type: ignore[arg-type]
        return entries

    def accept(self, blob: bytes) -> AcceptResult:
        """Validate ``blob`` and replace the stored LwM2M configuration with it.

        Never raises for bad input: every refusal is a result with a reason, and leaves
        the previous configuration untouched.
        """
        try:
            entries = self._check(bytes(blob))
            modes = {
                iid: mode
                for (oid, iid), res in group_instances(entries).items()
                if oid == 0 and isinstance(mode := res.get(2), int)
            }
            with self.kcm.transaction():
                removed = store.wipe(self.kcm)
                store.store(self.kcm, entries, modes)
        except Lwm2mRefused as exc:
            status = AcceptStatus(exc.accept_status)
            _log.info("LwM2M blob refused (%s): %s", status.name, exc)
            return AcceptResult(status, exc.message)
        except StorageError as exc:
            _log.warning("LwM2M configuration not stored: %s", exc)
            return AcceptResult(AcceptStatus.STORAGE_ERROR, f"secure storage failed: {exc}")
        _log.info("LwM2M configuration stored: %d resources (%d old items removed)", len(entries), removed)
        return AcceptResult(AcceptStatus.OK, "", len(entries))

    def stream(self) -> BlobStream:
        """Return a sink that takes a blob in pieces, as it arrives, and accepts it at its end."""
        return BlobStream(self)

    def configuration(self) -> list[Entry]:
        """Return the stored LwM2M configuration, ordered by path."""
        return store.load(self.kcm)

    def wipe(self) -> int:
        """Delete the stored LwM2M configuration; return the number of items removed."""
        with self.kcm.transaction():
            return store.wipe(self.kcm)


class BlobStream:
    """A blob streamed into an acceptor piece by piece; :meth:`finish` accepts what arrived, once.

    Anjay's ``anjay_factory_provision`` reads an ``avs_stream_t`` the same way. Nothing is
    applied before :meth:`finish`, and a blob that ends early fails as a whole, so a transfer
    that stops half-way never leaves half a configuration.
    """

    def __init__(self, acceptor: Lwm2mAcceptor) -> None:
        self._acceptor = acceptor
        self._data = bytearray()
        self.result: AcceptResult | None = None
        """The acceptor's result once :meth:`finish` ran."""

    @property
    def received(self) -> int:
        """Bytes taken so far."""
        return len(self._data)

    def fits(self, size: int) -> bool:
        """Whether a blob of ``size`` bytes in all stays within the acceptor's limit."""
        return size <= self._acceptor.max_blob_bytes

    def write(self, data: bytes) -> bool:
        """Take the next piece; ``False`` (nothing taken) past the limit or after :meth:`finish`."""
        if self.result is not None or not self.fits(len(self._data) + len(data)):
            return False
        self._data += data
        return True

    def finish(self) -> AcceptResult:
        """End the stream and accept the blob (idempotent: later calls return the same result)."""
        if self.result is None:
            self.result = self._acceptor.accept(bytes(self._data))
            self._data.clear()
        return self.result


def make_lwm2m_handler(kcm: Kcm) -> Callable[[bytes], bytes]:
    """Return a device-agent handler for ``lwm2mfpv`` frames: blob in, encoded result out."""
    acceptor = Lwm2mAcceptor(kcm)

    def handle(message: bytes) -> bytes:
        return acceptor.accept(message).encode()

    return handle
