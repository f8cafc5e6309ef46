"""Result objects of the FCU API, named as in Arm's FCU (``fcu.FactoryToolApi``).

All are frozen dataclasses that provkit never changes once built, so one object can be
handed between threads of a factory line. Their lists (errors, warnings) are lists, as in
Arm's FCU API: do not change them either.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from provkit.errors import ProvkitError


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    """An error: the documented ``code`` and its ``message`` (plus provkit's ``hint``, if any)."""

    code: int
    message: str
    hint: str | None = None

    @classmethod
    def from_error(cls, error: ProvkitError) -> ErrorInfo:
        """Describe a provkit error (its code, else 100)."""
        return cls(error.code if error.code is not None else 100, error.message, error.hint)


@dataclass(frozen=True, slots=True)
class WarningInfo:
    """A warning with its ``code`` and ``message``.

    Tool warnings carry the FCU code of the check; device warnings carry the device's
    ReturnStatus and the WarningInfo line without its newline.
    """

    code: int
    message: str


@dataclass(frozen=True, slots=True)
class SetupStatus:
    """Outcome of :meth:`FactoryToolApi.setup_factory_configurator_utility` / ``get_setup_status``.

    Attributes:
        status: 0 when the factory CA is ready, else the FCU code of the first error.
        errors: what is wrong.
        warnings: notes (e.g. an intermediate-CA CSR waiting to be signed).
        ca_certificate: path of ``fcu.crt`` when it exists.
        csr: path of ``fcu.csr`` when setup wrote one (intermediate mode).
    """

    status: int
    errors: list[ErrorInfo] = field(default_factory=list)
    warnings: list[WarningInfo] = field(default_factory=list)
    ca_certificate: str | None = None
    csr: str | None = None

    @property
    def ok(self) -> bool:
        """Whether the CA is usable."""
        return self.status == 0

    @classmethod
    def failed(cls, error: ProvkitError) -> SetupStatus:
        """The status of a setup step that failed with ``error`` (its code, else 100)."""
        info = ErrorInfo.from_error(error)
        return cls(status=info.code, errors=[info])


@dataclass(frozen=True, slots=True)
class CsrPending:
    """State of a ``by_device`` session between the CSR message and the certificate message.

    Attributes:
        session_id: the SID sent with the CSR request; the device echoes it.
        key_name: the device key name (``PrKN``) whose CSR is awaited.
        cert_name: the certificate chain name the signed certificate is stored under.
        disable: whether the second message disables the factory flow (``factory_fcc_disable``).
    """

    session_id: str
    key_name: str
    cert_name: str
    disable: bool = False


@dataclass(frozen=True, slots=True)
class DeviceCertificateInfo:
    """The device certificate a bundle carries, described once, when the bundle is built.

    Attributes:
        sha256: its SHA-256 fingerprint, lower-case hex without separators.
        serial: its serial number, lower-case hex.
        enrollment_id: its Device Management enrollment id (``A-`` and the fingerprint as
            colon-separated upper-case hex), whether or not the device claims first.
        ca_key: which key signed it, as the registry records it (a token key's URI or a key
            file's fingerprint); ``None`` for a certificate supplied from outside.
        der: the certificate itself (DER), which a registry keeps for a device's page.
    """

    sha256: str
    serial: str
    enrollment_id: str
    ca_key: str | None = None
    der: bytes = b""


@dataclass(frozen=True, slots=True)
class DeviceConfigurationRequest:
    """What :meth:`FactoryToolApi.prepare_device_configuration` returns.

    Attributes:
        config_data: the CBOR bundle to send to the device.
        warnings: validation notes.
        endpoint_name: the device's endpoint name.
        serial_number: the device's serial number.
        enrollment_id: the first-to-claim enrollment id (``None`` unless first-to-claim).
        pending_csr: in ``by_device`` mode, the session state needed to build the second
            message from the device's CSR response (see
            :meth:`FactoryToolApi.complete_device_configuration`); ``None`` otherwise.
        device_certificate: the device certificate the bundle carries (``None`` for a
            ``by_device`` first message, which carries none yet), so later steps (a line
            recording it) need not read the bundle back.
    """

    config_data: bytes
    warnings: list[WarningInfo] = field(default_factory=list)
    endpoint_name: str = ""
    serial_number: str = ""
    enrollment_id: str | None = None
    pending_csr: CsrPending | None = None
    device_certificate: DeviceCertificateInfo | None = None

    @property
    def needs_csr_response(self) -> bool:
        """Whether the device's answer must go to ``complete_device_configuration`` next."""
        return self.pending_csr is not None

    @property
    def session_id(self) -> str | None:
        """The ``by_device`` session id (``SID``) the first message carries, else ``None``."""
        return None if self.pending_csr is None else self.pending_csr.session_id


@dataclass(frozen=True, slots=True)
class DeviceResponseStatus:
    """What :meth:`FactoryToolApi.verify_device_response` returns.

    Attributes:
        status: the device's ReturnStatus (0 = success).
        message: the device's InfoMessage, without the trailing newline.
        errors: one :class:`ErrorInfo` when ``status`` is not 0.
        warnings: the device's WarningInfo lines.
    """

    status: int
    message: str
    errors: list[ErrorInfo] = field(default_factory=list)
    warnings: list[WarningInfo] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether the device reports success."""
        return self.status == 0
