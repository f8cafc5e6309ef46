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
        (FccStatus.TOO_MANY_CSR_REQUESTS, "Too many CSR requests. Maximum CSR requests supported is 5"),
    ],
)
def test_fcc_prefixes_match_fcc_output_info_handler(status: FccStatus, prefix: str) -> None:
    """Each status carries the InfoMessage prefix FCC writes."""
    assert status.prefix == prefix


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
