"""SMP return codes with their texts, provkit's code for each, and Anjay's result.txt."""

from __future__ import annotations

import pytest
from smp import file_management as fs
from smp import header as smp_header
from smp.error import MGMT_ERR
from smp.file_management import FS_MGMT_ERR

from provkit.wire.smp import (
    FS_TEXTS,
    MGMT_TEXTS,
    UploadErrorV2,
    describe_rc,
    error_v1,
    error_v2,
    parse_result,
    provkit_code,
)


def test_every_return_code_has_a_text():
    assert set(MGMT_TEXTS) == set(MGMT_ERR) and set(FS_TEXTS) == set(FS_MGMT_ERR)
    assert all(text and text == text.strip() for text in [*MGMT_TEXTS.values(), *FS_TEXTS.values()])


@pytest.mark.parametrize(
    ("rc", "fs", "text", "code"),
    [
        (3, True, "FILE_NOT_FOUND (the file does not exist)", 7103),
        (11, True, "FILE_OFFSET_NOT_VALID", 7111),
        (16, True, "FILE_EMPTY (the file is empty)", 7116),
        (3, False, "EINVAL (error in input value)", 7203),
        (8, False, "ENOTSUP (command not supported)", 7208),
        (300, False, "300 (application-defined error)", 7299),
        (99, True, "99 (undocumented return code)", 7199),
    ],
)
def test_describe_and_code(rc, fs, text, code):
    assert describe_rc(rc, fs=fs).startswith(text)
    assert provkit_code(rc, fs=fs) == code


@pytest.mark.parametrize(("raw", "value"), [(b"0", 0), (b"-1", -1), (b" 0\n", 0), (b"12", 12)])
def test_parse_result(raw, value):
    assert parse_result(raw) == value


@pytest.mark.parametrize("raw", [b"", b"ok", b"--1", b"1-", b"\xff", b"0x1"])
def test_parse_result_refuses(raw):
    with pytest.raises(ValueError):
        parse_result(raw)


def test_error_answers_match_the_request():
    request = fs.FileStatusRequest(name="/x", sequence=42)
    v1 = fs.FileSystemManagementErrorV1.loads(error_v1(request.header, MGMT_ERR.EBUSY))
    assert v1.rc == MGMT_ERR.EBUSY and v1.header.sequence == 42
    assert v1.header.op == smp_header.OP.READ_RSP and v1.header.command_id == 1
    v2 = UploadErrorV2.loads(error_v2(request.header, FS_MGMT_ERR.FILE_OFFSET_NOT_VALID, length=7))
    assert v2.err.rc == FS_MGMT_ERR.FILE_OFFSET_NOT_VALID and v2.len == 7
    plain = fs.FileSystemManagementErrorV2.loads(error_v2(request.header, FS_MGMT_ERR.FILE_NOT_FOUND))
    assert plain.err.rc == FS_MGMT_ERR.FILE_NOT_FOUND  # without len the smp model reads it too
