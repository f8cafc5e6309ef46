"""FCC: the factory configurator client's bundle handler and its C-API mirrors.

:meth:`FactoryConfiguratorClient.bundle_handler` follows ``fcc_bundle_handler()``
(``fcc-bundle-handler/source/fcc_bundle_handler.c`` in PelionIoT/mbed-cloud-client):
envelope and scheme; Entropy then ROT; the factory-disabled check (no response at all);
the top-level pairs in wire order, each item stored as soon as it is read and the first
failure stopping the bundle (``CsrReqs`` only remembered); session rules; CSR requests
parsed and processed; the CA identifier when the session ends; verification (which
replaces earlier warnings); Disable last.

Like Arm's FCC, a device keeps what a failed bundle stored before its failure (the items
before it, Entropy, ROT, the time, CSR keys): a retry of the whole bundle then meets
``17 Data already exists``. ``atomic_bundles=True`` makes every bundle all-or-nothing
instead: a failure rolls the whole bundle back, while the answer stays FCC's.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from provkit.codes import GENERAL_ERROR_PREFIX, SUCCESS_INFO_MESSAGE, FccStatus
from provkit.device import _apply
from provkit.device.clock import DeviceClock
from provkit.device.kcm import ENTROPY, Kcm
from provkit.device.storage import StorageBackend, open_storage
from provkit.device.trust_ca import trust_ca_id_set
from provkit.device.verify import VerifyResult, get_bootstrap_mode, verify_device
from provkit.errors import BundleDecodeError, BundleEncodeError, DeviceError, StorageError
from provkit.wire import bundle as wb
from provkit.wire.response import BundleResponse, CsrResult, encode_response

_log = logging.getLogger(__name__)

FACTORY_DONE: Final = "factory_done"
ROT: Final = "rot"


@dataclass(frozen=True, slots=True)
class HandlerResult:
    """What the bundle handler returns.

    Attributes:
        status: the ``ReturnStatus`` (also inside the response).
        response: the CBOR response bundle, or ``None`` when FCC sends none (factory
            disabled, or the response did not fit: status 21).
        session_finished: ``True`` unless the session is to be kept alive: what the last
            bundle that got past the group loop said with ``KpAlvSess`` (FCC's
            ``g_is_session_finished``, which a bundle failing earlier leaves unchanged).
    """

    status: FccStatus
    response: bytes | None
    session_finished: bool = True


@dataclass(slots=True)
class _Run:
    session: wb.SessionFlags = field(default_factory=wb.SessionFlags)
    csr_group: object | None = None  # the raw CsrReqs value; FCC parses it after the session rules
    csr_stage: bool = False  # CsrReqs reached processing: FCC's 2560-byte buffer is in use
    csrs: list[CsrResult] = field(default_factory=list)
    warnings: tuple[str, ...] = ()


class FactoryConfiguratorClient:
    """The device side of factory provisioning.

    Args:
        kcm: the device's secure storage.
        clock: the device clock; default: one on ``kcm`` using the host time.
        secure_time: behave as a build with PAL secure time (the client's default): trust
            the bootstrap CA's identifier when a session ends and check it in verification
            (see :mod:`provkit.device.trust_ca`).
        atomic_bundles: make each bundle all-or-nothing: a failed bundle leaves storage as
            it was. Off by default, as on a real device, where what a bundle stored before
            its failure stays.
    """

    def __init__(
        self,
        kcm: Kcm,
        *,
        clock: DeviceClock | None = None,
        secure_time: bool = True,
        atomic_bundles: bool = False,
    ) -> None:
        self.kcm = kcm
        self.clock = clock if clock is not None else DeviceClock(kcm)
        self.secure_time = secure_time
        self.atomic_bundles = atomic_bundles
        # g_is_session_finished: set once a bundle's groups are all read, kept otherwise.
        self._session_finished = True

    # ------------------------------------------------------------ public API

    def is_factory_disabled(self) -> bool:
        """Return whether a bundle with ``Disable`` 1 closed the factory flow."""
        return self.kcm.rbp_get(FACTORY_DONE) is not None

    def verify_device_configured(self) -> VerifyResult:
        """Check the stored configuration as ``fcc_verify_device_configured_4mbed_cloud()``."""
        return verify_device(self.kcm, self.clock.now, check_ca_identifier=self.secure_time)

    def storage_delete(self) -> None:
        """Delete everything, including RBP items (``fcc_storage_delete``)."""
        self.kcm.erase()

    def factory_reset(self) -> None:
        """Restore the factory items and drop everything stored since."""
        self.kcm.factory_reset()

    def bundle_handler(self, data: bytes) -> HandlerResult:
        """Process one request bundle and build the response; never raises.

        Args:
            data: the CBOR bundle (the body of an ``mbedprov`` frame).

        Returns:
            The status, the response bytes (or ``None``) and whether the session ended.
        """
        run = _Run()
        # One storage transaction per bundle. A refusal keeps what was stored before it,
        # as FCC does, unless bundles are atomic; anything else (a bug, a storage fault)
        # rolls the bundle back.
        keep_on: tuple[type[BaseException], ...] = () if self.atomic_bundles else (DeviceError,)
        try:
            with self.kcm.transaction(keep_on=keep_on):
                self._process(bytes(data), run)
                response = self._encode(FccStatus.SUCCESS, SUCCESS_INFO_MESSAGE, run)
                if response is None:
                    raise DeviceError.of(FccStatus.BUNDLE_RESPONSE_ERROR)
        except DeviceError as failure:
            return self._failed(failure, run)
        except StorageError as exc:  # the storage itself failed (disk, corrupted item)
            _log.warning("bundle failed on storage: %s", exc)
            return self._failed(DeviceError.from_kcm(exc), run)
        except Exception:  # a bug must not crash the device agent: answer, log, roll back
            _log.exception("unexpected failure while processing a bundle")
            return self._failed(DeviceError(GENERAL_ERROR_PREFIX, fcc_status=FccStatus.ERROR), run)
        return HandlerResult(FccStatus.SUCCESS, response, self._session_finished)

    # ------------------------------------------------------------ internals

    def _failed(self, failure: DeviceError, run: _Run) -> HandlerResult:
        if not failure.respond:
            return HandlerResult(failure.fcc_status, None, self._session_finished)
        run.csrs = []  # FCC resets the encoder on error: CSRs are dropped
        response = self._encode(failure.fcc_status, failure.message, run)
        if response is None:
            return HandlerResult(FccStatus.BUNDLE_RESPONSE_ERROR, None, self._session_finished)
        return HandlerResult(failure.fcc_status, response, self._session_finished)

    @staticmethod
    def _encode(status: FccStatus, message: str, run: _Run) -> bytes | None:
        resp = BundleResponse(
            return_status=int(status),
            info_message=message,
            warning_info="".join(w + "\n" for w in run.warnings),
            sid=run.session.sid,
            csrs=tuple(run.csrs),
        )
        try:
            return encode_response(resp, csr_buffer=run.csr_stage)
        except BundleEncodeError:
            return None

    def _process(self, data: bytes, run: _Run) -> None:
        try:
            envelope = wb.decode_envelope(data)
            self._rbp_groups(envelope)
        except BundleDecodeError as exc:
            raise DeviceError.of(exc.fcc_status, exc.item) from exc
        if self.is_factory_disabled():
            raise DeviceError.of(FccStatus.FACTORY_DISABLED_ERROR, respond=False)
        try:
            for key, value in envelope:
                self._pair(key, value, envelope.source, run)
            self._session_finished = run.session.session_finished
            wb.check_session_rules(run.session, csr_requested=run.csr_group is not None)
            if run.csr_group is not None:
                run.csr_stage = True
                for request in wb.iter_items(wb.CSR_REQS_KEY, run.csr_group, envelope.source):
                    assert isinstance(request, wb.CsrRequest)
                    run.csrs.append(_apply.process_csr(self.kcm, request))
        except BundleDecodeError as exc:
            raise DeviceError.of(exc.fcc_status, exc.item) from exc
        if self.secure_time and run.session.session_finished:
            self._trust_ca(run)
        if run.session.verifies:
            result = self.verify_device_configured()
            run.warnings = result.warnings  # verification clears what came before
            if not result.ok:
                raise DeviceError(result.message, fcc_status=result.status)
        if run.session.disables:
            self.kcm.rbp_set(FACTORY_DONE, (1).to_bytes(8, "little"))

    def _rbp_groups(self, envelope: wb.Envelope) -> None:
        """Entropy then ROT, looked up by key before anything else (``fcc_bundle_process_rbp_buffer``)."""
        for key, item, status in (
            (wb.ENTROPY_KEY, ENTROPY, FccStatus.ENTROPY_ERROR),
            (wb.ROT_KEY, ROT, FccStatus.ROT_ERROR),
        ):
            value = envelope.lookup(key)
            if value is not None:
                self._set_once(item, wb.parse_rbp(key, value), status)

    def _pair(self, key: object, value: object, source: bytes, run: _Run) -> None:
        """One top-level pair of FCC's wire-order loop: items are stored one by one as read."""
        group = wb.group_of(key)
        if group is None:
            return  # SchemeVersion, Entropy, ROT (and their prefixes): read before the loop
        if group in wb.ITEM_GROUPS:
            for item in wb.iter_items(group, value, source):
                self._store(item)
        elif group == wb.CSR_REQS_KEY:
            run.csr_group = value  # remembered only (the last one wins), as FCC does
        elif group == wb.SID_KEY:
            run.session = run.session.with_sid(wb.parse_sid(value))
        else:
            run.session = run.session.with_flag(group, wb.parse_flag(group, value))

    def _trust_ca(self, run: _Run) -> None:
        """``fcc_trust_ca_cert_id_set()`` when a session ends.

        Like FCC it first reads the bootstrap mode, so a session ending without a valid
        ``mbed.UseBootstrap`` fails (25/27/30) even with ``Verify`` 0, and LwM2M mode leaves
        the ``Bootstrap mode not activated`` warning (replaced if verification follows); in
        bootstrap mode the bootstrap CA must exist (25).
        """
        use_bootstrap, mode = get_bootstrap_mode(self.kcm)
        run.warnings += mode.warnings
        if not mode.ok:
            raise DeviceError(mode.message, fcc_status=mode.status)
        if use_bootstrap:
            try:
                trust_ca_id_set(self.kcm)
            except StorageError as exc:
                raise DeviceError.from_kcm(exc) from exc

    def _set_once(self, name: str, value: bytes, status: FccStatus) -> None:
        if self.kcm.rbp_get(name) is not None:
            raise DeviceError.of(status, name)
        self.kcm.rbp_set(name, value)

    def _store(self, item: object) -> None:
        match item:
            case wb.KeyItem():
                _apply.store_key(self.kcm, item)
            case wb.CertificateItem():
                _apply.store_certificate(self.kcm, item)
            case wb.CertificateChainItem():
                _apply.store_chain(self.kcm, item)
            case wb.ConfigParam():
                _apply.store_config(self.kcm, self.clock, item)


# ---------------------------------------------------------------- C-API mirrors


def fcc_init(
    storage: str | Path | StorageBackend = "provkit-device.sqlite",
    *,
    time_source: Callable[[], float] | None = None,
    atomic_bundles: bool = False,
) -> FactoryConfiguratorClient:
    """Open (creating if needed) a device's storage and return its FCC (``fcc_init``).

    Args:
        storage: a SQLite path, ``":memory:"``, or an open backend.
        time_source: host clock override for the device clock.
        atomic_bundles: make each bundle all-or-nothing (see :class:`FactoryConfiguratorClient`).
    """
    backend = storage if isinstance(storage, StorageBackend) else open_storage(storage)
    kcm = Kcm(backend)
    clock = DeviceClock(kcm) if time_source is None else DeviceClock(kcm, time_source=time_source)
    return FactoryConfiguratorClient(kcm, clock=clock, atomic_bundles=atomic_bundles)


def fcc_bundle_handler(fcc: FactoryConfiguratorClient, data: bytes) -> tuple[FccStatus, bytes | None]:
    """Process a bundle; return ``(status, response)`` like the C function's outputs."""
    result = fcc.bundle_handler(data)
    return result.status, result.response


def fcc_verify_device_configured_4mbed_cloud(fcc: FactoryConfiguratorClient) -> FccStatus:
    """Run device verification and return its status."""
    return fcc.verify_device_configured().status


def fcc_storage_delete(fcc: FactoryConfiguratorClient) -> FccStatus:
    """Delete all storage; return ``SUCCESS`` or ``KCM_STORAGE_ERROR``."""
    try:
        fcc.storage_delete()
    except StorageError:
        return FccStatus.KCM_STORAGE_ERROR
    return FccStatus.SUCCESS


def fcc_finalize(fcc: FactoryConfiguratorClient) -> FccStatus:
    """Release the device's storage (``fcc_finalize``)."""
    fcc.kcm.backend.close()
    return FccStatus.SUCCESS
