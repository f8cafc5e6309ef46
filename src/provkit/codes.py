"""Status and error codes of every party in the provisioning flow, with their texts.

Pure data, no I/O. The numbers and strings match Arm's public sources exactly
(see ``docs/wire-format.md``; ``fcc_status.h``, ``kcm_status.h`` and ``ftcd_comm_base.h`` in
PelionIoT/mbed-cloud-client):

* :class:`FccStatus` — ``fcc_status_e``, the ``ReturnStatus`` of a device response,
  with the InfoMessage prefix FCC writes before the item name.
* :class:`KcmStatus` — the KCM store failures FCC reports, with their prefix and the
  :class:`FccStatus` they are converted to.
* :class:`FccWarning` — the WarningInfo prefixes.
* :class:`FtcdCommStatus` — the transport status word of a response frame.
* :class:`FcuErrorCode` — the factory configurator utility's error codes (100–390).
* :class:`FtErrorCode` — the factory tool demo's error codes (1000–1023).
"""

from __future__ import annotations

from enum import IntEnum, StrEnum, unique
from typing import Final

SUCCESS_INFO_MESSAGE: Final = "The Factory process succeeded\n"
"""InfoMessage of a successful bundle, trailing newline included."""

GENERAL_ERROR_PREFIX: Final = "General error:"
"""InfoMessage when a failure stored no more specific text."""


@unique
class FccStatus(IntEnum):
    """``fcc_status_e``: the ``ReturnStatus`` a device answers (append-only since R1.3.0)."""

    SUCCESS = 0
    ERROR = 1
    MEMORY_OUT = 2
    INVALID_PARAMETER = 3
    STORE_ERROR = 4
    INTERNAL_ITEM_ALREADY_EXIST = 5
    CA_ERROR = 6
    ROT_ERROR = 7
    ENTROPY_ERROR = 8
    FACTORY_DISABLED_ERROR = 9
    INVALID_CERTIFICATE = 10
    INVALID_CERT_ATTRIBUTE = 11
    INVALID_CA_CERT_SIGNATURE = 12
    EXPIRED_CERTIFICATE = 13
    INVALID_LWM2M_CN_ATTR = 14
    KCM_ERROR = 15
    KCM_STORAGE_ERROR = 16
    KCM_FILE_EXIST_ERROR = 17
    KCM_CRYPTO_ERROR = 18
    NOT_INITIALIZED = 19
    BUNDLE_ERROR = 20
    BUNDLE_RESPONSE_ERROR = 21
    BUNDLE_UNSUPPORTED_GROUP = 22
    BUNDLE_INVALID_GROUP = 23
    BUNDLE_INVALID_SCHEME = 24
    ITEM_NOT_EXIST = 25
    EMPTY_ITEM = 26
    WRONG_ITEM_DATA_SIZE = 27
    URI_WRONG_FORMAT = 28
    FIRST_TO_CLAIM_NOT_ALLOWED = 29
    BOOTSTRAP_MODE_ERROR = 30
    OUTPUT_INFO_ERROR = 31
    WARNING_CREATE_ERROR = 32
    UTC_OFFSET_WRONG_FORMAT = 33
    CERTIFICATE_PUBLIC_KEY_CORRELATION_ERROR = 34
    BUNDLE_INVALID_KEEP_ALIVE_SESSION_STATUS = 35
    TOO_MANY_CSR_REQUESTS = 36
    NOT_SUPPORTED = 37

    @property
    def c_name(self) -> str:
        """The C enumerator name, e.g. ``FCC_STATUS_ITEM_NOT_EXIST``."""
        return f"FCC_STATUS_{self.name}"

    @property
    def prefix(self) -> str:
        """The InfoMessage prefix FCC writes for this status (item name follows)."""
        return _FCC_PREFIXES.get(self, GENERAL_ERROR_PREFIX)

    @property
    def description(self) -> str:
        """A one-line explanation for people, from the FCC documentation."""
        return _FCC_DESCRIPTIONS.get(self, self.name.replace("_", " ").capitalize())


_FCC_PREFIXES: Final[dict[FccStatus, str]] = {
    FccStatus.SUCCESS: SUCCESS_INFO_MESSAGE,
    FccStatus.STORE_ERROR: "Internal storage error:",
    FccStatus.CA_ERROR: "CA error:",
    FccStatus.ROT_ERROR: "Root of trust error:",
    FccStatus.ENTROPY_ERROR: "Entropy error:",
    FccStatus.FACTORY_DISABLED_ERROR: "Factory disabled error:",
    FccStatus.INVALID_CERTIFICATE: "Certificate invalid:",
    FccStatus.INVALID_CA_CERT_SIGNATURE: "Validation of CA certificate failed:",
    FccStatus.EXPIRED_CERTIFICATE: "Certificate expired:",
    FccStatus.INVALID_LWM2M_CN_ATTR: "Certificate CN attribute invalid:",
    FccStatus.KCM_CRYPTO_ERROR: "KCM crypto error:",
    FccStatus.ITEM_NOT_EXIST: "Item does not exist:",
    FccStatus.EMPTY_ITEM: "Item empty:",
    FccStatus.WRONG_ITEM_DATA_SIZE: "Item size is wrong:",
    FccStatus.URI_WRONG_FORMAT: "URI format incorrect:",
    FccStatus.FIRST_TO_CLAIM_NOT_ALLOWED: "first to claim not allowed:",
    FccStatus.BOOTSTRAP_MODE_ERROR: "Bootstrap mode value incorrect:",
    FccStatus.UTC_OFFSET_WRONG_FORMAT: "UTC offset incorrect:",
    FccStatus.CERTIFICATE_PUBLIC_KEY_CORRELATION_ERROR: "Certificate public key validation failed:",
    # fcc_output_info_handler.c's string literal spells the macro's name, not its value.
    FccStatus.TOO_MANY_CSR_REQUESTS: (
        "Too many CSR requests. Maximum CSR requests supported is CSR_MAX_NUMBER_OF_CSRS"
    ),
}

_FCC_DESCRIPTIONS: Final[dict[FccStatus, str]] = {
    FccStatus.SUCCESS: "Operation completed successfully.",
    FccStatus.ERROR: "Operation ended with an unspecified error.",
    FccStatus.MEMORY_OUT: "An out-of-memory condition occurred.",
    FccStatus.INVALID_PARAMETER: "A parameter provided to the function was invalid.",
    FccStatus.STORE_ERROR: "Storage internal error.",
    FccStatus.INTERNAL_ITEM_ALREADY_EXIST: "The item already exists in storage.",
    FccStatus.CA_ERROR: "CA error.",
    FccStatus.ROT_ERROR: "Root of trust error.",
    FccStatus.ENTROPY_ERROR: "Entropy wasn't initialized correctly.",
    FccStatus.FACTORY_DISABLED_ERROR: "The factory flow is disabled on this device.",
    FccStatus.INVALID_CERTIFICATE: "Invalid certificate found.",
    FccStatus.INVALID_CERT_ATTRIBUTE: "Operation failed to get an attribute.",
    FccStatus.INVALID_CA_CERT_SIGNATURE: "Invalid CA signature.",
    FccStatus.EXPIRED_CERTIFICATE: "Certificate is expired.",
    FccStatus.INVALID_LWM2M_CN_ATTR: "Invalid CN field of certificate.",
    FccStatus.KCM_ERROR: "KCM basic functionality failed.",
    FccStatus.KCM_STORAGE_ERROR: "KCM failed to read, write or get size of item from/to storage.",
    FccStatus.KCM_FILE_EXIST_ERROR: "KCM tried to create existing storage item.",
    FccStatus.KCM_CRYPTO_ERROR: ("KCM returned error upon cryptographic check of an certificate or key."),
    FccStatus.NOT_INITIALIZED: "FCC is not initialized.",
    FccStatus.BUNDLE_ERROR: "Protocol layer general error.",
    FccStatus.BUNDLE_RESPONSE_ERROR: "Protocol layer failed to create response buffer.",
    FccStatus.BUNDLE_UNSUPPORTED_GROUP: ("Protocol layer detected unsupported group was found in a message."),
    FccStatus.BUNDLE_INVALID_GROUP: "Protocol layer detected invalid group in a message.",
    FccStatus.BUNDLE_INVALID_SCHEME: "The scheme version of a message in the protocol layer is wrong.",
    FccStatus.ITEM_NOT_EXIST: "Current item wasn't found in the storage.",
    FccStatus.EMPTY_ITEM: "Current item's size is 0.",
    FccStatus.WRONG_ITEM_DATA_SIZE: "Current item's size is different then expected.",
    FccStatus.URI_WRONG_FORMAT: "Current URI is different than expected.",
    FccStatus.FIRST_TO_CLAIM_NOT_ALLOWED: "First to claim is not allowed in this configuration.",
    FccStatus.BOOTSTRAP_MODE_ERROR: "Wrong value of bootstrapUse mode.",
    FccStatus.OUTPUT_INFO_ERROR: "The process failed in output info creation.",
    FccStatus.WARNING_CREATE_ERROR: "The process failed in output info creation.",
    FccStatus.UTC_OFFSET_WRONG_FORMAT: "Current UTC is wrong.",
    FccStatus.CERTIFICATE_PUBLIC_KEY_CORRELATION_ERROR: (
        "The certificate's public key does not correspond to the private key."
    ),
    FccStatus.BUNDLE_INVALID_KEEP_ALIVE_SESSION_STATUS: "Invalid keep-alive session status.",
    FccStatus.TOO_MANY_CSR_REQUESTS: "Too many CSR requests.",
    FccStatus.NOT_SUPPORTED: "Not supported.",
}


@unique
class KcmStatus(IntEnum):
    """``kcm_status_e`` (internal to the device, never on the wire; numbering of 4.13.4)."""

    SUCCESS = 0
    ERROR = 1
    INVALID_PARAMETER = 2
    INSUFFICIENT_BUFFER = 3
    OUT_OF_MEMORY = 4
    ITEM_NOT_FOUND = 5
    META_DATA_NOT_FOUND = 6
    META_DATA_SIZE_ERROR = 7
    FILE_EXIST = 8
    KEY_EXIST = 9
    NOT_PERMITTED = 10
    STORAGE_ERROR = 11
    ITEM_IS_EMPTY = 12
    INVALID_FILE_VERSION = 13
    FILE_CORRUPTED = 14
    FILE_NAME_CORRUPTED = 15
    INVALID_FILE_ACCESS_MODE = 16
    UNKNOWN_STORAGE_ERROR = 17
    NOT_INITIALIZED = 18
    CLOSE_INCOMPLETE_CHAIN = 19
    CORRUPTED_CHAIN_FILE = 20
    INVALID_NUM_OF_CERT_IN_CHAIN = 21
    CERTIFICATE_CHAIN_VERIFICATION_FAILED = 22
    FILE_NAME_TOO_LONG = 23
    INVALID_EXPECTED_LOCATION = 24
    CRYPTO_UNSUPPORTED_HASH_MODE = 25
    CRYPTO_PARSING_DER_PRIVATE_KEY = 26
    CRYPTO_PARSING_DER_PUBLIC_KEY = 27
    CRYPTO_PK_KEY_INVALID_FORMAT = 28
    CRYPTO_INVALID_PK_PUBKEY = 29
    CRYPTO_ECP_INVALID_KEY = 30
    CRYPTO_PK_KEY_INVALID_VERSION = 31
    CRYPTO_PK_PASSWORD_REQUIRED = 32
    CRYPTO_PRIVATE_KEY_VERIFICATION_FAILED = 33
    CRYPTO_PUBLIC_KEY_VERIFICATION_FAILED = 34
    CRYPTO_PK_UNKNOWN_PK_ALG = 35
    CRYPTO_UNSUPPORTED_CURVE = 36
    CRYPTO_PARSING_DER_CERT = 37
    CRYPTO_CERT_EXPIRED = 38
    CRYPTO_CERT_FUTURE = 39
    CRYPTO_CERT_MD_ALG = 40
    CRYPTO_CERT_PUB_KEY_TYPE = 41
    CRYPTO_CERT_PUB_KEY = 42
    CRYPTO_CERT_NOT_TRUSTED = 43
    CRYPTO_INVALID_X509_ATTR = 44
    CRYPTO_VERIFY_SIGNATURE_FAILED = 45
    CRYPTO_INVALID_MD_TYPE = 46
    CRYPTO_FAILED_TO_WRITE_SIGNATURE = 47
    CRYPTO_FAILED_TO_WRITE_PRIVATE_KEY = 48
    CRYPTO_FAILED_TO_WRITE_PUBLIC_KEY = 49
    CRYPTO_FAILED_TO_WRITE_CSR = 50
    CRYPTO_INVALID_OID = 51
    CRYPTO_INVALID_NAME_FORMAT = 52
    CRYPTO_ENTROPY_MISSING = 53
    SELF_GENERATED_CERTIFICATE_VERIFICATION_ERROR = 54
    CRYPTO_SET_EXTENSION_FAILED = 55
    RBP_ERROR = 56
    FILE_NAME_INVALID = 57
    CRYPTO_INVALID_PK_PRIVKEY = 58

    @property
    def prefix(self) -> str:
        """InfoMessage prefix FCC writes for this KCM failure (``fcc_get_kcm_error_string``)."""
        return _KCM_PREFIXES.get(self, GENERAL_ERROR_PREFIX)

    @property
    def fcc_status(self) -> FccStatus:
        """The ReturnStatus FCC converts this KCM failure to (``fcc_convert_kcm_to_fcc_status``)."""
        return _KCM_TO_FCC.get(self, FccStatus.KCM_CRYPTO_ERROR)


_KCM_PREFIXES: Final[dict[KcmStatus, str]] = {
    KcmStatus.ITEM_NOT_FOUND: "Item does not exist:",
    KcmStatus.FILE_EXIST: "Data already exists:",
    KcmStatus.KEY_EXIST: "Desired generated key name already exists:",
    KcmStatus.ITEM_IS_EMPTY: "Item data empty:",
    KcmStatus.FILE_NAME_TOO_LONG: "File name too long:",
    KcmStatus.FILE_NAME_INVALID: "File name invalid:",
    KcmStatus.STORAGE_ERROR: "File operation general error:",
    KcmStatus.INVALID_FILE_VERSION: "File version invalid:",
    KcmStatus.FILE_CORRUPTED: "File data corrupted:",
    KcmStatus.FILE_NAME_CORRUPTED: "File name corrupted:",
    KcmStatus.NOT_INITIALIZED: "KCM not initialized:",
    KcmStatus.CLOSE_INCOMPLETE_CHAIN: "Closing incomplete KCM chain:",
    KcmStatus.CORRUPTED_CHAIN_FILE: "Corrupted certificate chain file:",
    KcmStatus.INVALID_NUM_OF_CERT_IN_CHAIN: (
        "Maximum chain length supported is 5. Chain length of the item is invalid:"
    ),
    KcmStatus.CERTIFICATE_CHAIN_VERIFICATION_FAILED: "Chain validation error:",
    KcmStatus.META_DATA_NOT_FOUND: "Meta data does not exist:",
    KcmStatus.NOT_PERMITTED: "Operation not permitted:",
    KcmStatus.CRYPTO_UNSUPPORTED_HASH_MODE: "Hash mode unsupported:",
    KcmStatus.CRYPTO_PARSING_DER_PRIVATE_KEY: "Private key parse failed:",
    KcmStatus.CRYPTO_PARSING_DER_PUBLIC_KEY: "Public key parse failed:",
    KcmStatus.CRYPTO_PK_KEY_INVALID_FORMAT: "Public key format invalid:",
    KcmStatus.CRYPTO_INVALID_PK_PRIVKEY: "Private key invalid:",
    KcmStatus.CRYPTO_INVALID_PK_PUBKEY: "Public key invalid:",
    KcmStatus.CRYPTO_ECP_INVALID_KEY: "EC key invalid:",
    KcmStatus.CRYPTO_PK_KEY_INVALID_VERSION: "Public key version invalid:",
    KcmStatus.CRYPTO_PK_PASSWORD_REQUIRED: "Public key password required:",
    KcmStatus.CRYPTO_PRIVATE_KEY_VERIFICATION_FAILED: "Private key verification failed:",
    KcmStatus.CRYPTO_PUBLIC_KEY_VERIFICATION_FAILED: "Public key verification failed:",
    KcmStatus.CRYPTO_PK_UNKNOWN_PK_ALG: "Public key algorithm unknown:",
    KcmStatus.CRYPTO_UNSUPPORTED_CURVE: "Curve unsupported:",
    KcmStatus.CRYPTO_PARSING_DER_CERT: "Certificate parse failed:",
    KcmStatus.CRYPTO_CERT_EXPIRED: "Certificate expired:",
    KcmStatus.CRYPTO_CERT_FUTURE: "Certificate will be valid in the future:",
    KcmStatus.CRYPTO_CERT_MD_ALG: "Certificate MD algorithm error:",
    KcmStatus.CRYPTO_CERT_PUB_KEY_TYPE: "Certificate public key type error:",
    KcmStatus.CRYPTO_CERT_PUB_KEY: "Certificate public key error:",
    KcmStatus.CRYPTO_CERT_NOT_TRUSTED: "Certificate not trusted:",
    KcmStatus.CRYPTO_INVALID_X509_ATTR: "X509 attribute invalid:",
    KcmStatus.CRYPTO_SET_EXTENSION_FAILED: "X509 attribute invalid:",
    KcmStatus.SELF_GENERATED_CERTIFICATE_VERIFICATION_ERROR: (
        "Self-generated certificate validation failed:"
    ),
    KcmStatus.CRYPTO_ENTROPY_MISSING: "Entropy missing error:",
    KcmStatus.RBP_ERROR: GENERAL_ERROR_PREFIX,
}

_KCM_TO_FCC: Final[dict[KcmStatus, FccStatus]] = {
    KcmStatus.SUCCESS: FccStatus.SUCCESS,
    KcmStatus.ERROR: FccStatus.KCM_ERROR,
    KcmStatus.INVALID_PARAMETER: FccStatus.KCM_ERROR,
    KcmStatus.INSUFFICIENT_BUFFER: FccStatus.KCM_ERROR,
    KcmStatus.OUT_OF_MEMORY: FccStatus.KCM_ERROR,
    KcmStatus.ITEM_NOT_FOUND: FccStatus.ITEM_NOT_EXIST,
    KcmStatus.FILE_EXIST: FccStatus.KCM_FILE_EXIST_ERROR,
    KcmStatus.KEY_EXIST: FccStatus.KCM_FILE_EXIST_ERROR,
    KcmStatus.ITEM_IS_EMPTY: FccStatus.KCM_STORAGE_ERROR,
    KcmStatus.FILE_NAME_TOO_LONG: FccStatus.KCM_STORAGE_ERROR,
    KcmStatus.FILE_NAME_INVALID: FccStatus.KCM_STORAGE_ERROR,
    KcmStatus.STORAGE_ERROR: FccStatus.KCM_STORAGE_ERROR,
    KcmStatus.META_DATA_NOT_FOUND: FccStatus.KCM_STORAGE_ERROR,
    KcmStatus.META_DATA_SIZE_ERROR: FccStatus.KCM_STORAGE_ERROR,
    KcmStatus.NOT_PERMITTED: FccStatus.KCM_STORAGE_ERROR,
    KcmStatus.INVALID_FILE_VERSION: FccStatus.KCM_STORAGE_ERROR,
    KcmStatus.FILE_CORRUPTED: FccStatus.KCM_STORAGE_ERROR,
    KcmStatus.FILE_NAME_CORRUPTED: FccStatus.KCM_STORAGE_ERROR,
    KcmStatus.INVALID_FILE_ACCESS_MODE: FccStatus.KCM_STORAGE_ERROR,
    KcmStatus.UNKNOWN_STORAGE_ERROR: FccStatus.KCM_STORAGE_ERROR,
    KcmStatus.NOT_INITIALIZED: FccStatus.KCM_STORAGE_ERROR,
    KcmStatus.CLOSE_INCOMPLETE_CHAIN: FccStatus.KCM_STORAGE_ERROR,
    KcmStatus.CORRUPTED_CHAIN_FILE: FccStatus.KCM_STORAGE_ERROR,
    KcmStatus.INVALID_NUM_OF_CERT_IN_CHAIN: FccStatus.KCM_STORAGE_ERROR,
    KcmStatus.INVALID_EXPECTED_LOCATION: FccStatus.KCM_STORAGE_ERROR,
    KcmStatus.CERTIFICATE_CHAIN_VERIFICATION_FAILED: FccStatus.KCM_CRYPTO_ERROR,
    KcmStatus.SELF_GENERATED_CERTIFICATE_VERIFICATION_ERROR: (
        FccStatus.CERTIFICATE_PUBLIC_KEY_CORRELATION_ERROR
    ),
    KcmStatus.RBP_ERROR: FccStatus.STORE_ERROR,
}


class FccWarning(StrEnum):
    """WarningInfo prefixes; each warning is the prefix, the item name and a newline."""

    ITEM_NOT_SET = "Item not set:"
    BOOTSTRAP_MODE_FALSE = "Bootstrap mode not activated:"
    SELF_SIGNED = "Certificate is self signed:"
    ITEM_IS_EMPTY = "Item empty:"
    REDUNDANT_ITEM = "Item redundant:"
    CERT_TIME_VALIDITY = "Certificate validity cannot be checked:"
    CERT_VALIDITY_LESS_10_YEARS = "Certificate validity is less than 10 years:"
    CA_IDENTIFIER = "CA identifier wasn't set properly:"


@unique
class FtcdCommStatus(IntEnum):
    """``ftcd_comm_status_e``: the LE u32 status word of a response frame."""

    SUCCESS = 0
    STATUS_ERROR = 1
    INVALID_PARAMETER = 2
    MEMORY_OUT = 3
    FAILED_TO_READ_MESSAGE_SIZE = 4
    FAILED_TO_READ_MESSAGE_BYTES = 5
    FAILED_TO_READ_MESSAGE_SIGNATURE = 6
    FAILED_TO_CALCULATE_MESSAGE_SIGNATURE = 7
    INCONSISTENT_MESSAGE_SIGNATURE = 8
    FAILED_TO_PROCESS_DATA = 9
    FAILED_TO_PROCESS_MESSAGE = 10
    FAILED_TO_SEND_VALID_RESPONSE = 11
    NETWORK_TIMEOUT = 12
    NETWORK_CONNECTION_ERROR = 13
    NETWORK_CONNECTION_CLOSED = 14
    INTERNAL_ERROR = 15

    @property
    def c_name(self) -> str:
        """The C enumerator name, e.g. ``FTCD_COMM_INCONSISTENT_MESSAGE_SIGNATURE``."""
        return f"FTCD_COMM_{self.name}"


@unique
class FcuErrorCode(IntEnum):
    """Factory configurator utility error codes returned to the factory tool."""

    GENERAL = 100
    DEVICE_PARAMETER_MANDATORY = 101
    FAILED_TO_GET_PRIVATE_KEY = 102
    FAILED_TO_GET_CERTIFICATE = 103
    FAILED_TO_GET_KEY_AND_CERTIFICATE = 104
    PROTOCOL_VERSION_MISMATCH = 110
    RESPONSE_FIELD_MISSING = 180
    CONFIG_LOAD_FAILED = 190
    CONFIG_NOT_YAML = 200
    CA_CERT_NOT_FOUND = 210
    CA_CERT_LOAD_FAILED = 211
    CA_KEY_NOT_FOUND = 220
    CA_KEY_LOAD_FAILED = 221
    CA_CERT_KEY_MISMATCH = 222
    CSR_SIGNATURE_INVALID = 230
    PRIVATE_KEY_FILE_LOAD_FAILED = 240
    CERTIFICATE_FILE_LOAD_FAILED = 245
    DTLS_KEY_CREATE_FAILED = 250
    DTLS_CSR_CREATE_FAILED = 260
    DTLS_CERTIFICATE_CREATE_FAILED = 270
    FILE_ALREADY_EXISTS = 290
    CERTIFICATE_CREATE_FAILED = 320
    PRIVATE_KEY_CREATE_FAILED = 330
    FILE_LOAD_FAILED = 360
    VALIDATION_ERROR = 380
    NOT_X509_CERTIFICATE = 390
    # provkit's factory CA in a PKCS#11 token (FCU never had one): 400-409.
    HSM_MODULE_LOAD_FAILED = 400
    HSM_TOKEN_NOT_FOUND = 401
    HSM_PIN_INCORRECT = 402
    HSM_PIN_LOCKED = 403
    HSM_KEY_NOT_FOUND = 404
    HSM_KEY_UNUSABLE = 405
    HSM_TOKEN_FAILED = 406
    HSM_URI_INVALID = 407
    HSM_PIN_MISSING = 408
    HSM_KEY_EXISTS = 409

    @property
    def template(self) -> str:
        """The message template from the FCU documentation; fill with :meth:`format`."""
        return _FCU_TEMPLATES[self]

    def format(self, *args: object) -> str:
        """Return the message with the placeholders filled in order."""
        return self.template.format(*args)


_FCU_TEMPLATES: Final[dict[FcuErrorCode, str]] = {
    FcuErrorCode.GENERAL: "General error: {}",
    FcuErrorCode.DEVICE_PARAMETER_MANDATORY: "Device {} is mandatory",
    FcuErrorCode.FAILED_TO_GET_PRIVATE_KEY: "Failed to get {} DTLS private key",
    FcuErrorCode.FAILED_TO_GET_CERTIFICATE: "Failed to get {} DTLS certificate",
    FcuErrorCode.FAILED_TO_GET_KEY_AND_CERTIFICATE: "Failed to get {} DTLS private key and certificate",
    FcuErrorCode.PROTOCOL_VERSION_MISMATCH: "Device protocol {} does not match tool protocol {}",
    FcuErrorCode.RESPONSE_FIELD_MISSING: "Device response does not contain the {} field",
    FcuErrorCode.CONFIG_LOAD_FAILED: "Error loading configuration file: {}",
    FcuErrorCode.CONFIG_NOT_YAML: "Invalid configuration file {}. The file must be in the YAML format",
    FcuErrorCode.CA_CERT_NOT_FOUND: "CA certificate file {} not found. Please run setup and try again",
    FcuErrorCode.CA_CERT_LOAD_FAILED: (
        "Failed to load CA certificate file {}. The file may be corrupted or in wrong format. "
        "Please run setup and try again"
    ),
    FcuErrorCode.CA_KEY_NOT_FOUND: "CA key file {} not found. Please run setup and try again",
    FcuErrorCode.CA_KEY_LOAD_FAILED: (
        "Failed to load CA private key file {}. The file may be corrupted or in wrong format. "
        "Please run setup and try again"
    ),
    FcuErrorCode.CA_CERT_KEY_MISMATCH: (
        "The CA certificate file {} does not match the CA private key {}. Please run setup and try again"
    ),
    FcuErrorCode.CSR_SIGNATURE_INVALID: "Invalid signature for certificate signing request",
    FcuErrorCode.PRIVATE_KEY_FILE_LOAD_FAILED: "Failed to load private key from file {}",
    FcuErrorCode.CERTIFICATE_FILE_LOAD_FAILED: "Failed to load certificate from file {}",
    FcuErrorCode.DTLS_KEY_CREATE_FAILED: "Failed to create private key for {}",
    FcuErrorCode.DTLS_CSR_CREATE_FAILED: "Failed to create certificate signing request for {}",
    FcuErrorCode.DTLS_CERTIFICATE_CREATE_FAILED: "Failed to create certificate for {}",
    FcuErrorCode.FILE_ALREADY_EXISTS: "File {} already exists",
    FcuErrorCode.CERTIFICATE_CREATE_FAILED: "Failed to create certificate",
    FcuErrorCode.PRIVATE_KEY_CREATE_FAILED: "Failed to create private key",
    FcuErrorCode.FILE_LOAD_FAILED: "Could not load file: {}",
    FcuErrorCode.VALIDATION_ERROR: "Validation error in field: {}. Message: {}",
    FcuErrorCode.NOT_X509_CERTIFICATE: "{} is not an X.509 certificate or not formatted in Pem or Der",
    FcuErrorCode.HSM_MODULE_LOAD_FAILED: "Failed to load PKCS#11 module {}: {}",
    FcuErrorCode.HSM_TOKEN_NOT_FOUND: "No PKCS#11 token matches {}",
    FcuErrorCode.HSM_PIN_INCORRECT: "Login to PKCS#11 token {} failed: incorrect PIN",
    FcuErrorCode.HSM_PIN_LOCKED: "The user PIN of PKCS#11 token {} is locked",
    FcuErrorCode.HSM_KEY_NOT_FOUND: "No private key matches {} on the PKCS#11 token",
    FcuErrorCode.HSM_KEY_UNUSABLE: "PKCS#11 key {} cannot be the factory CA key: {}",
    FcuErrorCode.HSM_TOKEN_FAILED: "PKCS#11 token {} was removed or failed: {}",
    FcuErrorCode.HSM_URI_INVALID: "Invalid PKCS#11 URI {}: {}",
    FcuErrorCode.HSM_PIN_MISSING: "No PIN given for PKCS#11 token {}",
    FcuErrorCode.HSM_KEY_EXISTS: "A key matching {} already exists on the PKCS#11 token",
}


@unique
class FtErrorCode(IntEnum):
    """Factory tool (ft_demo) error codes, printed in the final JSON status."""

    GENERAL = 1000
    DEVICE_COMMUNICATION = 1001
    INVALID_CHECKSUM = 1002
    TOKEN_TIMEOUT = 1003
    DEVICE_EXECUTION_FAILED = 1004
    SETUP_FAILED = 1005
    SERIAL_CONNECT_FAILED = 1011
    SERIAL_READ_FAILED = 1012
    NO_SERIAL_PORT = 1013
    SERIAL_PORT_NOT_CONNECTED = 1014
    TCP_CONNECT_FAILED = 1021
    TCP_RECEIVE_FAILED = 1022
    TCP_SEND_FAILED = 1023

    @property
    def template(self) -> str:
        """The message template from the factory tool documentation."""
        return _FT_TEMPLATES[self]

    def format(self, *args: object) -> str:
        """Return the message with the placeholders filled in order."""
        return self.template.format(*args)


_FT_TEMPLATES: Final[dict[FtErrorCode, str]] = {
    FtErrorCode.GENERAL: "General error on factory tool: {}",
    FtErrorCode.DEVICE_COMMUNICATION: "Communication error received from device",
    FtErrorCode.INVALID_CHECKSUM: "Device response verification failed due to an invalid checksum",
    FtErrorCode.TOKEN_TIMEOUT: "Timeout while waiting for device token",
    FtErrorCode.DEVICE_EXECUTION_FAILED: "Execution failed on device with error #{}",
    FtErrorCode.SETUP_FAILED: "Setup failed unexpectedly",
    FtErrorCode.SERIAL_CONNECT_FAILED: "Failed to connect to serial port {}",
    FtErrorCode.SERIAL_READ_FAILED: "Failed to read data from serial connection",
    FtErrorCode.NO_SERIAL_PORT: "No serial port is available on system",
    FtErrorCode.SERIAL_PORT_NOT_CONNECTED: "Serial port {} not connected. Available ports: {}",
    FtErrorCode.TCP_CONNECT_FAILED: "Error connecting to device on IP {} port {}",
    FtErrorCode.TCP_RECEIVE_FAILED: "Failed to receive data from TCP connection",
    FtErrorCode.TCP_SEND_FAILED: "Failed to send data over TCP connection",
}
