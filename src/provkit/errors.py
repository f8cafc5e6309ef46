"""The provkit exception tree.

Every error provkit raises derives from :class:`ProvkitError` and carries a ``code``:
the documented number a factory engineer looks up (an FCC ``ReturnStatus``, an FCU error
code 100–390, a factory tool code 1000–1023, a transport status, or a provkit code for
the parts Arm never numbered). Leaves also derive from the built-in exception whose
meaning fits, so ``except ValueError`` keeps working for callers that do not know provkit.

Split by who is at fault: the *local* side built something illegal (``*EncodeError``,
``ConfigError``), or the *remote* side sent something malformed (``*DecodeError``,
``FrameError``, ``DeviceResponseError``)::

    ProvkitError
    ├── ParamError                 (+ValueError)   catalog lookups and parameter values
    ├── WireError
    │   ├── BundleEncodeError      (+ValueError)   factory side built an illegal bundle
    │   ├── BundleDecodeError      (+ValueError)   bytes are not an acceptable bundle; .fcc_status
    │   ├── ResponseDecodeError    (+ValueError)   device response is not a response bundle
    │   └── FrameError             (+ValueError)   transport frame malformed; .comm_status
    ├── CryptoError                (+ValueError)   key/certificate/CSR unusable
    ├── StorageError                               secure storage failure; .kcm_status
    │   ├── ItemNotFoundError      (+KeyError)
    │   ├── ItemExistsError
    │   ├── NotAStoreError                         a file that is not a provkit device store (11)
    │   └── SecretUnavailableError                 the device secret a store is sealed with is missing (14)
    ├── DeviceError                                device side refuses a bundle; .fcc_status, .respond
    ├── FactoryError                               FCU failures; .code is an FcuErrorCode
    │   ├── ConfigError            (+ValueError)   190, 200, 380
    │   ├── CaError                                210–222, 290
    │   │   └── HsmError                           400–409: the CA key's PKCS#11 token
    │   └── DeviceKeysError        (+ValueError)   102–104, 240, 245, 390
    ├── DeviceResponseError                        device answered, but not with success
    ├── LogFileError               (+OSError)      --log-file cannot be opened (1000)
    ├── TransportError             (+OSError)      .code is an FtErrorCode
    │   ├── TransportTimeout       (+TimeoutError)
    │   ├── RemoteBindRefused                      listening off loopback without --allow-remote
    │   ├── TransportClosed        (+ConnectionError)
    │   └── ConnectFailed          (+ConnectionError)
    ├── LinkSpecError              (+ValueError)   a link spec or HOST:PORT cannot be read (1000)
    ├── RegistryError                              registry database failures
    │   ├── RegistrySchemaError                    not a provkit registry, or a schema to upgrade first
    │   ├── DuplicateIdentityError                 endpoint or serial already provisioned
    │   └── AllocationError                        identity pattern / CSV exhausted or invalid
    │       └── PatternConflictError               a template without {prefix} repeats another prefix's values
    ├── BatchError                 (+ValueError)   batch input (CSV rows, directories)
    ├── Lwm2mError
    │   ├── SenmlError             (+ValueError)   SenML encode/decode or strict-mode rejection
    │   ├── EndpointConfigError    (+ValueError)   endpoint configuration invalid; .path
    │   ├── RegistrationError                      management server refused or unreachable
    │   ├── TargetRefused          (+ValueError)   resource the target client cannot take; .path
    │   ├── UnverifiedServer       (+ValueError)   certificate mode without a server certificate
    │   └── Lwm2mRefused           (+ValueError)   device acceptor refuses a blob; .accept_status
    ├── SmpError                                   SMP (mcumgr) file transfers, codes 7000-7299
    │   ├── SmpConnectFailed       (+ConnectionError) serial port / UDP socket cannot be opened
    │   ├── SmpTimeout             (+TimeoutError) no answer in time, retries included
    │   ├── SmpProtocolError       (+ValueError)   the answer is not the SMP message expected
    │   ├── SmpDeviceError                         the device answered a return code; .group .rc
    │   └── SmpProvisioningFailed                  endpoint.txt / result.txt say the device failed
    ├── DeveloperError                             developer flow (MBL CLI style), codes 6000-6005
    │   ├── StoreError                             user/team store unusable or entry missing
    │   ├── CloudApiError                          Device Management API failed; .http_status
    │   │   ├── ApiKeyRejected                     the API key is invalid (HTTP 401/403)
    │   │   └── CertificateExists                  developer certificate name taken (HTTP 409)
    │   └── CredentialsParseError  (+ValueError)   C credentials/resources file unusable
    ├── ServerError                                first connection: LwM2M server and devices, 8000-8099
    │   ├── TrustError             (+ValueError)   a certificate cannot be trusted or revoked as asked
    │   ├── ServerSetupError                       server home (CA, certificates, keys) missing or unusable
    │   ├── CredentialError        (+ValueError)   PSK credential unusable, sealed for another key, taken
    │   └── ConnectError                           a device's first connection failed; .failure classifies it
    └── DeviceManagementError                      the Device Management API refused a request, 8400-8499;
        │                                          .http_status, .error_type: its JSON error
        ├── ApiRequestInvalid      (+ValueError)   8400: 400 validation_error; .fields
        ├── ApiUnauthorized                        8401: no, malformed, unknown or revoked API key
        ├── ApiForbidden                           8403: the key's role may not do this
        ├── ApiNotFound            (+KeyError)     8404: no such record
        └── ApiConflict                            8409: a name or identity is taken
"""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar, Self

from provkit.codes import FccStatus, FcuErrorCode, FtcdCommStatus, FtErrorCode, KcmStatus


class CodeSpace(StrEnum):
    """Which numbering an error's ``code`` belongs to (docs/errors.md).

    Numbers of different spaces overlap (FCC status 20 and KCM status 20 are not the same
    failure), so a code is shown with its space: ``FCC-20``, ``KCM-20``.
    """

    FCC = "FCC"
    """Factory Configurator Client ``ReturnStatus`` (``fcc_status_e``): what a device answers."""
    KCM = "KCM"
    """Key and Configuration Manager status (``kcm_status_e``): device storage."""
    COMM = "COMM"
    """Factory tool communication status (``ftcd_comm_status_e``): the frame protocol."""
    FCU = "FCU"
    """Factory Configurator Utility error codes (100–409)."""
    FT = "FT"
    """Factory tool (``ft_demo``) error codes (1000–1023)."""
    PROVKIT = "PROVKIT"
    """provkit's own codes where Arm numbered nothing: registry and batches (4000–4199)."""
    LWM2M = "LWM2M"
    """LwM2M provisioning (5000–5099)."""
    DEVELOPER = "DEVELOPER"
    """The developer flow (6000–6099)."""
    SMP = "SMP"
    """SMP (mcumgr) transfers to Zephyr boards (7000–7299)."""
    SERVER = "SERVER"
    """provkit server: first connection (8000–8099)."""
    API = "API"
    """The Device Management API (8400–8499)."""


class ProvkitError(Exception):
    """Base of every provkit error.

    Attributes:
        code: the documented number for this failure, or ``None`` where none exists.
        message: the human-readable text (also ``str(error)``).
        hint: optional advice on what to fix, shown by the CLI.
    """

    default_code: ClassVar[int | None] = None
    space: ClassVar[CodeSpace] = CodeSpace.PROVKIT
    """The numbering :attr:`code` belongs to."""

    def __init__(self, message: str, *, code: int | None = None, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code: int | None = code if code is not None else self.default_code
        self.hint = hint

    def __str__(self) -> str:
        return self.message

    @property
    def qualified_code(self) -> str | None:
        """:attr:`code` with its space, e.g. ``FCU-210`` (``None`` when there is no code)."""
        return None if self.code is None else f"{self.space}-{self.code}"


class ParamError(ProvkitError, ValueError):
    """A parameter name is unknown to the catalog or its value breaks the catalog's rules."""


class WireError(ProvkitError):
    """A wire format (bundle, response, frame) could not be built or read."""


class BundleEncodeError(WireError, ValueError):
    """The factory side tried to build a bundle the device would not accept."""


class BundleDecodeError(WireError, ValueError):
    """Bytes received by the device are not an acceptable bundle.

    Attributes:
        fcc_status: the ReturnStatus FCC answers for this defect.
        item: the item name to append to the InfoMessage prefix, if any.
    """

    space = CodeSpace.FCC

    def __init__(
        self, message: str, *, fcc_status: FccStatus = FccStatus.BUNDLE_ERROR, item: str = ""
    ) -> None:
        super().__init__(message, code=int(fcc_status))
        self.fcc_status = fcc_status
        self.item = item


class ResponseDecodeError(WireError, ValueError):
    """A device response is not a response bundle (FCU error 180 when a field is missing)."""

    space = CodeSpace.FCU

    default_code = int(FcuErrorCode.RESPONSE_FIELD_MISSING)


class FrameError(WireError, ValueError):
    """A transport frame is malformed; ``comm_status`` is what the device answers."""

    space = CodeSpace.COMM

    def __init__(self, message: str, *, comm_status: FtcdCommStatus) -> None:
        super().__init__(message, code=int(comm_status))
        self.comm_status = comm_status


class CryptoError(ProvkitError, ValueError):
    """A key, certificate, CSR or chain cannot be parsed or does not verify."""


class StorageError(ProvkitError):
    """The device's secure storage refused or failed an operation.

    Attributes:
        kcm_status: the KCM status naming the failure; FCC converts it for the response.
        item: the item name concerned.
    """

    space = CodeSpace.KCM

    def __init__(
        self, message: str, *, kcm_status: KcmStatus = KcmStatus.STORAGE_ERROR, item: str = ""
    ) -> None:
        super().__init__(message, code=int(kcm_status))
        self.kcm_status = kcm_status
        self.item = item


class ItemNotFoundError(StorageError, KeyError):
    """No item of that type and name is stored."""

    def __init__(self, message: str, *, item: str = "") -> None:
        super().__init__(message, kcm_status=KcmStatus.ITEM_NOT_FOUND, item=item)

    def __str__(self) -> str:
        return self.message


class ItemExistsError(StorageError):
    """An item of that type and name is already stored."""

    def __init__(self, message: str, *, item: str = "", kcm_status: KcmStatus = KcmStatus.FILE_EXIST) -> None:
        super().__init__(message, kcm_status=kcm_status, item=item)


class NotAStoreError(StorageError):
    """A file given as device storage is not a provkit device store (code 11, ``STORAGE_ERROR``).

    Raised before anything is written to it: a foreign SQLite database is never given a
    table, a journal mode or a secret file.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message, kcm_status=KcmStatus.STORAGE_ERROR)
        self.hint = "give the path of a device store (made by a device agent's `storage`)"


class SecretUnavailableError(StorageError):
    """The device secret a store's sealed items need is missing (code 14, ``FILE_CORRUPTED``).

    Nothing is created in its place: a new random secret could never open the items.
    """

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message, kcm_status=KcmStatus.FILE_CORRUPTED)
        self.hint = hint


class DeviceError(ProvkitError):
    """The device side (FCC) refuses or fails a bundle: the status and InfoMessage it answers.

    Raised inside the device side and turned into the response by the bundle handler,
    which never lets it escape (see :meth:`provkit.device.fcc.FactoryConfiguratorClient.bundle_handler`).

    Attributes:
        fcc_status: the ``ReturnStatus`` FCC answers.
        item: the item name appended to the status's InfoMessage prefix (may be empty).
        respond: ``False`` when FCC sends no response at all (the factory flow is disabled).

    ``message`` is the whole InfoMessage (prefix and item), as FCC writes it.
    """

    space = CodeSpace.FCC

    def __init__(self, message: str, *, fcc_status: FccStatus, item: str = "", respond: bool = True) -> None:
        super().__init__(message, code=int(fcc_status))
        self.fcc_status = fcc_status
        self.item = item
        self.respond = respond

    @classmethod
    def of(cls, status: FccStatus, item: str = "", *, respond: bool = True) -> Self:
        """The failure with FCC's InfoMessage prefix for ``status`` followed by ``item``."""
        return cls(status.prefix + item, fcc_status=status, item=item, respond=respond)

    @classmethod
    def from_kcm(cls, error: StorageError, item: str | None = None) -> Self:
        """Convert a KCM failure as ``fcc_bundle_store_kcm_error_info`` does.

        The status is the KCM status's FCC counterpart, the InfoMessage the KCM status's
        own prefix with ``item`` (default: the item the storage error names).
        """
        status = error.kcm_status
        named = error.item if item is None else item
        return cls(status.prefix + named, fcc_status=status.fcc_status, item=named)


class FactoryError(ProvkitError):
    """A factory configurator (FCU) operation failed; ``code`` is an :class:`FcuErrorCode`."""

    space = CodeSpace.FCU

    default_code = int(FcuErrorCode.GENERAL)

    def __init__(
        self, message: str, *, code: FcuErrorCode | int | None = None, hint: str | None = None
    ) -> None:
        super().__init__(message, code=None if code is None else int(code), hint=hint)

    @classmethod
    def from_code(cls, code: FcuErrorCode, *args: object, hint: str | None = None) -> Self:
        """Build the error with the documented message for ``code``."""
        return cls(code.format(*args), code=code, hint=hint)


class ConfigError(FactoryError, ValueError):
    """``fcu.yml`` cannot be loaded (190), is not YAML (200) or has an invalid field (380)."""

    default_code = int(FcuErrorCode.VALIDATION_ERROR)


class CaError(FactoryError):
    """The factory CA files are missing, corrupt, mismatched (210–222) or would be overwritten (290)."""


class HsmError(CaError):
    """The factory CA key's PKCS#11 module, token, PIN or key object failed or refused (400–409)."""


class DeviceKeysError(FactoryError, ValueError):
    """Externally supplied device keys or certificates are unusable (102–104, 240, 245, 390)."""


class DeviceResponseError(ProvkitError):
    """The device answered, but with a failure status; ``code`` is the device's status."""

    space = CodeSpace.FCC


class LogFileError(ProvkitError, OSError):
    """The log file asked for (``--log-file``) cannot be created or opened for appending.

    Code 1000, the factory tool's general error: nothing has run yet.
    """

    space = CodeSpace.FT

    default_code = int(FtErrorCode.GENERAL)

    def __init__(self, path: object, cause: Exception) -> None:
        reason = getattr(cause, "strerror", None) or str(cause)
        super().__init__(
            FtErrorCode.GENERAL.format(f"cannot open log file {path}: {reason}"),
            hint="give `log_file` a path in a directory you can write to",
        )

    def __str__(self) -> str:
        return self.message


class TransportError(ProvkitError, OSError):
    """Bytes could not be moved to or from a device; ``code`` is an :class:`FtErrorCode`."""

    space = CodeSpace.FT

    default_code = int(FtErrorCode.DEVICE_COMMUNICATION)

    def __init__(
        self, message: str, *, code: FtErrorCode | int | None = None, hint: str | None = None
    ) -> None:
        super().__init__(message, code=None if code is None else int(code), hint=hint)

    def __str__(self) -> str:
        return self.message


class TransportTimeout(TransportError, TimeoutError):
    """The peer did not answer in time."""

    default_code = int(FtErrorCode.TOKEN_TIMEOUT)


class RemoteBindRefused(TransportError):
    """A device agent was asked to listen on a non-loopback address without ``allow_remote`` (1000).

    Its frames are not authenticated (FCC's signature is a plain SHA-256): whoever reaches
    the port can provision the device or disable its factory flow for good.
    """

    def __init__(self, host: str) -> None:
        super().__init__(
            FtErrorCode.GENERAL.format(
                f"refusing to listen on {host or 'every interface'}: the agent's frames are not "
                "authenticated, so anyone who reaches the port could provision this device or "
                "disable its factory flow"
            ),
            code=FtErrorCode.GENERAL,
            hint="listen on 127.0.0.1 (tunnel the station in, e.g. ssh -L), or allow `allow_remote` "
            "on an isolated factory network",
        )
        self.host = host


class TransportClosed(TransportError, ConnectionError):
    """The peer closed the connection."""


class ConnectFailed(TransportError, ConnectionError):
    """No connection could be opened to the device."""

    default_code = int(FtErrorCode.TCP_CONNECT_FAILED)


class LinkSpecError(ProvkitError, ValueError):
    """A link spec (``tcp:HOST:PORT``, ``serial:PORT[@BAUD]``, ``file:PATH``) cannot be read.

    Its code is the factory tool's general error (1000): nothing was sent.
    """

    space = CodeSpace.FT

    default_code = int(FtErrorCode.GENERAL)


class RegistryError(ProvkitError):
    """The device registry database failed or refused an operation."""

    default_code = 4000


class RegistrySchemaError(RegistryError):
    """The database is not a provkit registry this provkit may use as it is (code 4004).

    Not a registry at all (other tables, or none for an inspection), an older schema
    that ``provkit registry upgrade`` must bring up to date first, or a newer one.
    """

    default_code = 4004


class DuplicateIdentityError(RegistryError):
    """The endpoint name or serial number is already recorded as provisioned."""

    default_code = 4001


class AllocationError(RegistryError):
    """No identity could be allocated (pattern exhausted, CSV used up or invalid)."""

    default_code = 4002


class PatternConflictError(AllocationError):
    """An identity template without ``{prefix}`` would repeat values drawn under another prefix.

    Raised before anything is allocated, so a batch stops at once instead of failing
    every row with 4002.
    """

    default_code = 4003


class BatchError(ProvkitError, ValueError):
    """Batch input is unusable (bad CSV row, duplicate identity in the input, missing bundle)."""

    default_code = 4100


class Lwm2mError(ProvkitError):
    """An LwM2M provisioning operation failed."""

    space = CodeSpace.LWM2M

    default_code = 5000


class SenmlError(Lwm2mError, ValueError):
    """SenML data cannot be encoded, decoded, or is rejected by the device's rules."""

    default_code = 5001


class EndpointConfigError(Lwm2mError, ValueError):
    """An LwM2M endpoint configuration is invalid; ``path`` names the offending entry."""

    default_code = 5002

    def __init__(self, message: str, *, path: str = "", hint: str | None = None) -> None:
        super().__init__(f"{path}: {message}" if path else message, hint=hint)
        self.path = path


class RegistrationError(Lwm2mError):
    """The LwM2M management server refused the registration or could not be reached."""

    default_code = 5003


class TargetRefused(Lwm2mError, ValueError):
    """A resource the target device's LwM2M client does not let a factory bootstrap write.

    Attributes:
        path: the LwM2M path of the resource.
        target: the target profile's name (``anjay``, ``generic``).
    """

    default_code = 5006

    def __init__(self, message: str, *, path: str, target: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.target = target


class UnverifiedServer(Lwm2mError, ValueError):
    """A certificate-mode Security instance has no server certificate to check the server with.

    Attributes:
        path: the Security instance (``/0/<iid>``).
    """

    default_code = 5007

    def __init__(self, message: str, *, path: str) -> None:
        super().__init__(
            f"{path}: {message}",
            hint="give the server's certificate, or allow an unverified server explicitly",
        )
        self.path = path


class Lwm2mRefused(Lwm2mError, ValueError):
    """The device's LwM2M acceptor refuses a provisioning blob; nothing on the device changed.

    Attributes:
        accept_status: the acceptor's result code (a :class:`provkit.lwm2m.response.AcceptStatus`
            value); ``code`` is 5010 plus it, as the factory side reports the refusal.
    """

    default_code = 5010

    def __init__(self, message: str, *, accept_status: int) -> None:
        super().__init__(message, code=5010 + accept_status)
        self.accept_status = accept_status


class SmpError(ProvkitError):
    """An SMP (mcumgr) exchange with a device failed (codes 7000-7299, see ``docs/transports.md``)."""

    space = CodeSpace.SMP

    default_code = 7000


class SmpConnectFailed(SmpError, ConnectionError):
    """The serial port or the UDP socket to the device cannot be opened."""

    default_code = 7001


class SmpTimeout(SmpError, TimeoutError):
    """The device did not answer a request in time, retries included."""

    default_code = 7002


class SmpProtocolError(SmpError, ValueError):
    """The device's answer is not the SMP message the request calls for, or its offsets are impossible."""

    default_code = 7003


class SmpDeviceError(SmpError):
    """The device answered a request with a return code.

    ``code`` is 7100 + rc for the file-system group's ``FS_MGMT_ERR`` codes and 7200 + rc for
    the generic ``MGMT_ERR`` codes (:func:`provkit.wire.smp.provkit_code`).

    Attributes:
        group: the SMP group that answered (8: file management).
        rc: the return code.
        length: the file length the device sent with the error (``FILE_OFFSET_NOT_VALID``).
    """

    def __init__(
        self,
        message: str,
        *,
        group: int,
        rc: int,
        code: int,
        length: int | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, code=code, hint=hint)
        self.group = group
        self.rc = rc
        self.length = length


class SmpProvisioningFailed(SmpError):
    """The Zephyr device's provisioning files say it failed.

    No usable ``endpoint.txt`` (7004), or a ``result.txt`` other than ``0`` (7005, ``.result``).
    """

    default_code = 7005

    def __init__(
        self, message: str, *, code: int | None = None, result: int | None = None, hint: str | None = None
    ) -> None:
        super().__init__(message, code=code, hint=hint)
        self.result = result


class DeveloperError(ProvkitError):
    """A developer-flow operation (stores, Device Management API, credentials files) failed."""

    space = CodeSpace.DEVELOPER

    default_code = 6000


class StoreError(DeveloperError):
    """A user or team store cannot be read or written, or has no such entry."""

    default_code = 6001


class CloudApiError(DeveloperError):
    """The Device Management API refused a request or could not be reached.

    Attributes:
        http_status: the HTTP status the service answered, ``None`` when unreachable.
    """

    default_code = 6002

    def __init__(self, message: str, *, http_status: int | None = None, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.http_status = http_status


class ApiKeyRejected(CloudApiError):
    """The service answered 401 or 403: the API key is invalid, revoked or lacks rights."""

    default_code = 6004


class CertificateExists(CloudApiError):
    """The service answered 409: a developer certificate of that name already exists."""

    default_code = 6005


class CredentialsParseError(DeveloperError, ValueError):
    """A ``mbed_cloud_dev_credentials.c`` or ``update_default_resources.c`` text is unusable.

    Attributes:
        line: the 1-based line of the defect, 0 when it concerns the whole file.
    """

    default_code = 6003

    def __init__(self, message: str, *, line: int = 0, hint: str | None = None) -> None:
        super().__init__(f"line {line}: {message}" if line else message, hint=hint)
        self.line = line


class ServerError(ProvkitError):
    """The first-connection server, or a device connecting to it, failed (codes 8000-8099)."""

    space = CodeSpace.SERVER

    default_code = 8000


class TrustError(ServerError, ValueError):
    """A certificate cannot be added to the trust store or revoked as asked."""

    default_code = 8001


class ServerSetupError(ServerError):
    """The server home (server CA, server certificate, keys) is missing or unusable."""

    default_code = 8002


class CredentialError(ServerError, ValueError):
    """A PSK credential is unusable, taken by another endpoint, or sealed for another server key."""

    default_code = 8003


class ConnectError(ServerError):
    """A device's first connection (bootstrap or registration) failed.

    Attributes:
        failure: the classification (``"tls-alert"``, ``"ca-untrusted"``, ``"cn-mismatch"``,
            ``"revoked"``, ``"timeout"``, ``"refused"``, ``"unreachable"``, ``"device-config"``);
            see :class:`provkit.server.outcome.Failure`.
        service: which server the device was talking to (``"bootstrap"`` or ``"lwm2m"``), if known.
    """

    default_code = 8010

    def __init__(
        self,
        message: str,
        *,
        failure: str,
        code: int | None = None,
        hint: str | None = None,
        service: str | None = None,
    ) -> None:
        super().__init__(message, code=code, hint=hint)
        self.failure = failure
        self.service = service


class DeviceManagementError(ProvkitError):
    """The Device Management API (``provkit server``) refused a request (codes 8400-8499).

    The codes follow the HTTP status: 84xx for a request refused with 4xx.

    The API answers it as Device Management's JSON error: ``{"object": "error", "code":
    http_status, "type": error_type, "message", "fields", "request_id"}``.

    Attributes:
        http_status: the HTTP status of the answer.
        error_type: the ``type`` of the JSON error.
        fields: ``(field name, message)`` pairs for a request that failed validation.
    """

    space = CodeSpace.API

    default_code = 8400
    http_status: ClassVar[int] = 400
    error_type: ClassVar[str] = "bad_request"

    def __init__(
        self,
        message: str,
        *,
        code: int | None = None,
        hint: str | None = None,
        fields: tuple[tuple[str, str], ...] = (),
    ) -> None:
        super().__init__(message, code=code, hint=hint)
        self.fields = fields


class ApiRequestInvalid(DeviceManagementError, ValueError):
    """A parameter or body field is missing or invalid (HTTP 400 ``validation_error``)."""

    default_code = 8400
    error_type = "validation_error"


class ApiUnauthorized(DeviceManagementError):
    """No API key, or one that is malformed, unknown or revoked (HTTP 401)."""

    default_code = 8401
    http_status = 401
    error_type = "unauthorized"


class ApiForbidden(DeviceManagementError):
    """The API key's role does not allow the request (HTTP 403)."""

    default_code = 8403
    http_status = 403
    error_type = "forbidden"


class ApiNotFound(DeviceManagementError, KeyError):
    """No record with that id (HTTP 404)."""

    default_code = 8404
    http_status = 404
    error_type = "not_found"

    def __str__(self) -> str:
        return self.message


class ApiConflict(DeviceManagementError):
    """A name or identity is already taken (HTTP 409 ``duplicate``)."""

    default_code = 8409
    http_status = 409
    error_type = "duplicate"
