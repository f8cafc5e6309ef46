"""The JSON bodies of the Device Management API, as pydantic models.

Field names, ``object`` values and pagination follow Device Management's v3 API as the
Device Management SDKs read it (PelionIoT/mbed-cloud-sdk-python 2.0.6, the generated
models under ``src/mbed_cloud/_backends``): ``trusted-cert``, ``account``, ``api-key``,
``enrollment``, ``device``, ``server-credentials``, ``list`` and ``error``. Timestamps are
RFC 3339 in UTC. Request models ignore fields they do not know, as the service does, so
SDKs that send more (the deprecated ``signature``) keep working.
"""

from __future__ import annotations

from datetime import datetime
from typing import Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

ItemT = TypeVar("ItemT")


class FieldError(BaseModel):
    """One invalid field of a request."""

    name: str
    message: str


class ErrorBody(BaseModel):
    """Every error answer."""

    object: Literal["error"] = "error"
    code: int = Field(description="The HTTP status.")
    type: str = Field(description="validation_error, unauthorized, forbidden, not_found, duplicate, …")
    message: str
    fields: list[FieldError] | None = None
    request_id: str = Field(description="Also in the X-Request-ID header and the server log.")


class ListBody(BaseModel, Generic[ItemT]):
    """A page of a listing."""

    object: Literal["list"] = "list"
    data: list[ItemT]
    has_more: bool = Field(description="More items follow; ask again with after = the last id.")
    limit: int
    after: str | None = None
    order: Literal["ASC", "DESC"] = "ASC"
    total_count: int | None = Field(None, description="Given when include=total_count.")


class AccountBody(BaseModel):
    """``GET /v3/accounts/me``."""

    object: Literal["account"] = "account"
    id: str
    display_name: str
    aliases: list[str] = []
    company: str = ""
    status: Literal["ACTIVE"] = "ACTIVE"
    tier: str = "1"
    created_at: datetime
    updated_at: datetime
    etag: str


class ApiKeyBody(BaseModel):
    """``GET /v3/api-keys/me``: the key that made the request (never its secret)."""

    object: Literal["api-key"] = "api-key"
    id: str
    account_id: str
    name: str
    status: str
    groups: list[str]
    key: str = Field(description="The key's prefix only.")
    created_at: datetime
    last_login_time: int = Field(description="Milliseconds since the epoch, 0 if never.")
    etag: str


class DeveloperCertificateRequest(BaseModel):
    """``POST /v3/developer-certificates``."""

    model_config = ConfigDict(extra="ignore")

    name: str = Field(min_length=1, max_length=100)
    description: str = Field("", max_length=500)


class DeveloperCertificateBody(BaseModel):
    """A developer certificate with its key and ``mbed_cloud_dev_credentials.c`` text."""

    object: Literal["trusted-cert"] = "trusted-cert"
    id: str
    account_id: str
    name: str
    description: str
    created_at: datetime
    developer_certificate: str = Field(description="The device certificate, PEM.")
    developer_private_key: str = Field(description="The device key, PKCS#8 PEM.")
    security_file_content: str = Field(description="mbed_cloud_dev_credentials.c for this device.")
    endpoint_name: str = Field(description="The endpoint name the certificate was issued for (its CN).")
    etag: str


class TrustedCertificateBody(BaseModel):
    """A trusted certificate: a factory CA, or a developer certificate (``device_execution_mode`` 1)."""

    object: Literal["trusted-cert"] = "trusted-cert"
    id: str
    account_id: str
    name: str
    description: str
    service: Literal["bootstrap", "lwm2m"]
    status: Literal["ACTIVE", "INACTIVE"]
    certificate: str = Field(description="PEM.")
    issuer: str
    subject: str
    validity: datetime = Field(description="Expiry (notAfter).")
    device_execution_mode: int = Field(description="1 for a developer certificate, else 0.")
    is_developer_certificate: bool
    enrollment_mode: bool = False
    owner_id: str = ""
    created_at: datetime
    updated_at: datetime
    etag: str


class TrustedCertificateRequest(BaseModel):
    """``POST /v3/trusted-certificates``."""

    model_config = ConfigDict(extra="ignore")

    certificate: str = Field(min_length=1, max_length=32768, description="The CA certificate, PEM.")
    name: str = Field(min_length=1, max_length=100)
    service: Literal["bootstrap", "lwm2m"]
    status: Literal["ACTIVE", "INACTIVE"] = "ACTIVE"
    description: str = Field("", max_length=500)
    enrollment_mode: bool = False


class TrustedCertificateUpdate(BaseModel):
    """``PUT /v3/trusted-certificates/{id}``: what may change."""

    model_config = ConfigDict(extra="ignore")

    name: str | None = Field(None, min_length=1, max_length=100)
    description: str | None = Field(None, max_length=500)
    status: Literal["ACTIVE", "INACTIVE"] | None = None
    service: Literal["bootstrap", "lwm2m"] | None = None
    certificate: str | None = None


class EnrollmentRequest(BaseModel):
    """``POST /v3/device-enrollments``."""

    model_config = ConfigDict(extra="ignore")

    enrollment_identity: str = Field(
        max_length=128, description="A- and the certificate's SHA-256 fingerprint."
    )


class EnrollmentBody(BaseModel):
    """One first-to-claim enrollment."""

    object: Literal["enrollment"] = "enrollment"
    id: str
    account_id: str
    enrollment_identity: str
    created_at: datetime
    expires_at: datetime
    claimed_at: datetime | None
    enrolled_device_id: str | None
    etag: str


class ServerCredentialsBody(BaseModel):
    """``GET /v3/server-credentials/{bootstrap,lwm2m}``: where devices connect and whom they trust."""

    object: Literal["server-credentials"] = "server-credentials"
    id: str
    server_uri: str
    server_certificate: str = Field(description="The CA of the server's certificate, PEM.")
    created_at: datetime
    etag: str


class DeviceBody(BaseModel):
    """One device of the directory (``/v3/devices``).

    ``id`` is the endpoint name: the unique key of a device on a self-hosted server.
    """

    object: Literal["device"] = "device"
    id: str
    account_id: str
    endpoint_name: str
    name: str
    state: Literal["registered", "deregistered", "bootstrapped", "unenrolled"]
    mechanism: Literal["connector"] = "connector"
    device_execution_mode: int = Field(description="1 when it connected with a developer certificate.")
    serial_number: str = ""
    host_gateway: str = ""
    created_at: datetime = Field(description="Its first connection.")
    updated_at: datetime = Field(description="Its last connection.")
    bootstrapped_timestamp: datetime | None
    last_address: str = Field(description="Where it connected from last (provkit).")
    security_mode: str = Field(description="certificate, psk or nosec (provkit).")
    last_failure: str | None = Field(description="Why its last connection failed, if it did (provkit).")
    etag: datetime = Field(description="Its last change: a timestamp, as the SDKs read a device's etag.")
