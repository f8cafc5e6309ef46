"""The status and error code tables match the published numbers and texts."""

from __future__ import annotations

import pytest

from provkit.codes import (
    SUCCESS_INFO_MESSAGE,
    FccStatus,
    FccWarning,
    FcuErrorCode,
    FtcdCommStatus,
    FtErrorCode,
    KcmStatus,
)


def test_fcc_status_numbers_are_contiguous_0_to_37() -> None:
    """fcc_status_e is append-only from 0 to 37 with no gaps."""
    assert [int(s) for s in FccStatus] == list(range(38))


@pytest.mark.parametrize(
    ("status", "prefix"),
    [
        (FccStatus.ITEM_NOT_EXIST, "Item does not exist:"),
        (FccStatus.EMPTY_ITEM, "Item empty:"),
        (FccStatus.WRONG_ITEM_DATA_SIZE, "Item size is wrong:"),
        (FccStatus.URI_WRONG_FORMAT, "URI format incorrect:"),
        (FccStatus.FIRST_TO_CLAIM_NOT_ALLOWED, "first to claim not allowed:"),
        (FccStatus.BOOTSTRAP_MODE_ERROR, "Bootstrap mode value incorrect:"),
        (FccStatus.UTC_OFFSET_WRONG_FORMAT, "UTC offset incorrect:"),
        (FccStatus.INVALID_LWM2M_CN_ATTR, "Certificate CN attribute invalid:"),
        (FccStatus.CERTIFICATE_PUBLIC_KEY_CORRELATION_ERROR, "Certificate public key validation failed:"),
        (FccStatus.BUNDLE_INVALID_SCHEME, "General error:"),
        (FccStatus.NOT_SUPPORTED, "General error:"),
        (
            FccStatus.TOO_MANY_CSR_REQUESTS,
            "Too many CSR requests. Maximum CSR requests supported is CSR_MAX_NUMBER_OF_CSRS",
        ),
    ],
)
def test_fcc_prefixes_match_fcc_output_info_handler(status: FccStatus, prefix: str) -> None:
    """Each status carries the InfoMessage prefix FCC writes."""
    assert status.prefix == prefix


# fcc_status_e (fcc_status.h) row by row: value, C enumerator, InfoMessage prefix
# (fcc_get_fcc_error_string in fcc_output_info_handler.c).
_G = "General error:"
FCC_STATUS_TABLE = [
    (0, "FCC_STATUS_SUCCESS", "The Factory process succeeded\n"),
    (1, "FCC_STATUS_ERROR", _G),
    (2, "FCC_STATUS_MEMORY_OUT", _G),
    (3, "FCC_STATUS_INVALID_PARAMETER", _G),
    (4, "FCC_STATUS_STORE_ERROR", "Internal storage error:"),
    (5, "FCC_STATUS_INTERNAL_ITEM_ALREADY_EXIST", _G),
    (6, "FCC_STATUS_CA_ERROR", "CA error:"),
    (7, "FCC_STATUS_ROT_ERROR", "Root of trust error:"),
    (8, "FCC_STATUS_ENTROPY_ERROR", "Entropy error:"),
    (9, "FCC_STATUS_FACTORY_DISABLED_ERROR", "Factory disabled error:"),
    (10, "FCC_STATUS_INVALID_CERTIFICATE", "Certificate invalid:"),
    (11, "FCC_STATUS_INVALID_CERT_ATTRIBUTE", _G),
    (12, "FCC_STATUS_INVALID_CA_CERT_SIGNATURE", "Validation of CA certificate failed:"),
    (13, "FCC_STATUS_EXPIRED_CERTIFICATE", "Certificate expired:"),
    (14, "FCC_STATUS_INVALID_LWM2M_CN_ATTR", "Certificate CN attribute invalid:"),
    (15, "FCC_STATUS_KCM_ERROR", _G),
    (16, "FCC_STATUS_KCM_STORAGE_ERROR", _G),
    (17, "FCC_STATUS_KCM_FILE_EXIST_ERROR", _G),
    (18, "FCC_STATUS_KCM_CRYPTO_ERROR", "KCM crypto error:"),
    (19, "FCC_STATUS_NOT_INITIALIZED", _G),
    (20, "FCC_STATUS_BUNDLE_ERROR", _G),
    (21, "FCC_STATUS_BUNDLE_RESPONSE_ERROR", _G),
    (22, "FCC_STATUS_BUNDLE_UNSUPPORTED_GROUP", _G),
    (23, "FCC_STATUS_BUNDLE_INVALID_GROUP", _G),
    (24, "FCC_STATUS_BUNDLE_INVALID_SCHEME", _G),
    (25, "FCC_STATUS_ITEM_NOT_EXIST", "Item does not exist:"),
    (26, "FCC_STATUS_EMPTY_ITEM", "Item empty:"),
    (27, "FCC_STATUS_WRONG_ITEM_DATA_SIZE", "Item size is wrong:"),
    (28, "FCC_STATUS_URI_WRONG_FORMAT", "URI format incorrect:"),
    (29, "FCC_STATUS_FIRST_TO_CLAIM_NOT_ALLOWED", "first to claim not allowed:"),
    (30, "FCC_STATUS_BOOTSTRAP_MODE_ERROR", "Bootstrap mode value incorrect:"),
    (31, "FCC_STATUS_OUTPUT_INFO_ERROR", _G),
    (32, "FCC_STATUS_WARNING_CREATE_ERROR", _G),
    (33, "FCC_STATUS_UTC_OFFSET_WRONG_FORMAT", "UTC offset incorrect:"),
    (34, "FCC_STATUS_CERTIFICATE_PUBLIC_KEY_CORRELATION_ERROR", "Certificate public key validation failed:"),
    (35, "FCC_STATUS_BUNDLE_INVALID_KEEP_ALIVE_SESSION_STATUS", _G),
    (
        36,
        "FCC_STATUS_TOO_MANY_CSR_REQUESTS",
        "Too many CSR requests. Maximum CSR requests supported is CSR_MAX_NUMBER_OF_CSRS",
    ),
    (37, "FCC_STATUS_NOT_SUPPORTED", _G),
]


def test_every_fcc_status_has_the_spec_number_name_and_prefix() -> None:
    """All 38 statuses of ``fcc_status_e``: number, C name and InfoMessage prefix, exactly."""
    assert [(int(s), s.c_name, s.prefix) for s in FccStatus] == FCC_STATUS_TABLE


def test_success_message_keeps_its_trailing_newline() -> None:
    """The success InfoMessage ends with a newline, as FCC sends it."""
    assert SUCCESS_INFO_MESSAGE == "The Factory process succeeded\n"
    assert FccStatus.SUCCESS.prefix == SUCCESS_INFO_MESSAGE


@pytest.mark.parametrize(
    ("kcm", "fcc", "prefix"),
    [
        (KcmStatus.ITEM_NOT_FOUND, FccStatus.ITEM_NOT_EXIST, "Item does not exist:"),
        (KcmStatus.FILE_EXIST, FccStatus.KCM_FILE_EXIST_ERROR, "Data already exists:"),
        (KcmStatus.KEY_EXIST, FccStatus.KCM_FILE_EXIST_ERROR, "Desired generated key name already exists:"),
        (KcmStatus.ITEM_IS_EMPTY, FccStatus.KCM_STORAGE_ERROR, "Item data empty:"),
        (KcmStatus.FILE_NAME_TOO_LONG, FccStatus.KCM_STORAGE_ERROR, "File name too long:"),
        (KcmStatus.FILE_NAME_INVALID, FccStatus.KCM_STORAGE_ERROR, "File name invalid:"),
        (
            KcmStatus.CERTIFICATE_CHAIN_VERIFICATION_FAILED,
            FccStatus.KCM_CRYPTO_ERROR,
            "Chain validation error:",
        ),
        (KcmStatus.CRYPTO_PARSING_DER_PRIVATE_KEY, FccStatus.KCM_CRYPTO_ERROR, "Private key parse failed:"),
        (KcmStatus.CRYPTO_PARSING_DER_CERT, FccStatus.KCM_CRYPTO_ERROR, "Certificate parse failed:"),
        (
            KcmStatus.SELF_GENERATED_CERTIFICATE_VERIFICATION_ERROR,
            FccStatus.CERTIFICATE_PUBLIC_KEY_CORRELATION_ERROR,
            "Self-generated certificate validation failed:",
        ),
        (KcmStatus.RBP_ERROR, FccStatus.STORE_ERROR, "General error:"),
        (KcmStatus.ERROR, FccStatus.KCM_ERROR, "General error:"),
        # the remaining KCM statuses (fcc_get_kcm_error_string, fcc_convert_kcm_to_fcc_status)
        (KcmStatus.STORAGE_ERROR, FccStatus.KCM_STORAGE_ERROR, "File operation general error:"),
        (
            KcmStatus.INVALID_NUM_OF_CERT_IN_CHAIN,
            FccStatus.KCM_STORAGE_ERROR,
            "Maximum chain length supported is 5. Chain length of the item is invalid:",
        ),
        (KcmStatus.CRYPTO_PARSING_DER_PUBLIC_KEY, FccStatus.KCM_CRYPTO_ERROR, "Public key parse failed:"),
        (
            KcmStatus.CRYPTO_PRIVATE_KEY_VERIFICATION_FAILED,
            FccStatus.KCM_CRYPTO_ERROR,
            "Private key verification failed:",
        ),
        (
            KcmStatus.CRYPTO_PUBLIC_KEY_VERIFICATION_FAILED,
            FccStatus.KCM_CRYPTO_ERROR,
            "Public key verification failed:",
        ),
        (KcmStatus.CRYPTO_UNSUPPORTED_CURVE, FccStatus.KCM_CRYPTO_ERROR, "Curve unsupported:"),
        (KcmStatus.CRYPTO_CERT_EXPIRED, FccStatus.KCM_CRYPTO_ERROR, "Certificate expired:"),
        (
            KcmStatus.CRYPTO_CERT_FUTURE,
            FccStatus.KCM_CRYPTO_ERROR,
            "Certificate will be valid in the future:",
        ),
        (KcmStatus.CRYPTO_CERT_MD_ALG, FccStatus.KCM_CRYPTO_ERROR, "Certificate MD algorithm error:"),
        (
            KcmStatus.CRYPTO_CERT_PUB_KEY_TYPE,
            FccStatus.KCM_CRYPTO_ERROR,
            "Certificate public key type error:",
        ),
        (KcmStatus.CRYPTO_CERT_PUB_KEY, FccStatus.KCM_CRYPTO_ERROR, "Certificate public key error:"),
        (KcmStatus.CRYPTO_CERT_NOT_TRUSTED, FccStatus.KCM_CRYPTO_ERROR, "Certificate not trusted:"),
        (KcmStatus.CRYPTO_INVALID_X509_ATTR, FccStatus.KCM_CRYPTO_ERROR, "X509 attribute invalid:"),
        (KcmStatus.CRYPTO_SET_EXTENSION_FAILED, FccStatus.KCM_CRYPTO_ERROR, "X509 attribute invalid:"),
        (KcmStatus.CRYPTO_ENTROPY_MISSING, FccStatus.KCM_CRYPTO_ERROR, "Entropy missing error:"),
        (KcmStatus.INVALID_PARAMETER, FccStatus.KCM_ERROR, "General error:"),
        (KcmStatus.INSUFFICIENT_BUFFER, FccStatus.KCM_ERROR, "General error:"),
        (KcmStatus.OUT_OF_MEMORY, FccStatus.KCM_ERROR, "General error:"),
    ],
)
def test_kcm_failures_convert_like_fcc_utils(kcm: KcmStatus, fcc: FccStatus, prefix: str) -> None:
    """KCM store failures map to the FCC status and prefix of fcc_utils.c."""
    assert kcm.fcc_status is fcc
    assert kcm.prefix == prefix


def test_warning_prefixes() -> None:
    """The eight WarningInfo prefixes are the current FCC strings."""
    assert [w.value for w in FccWarning] == [
        "Item not set:",
        "Bootstrap mode not activated:",
        "Certificate is self signed:",
        "Item empty:",
        "Item redundant:",
        "Certificate validity cannot be checked:",
        "Certificate validity is less than 10 years:",
        "CA identifier wasn't set properly:",
    ]


def test_comm_status_numbers() -> None:
    """ftcd_comm_status_e runs from SUCCESS 0 to INTERNAL_ERROR 15."""
    assert FtcdCommStatus.INCONSISTENT_MESSAGE_SIGNATURE == 8
    assert FtcdCommStatus.FAILED_TO_READ_MESSAGE_SIZE == 4
    assert FtcdCommStatus.NETWORK_TIMEOUT == 12
    assert [int(s) for s in FtcdCommStatus] == list(range(16))


def test_every_tool_code_has_a_message() -> None:
    """Each FCU and factory tool code formats to a non-empty message."""
    for code in FcuErrorCode:
        assert code.format("X", "Y")
    for ft in FtErrorCode:
        assert ft.format("X", "Y")
    assert FcuErrorCode.VALIDATION_ERROR.format("use-bootstrap", "must be a boolean") == (
        "Validation error in field: use-bootstrap. Message: must be a boolean"
    )
    assert FtErrorCode.TCP_CONNECT_FAILED.format("10.0.0.1", 7777) == (
        "Error connecting to device on IP 10.0.0.1 port 7777"
    )
