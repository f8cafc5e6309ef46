"""FCC: the factory configurator client's bundle handler and its C-API mirrors.

:meth:`FactoryConfiguratorClient.bundle_handler` follows ``fcc_bundle_handler()``'s
processing order (pelion-fcc.md §1.8): envelope and scheme; Entropy then ROT; the
factory-disabled check (no response at all); groups in wire order, stopping at the first
failure (``CsrReqs`` only remembered); session rules; CSR requests parsed and processed;
verification (which replaces earlier warnings);
Disable last. Unlike Arm's FCC, a bundle is all-or-nothing: the whole run happens in one
KCM transaction that is rolled back on any failure, so storage never holds part of a
failed bundle — while the answer (status, InfoMessage, WarningInfo) stays FCC's.
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
from provkit.device.kcm import Kcm
from provkit.device.storage import StorageBackend, open_storage
from provkit.device.trust_ca import trust_ca_id_set
from provkit.device.verify import VerifyResult, get_bootstrap_mode, verify_device
from provkit.errors import BundleDecodeError, BundleEncodeError, DeviceError, StorageError
from provkit.wire import bundle as wb
from provkit.wire.response import BundleResponse, CsrResult, encode_response

_log = logging.getLogger(__name__)

FACTORY_DONE: Final = "factory_done"
ENTROPY: Final = "entropy"
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
    csr_requests: tuple[wb.CsrRequest, ...] = ()
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
    """

    def __init__(self, kcm: Kcm, *, clock: DeviceClock | None = None, secure_time: bool = True) -> None:
        self.kcm = kcm
        self.clock = clock if clock is not None else DeviceClock(kcm)
        self.secure_time = secure_time
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
        try:
            with self.kcm.transaction():
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
            pairs = wb.decode_envelope(data)
            entropy = _first(pairs, "Entropy")
            rot = _first(pairs, "ROT")
            entropy_group = None if entropy is None else wb.parse_group("Entropy", entropy)
            if isinstance(entropy_group, wb.EntropyGroup):
                self._set_once(ENTROPY, entropy_group.data, FccStatus.ENTROPY_ERROR)
            rot_group = None if rot is None else wb.parse_group("ROT", rot)
            if isinstance(rot_group, wb.RotGroup):
                self._set_once(ROT, rot_group.data, FccStatus.ROT_ERROR)
            if self.is_factory_disabled():
                raise DeviceError.of(FccStatus.FACTORY_DISABLED_ERROR, respond=False)
            for key, value in pairs:
                if key in wb.LOOKED_UP_BY_KEY:
                    continue  # FCC skips them here: they were read by key above
                if key == wb.CSR_REQS_KEY:
                    run.csr_group = value  # remembered only (the last one wins), as FCC does
                    continue
                self._group(wb.parse_group(key, value), run)
            self._session_finished = run.session.session_finished
            wb.check_session_rules(run.session, csr_requested=run.csr_group is not None)
            if run.csr_group is not None:
                run.csr_stage = True
                csr_group = wb.parse_group(wb.CSR_REQS_KEY, run.csr_group)
                assert isinstance(csr_group, wb.CsrReqsGroup)
                run.csr_requests = csr_group.items
        except BundleDecodeError as exc:
            raise DeviceError.of(exc.fcc_status, exc.item) from exc
        for request in run.csr_requests:
            run.csrs.append(_apply.process_csr(self.kcm, request))
        if self.secure_time and run.session.session_finished:
            self._trust_ca(run)
        if run.session.verifies:
            result = self.verify_device_configured()
            run.warnings = result.warnings  # verification clears what came before
            if not result.ok:
                raise DeviceError(result.message, fcc_status=result.status)
        if run.session.disables:
            self.kcm.rbp_set(FACTORY_DONE, (1).to_bytes(8, "little"))

    def _trust_ca(self, run: _Run) -> None:
        """``fcc_trust_ca_cert_id_set()`` when a session ends (§1.8 step 7).

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
            trust_ca_id_set(self.kcm)

    def _set_once(self, name: str, value: bytes, status: FccStatus) -> None:
        if self.kcm.rbp_get(name) is not None:
            raise DeviceError.of(status, name)
        self.kcm.rbp_set(name, value)

    def _group(self, group: wb.Group, run: _Run) -> None:
        kcm = self.kcm
        match group:
            case wb.KeysGroup(items=items):
                for key in items:
                    _apply.store_key(kcm, key)
            case wb.CertificatesGroup(items=items):
                for cert in items:
                    _apply.store_certificate(kcm, cert)
            case wb.CertificateChainsGroup(items=items):
                for chain in items:
                    _apply.store_chain(kcm, chain)
            case wb.ConfigParamsGroup(items=items):
                for param in items:
                    _apply.store_config(kcm, self.clock, param)
            case wb.FlagGroup(name=name, value=value):
                run.session = run.session.with_flag(name, value)
            case wb.SidGroup(sid=sid):
                run.session = run.session.with_sid(sid)
            case _:
                pass  # SchemeVersion, Entropy and ROT were handled before the loop, CsrReqs after it


def _first(pairs: tuple[tuple[str, object], ...], key: str) -> object | None:
    return next((value for k, value in pairs if k == key), None)


# ---------------------------------------------------------------- C-API mirrors


def fcc_init(
    storage: str | Path | StorageBackend = "provkit-device.sqlite",
    *,
    time_source: Callable[[], float] | None = None,
) -> FactoryConfiguratorClient:
    """Open (creating if needed) a device's storage and return its FCC (``fcc_init``).

    Args:
        storage: a SQLite path, ``":memory:"``, or an open backend.
        time_source: host clock override for the device clock.
    """
    backend = storage if isinstance(storage, StorageBackend) else open_storage(storage)
    kcm = Kcm(backend)
    clock = DeviceClock(kcm) if time_source is None else DeviceClock(kcm, time_source=time_source)
    return FactoryConfiguratorClient(kcm, clock=clock)


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
