"""The developer flow's error codes 6000-6005 and where each family sits in the tree."""

from __future__ import annotations

import pytest

from provkit.cli._errors import format_error
from provkit.errors import (
    ApiKeyRejected,
    CertificateExists,
    CloudApiError,
    CredentialsParseError,
    DeveloperError,
    ProvkitError,
    StoreError,
)


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (DeveloperError("x"), 6000),
        (StoreError("x"), 6001),
        (CloudApiError("x"), 6002),
        (CredentialsParseError("x"), 6003),
        (ApiKeyRejected("x"), 6004),
        (CertificateExists("x"), 6005),
    ],
)
def test_codes_match_docs_developer_md(error, code):
    """Each family has the number docs/developer.md lists; all are DeveloperError / ProvkitError."""
    assert error.code == code
    assert isinstance(error, DeveloperError) and isinstance(error, ProvkitError)


def test_cloud_errors_keep_the_http_status_and_parse_errors_the_line():
    """401/403 and 409 are CloudApiError subclasses with .http_status; a parse error names its line."""
    rejected = ApiKeyRejected("the API key was rejected (HTTP 401)", http_status=401, hint="new key")
    assert isinstance(rejected, CloudApiError) and rejected.http_status == 401
    expected = "Error DEVELOPER-6004: the API key was rejected (HTTP 401)\nHint: new key"
    assert format_error(rejected) == expected
    parse = CredentialsParseError("expected ';'", line=7)
    assert isinstance(parse, ValueError) and parse.line == 7
    assert format_error(parse) == "Error DEVELOPER-6003: line 7: expected ';'"
