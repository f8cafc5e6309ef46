"""The developer flow's operations: stores, the Device Management API and the C parsers together.

Each function is one MBL CLI command's library half (mbl-manifest-peers.md §1.1); the
CLI adds argument parsing, the device transport and printing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provkit.developer.cloud import CloudClient
from provkit.developer.credentials import is_update_set, parse_developer_credentials, parse_update_resources
from provkit.developer.store import TEAM, USER, Store, check_certificate_name
from provkit.errors import CloudApiError, CredentialsParseError, StoreError


def save_api_key(key: str, *, host: str | None = None, home: Path | None = None) -> dict[str, Any]:
    """Validate ``key`` with ``GET /v3/accounts/me``, then save it in the user store.

    Returns:
        The account object the service answered.

    Raises:
        ApiKeyRejected: the service refused the key (nothing is saved).
        CloudApiError: the service failed or is unreachable (nothing is saved).
        StoreError: the user store cannot be written.
    """
    if not key.strip():
        raise StoreError("the API key is empty")
    account = CloudClient(key, host).account()
    Store.open(USER, home).set_api_key(key)
    return account


def cloud_client(*, host: str | None = None, home: Path | None = None) -> CloudClient:
    """A client with the API key saved in the user store.

    Raises:
        StoreError: no key is saved.
    """
    key = Store.open(USER, home).api_key
    if key is None:
        raise StoreError("no API key is saved", hint="run save-api-key with a key from the Portal first")
    return CloudClient(key, host)


def create_developer_certificate(
    name: str, *, description: str = "", host: str | None = None, home: Path | None = None
) -> list[Path]:
    """Create a developer certificate in Device Management and save its variables in the team store.

    Returns:
        The saved ``.bin`` paths.

    Raises:
        StoreError: an invalid name, a name already in the team store, no API key.
        CertificateExists: the service already has a certificate of that name.
        CloudApiError: other service failures.
        CredentialsParseError: the returned credentials text is unusable (the certificate
            then exists in the service; the error's hint gives its id).
    """
    check_certificate_name(name)
    team = Store.open(TEAM, home)
    if name in team.certificate_names():
        raise StoreError(f"the team store already has a certificate named {name!r}")
    client = cloud_client(host=host, home=home)
    created = client.create_developer_certificate(name, description)
    try:
        variables = parse_developer_credentials(created.security_file_content)
    except CredentialsParseError as exc:
        raise CredentialsParseError(
            f"the developer certificate returned by the service is unusable: {exc.message}",
            hint=f"it was created with id {created.id}; delete it in the Portal",
        ) from exc
    return team.add_certificate(name, variables, cloud_id=created.id)


def import_update_certificate(name: str, resources_c: Path, *, home: Path | None = None) -> list[Path]:
    """Parse a manifest-tool ``update_default_resources.c`` and save its variables in the team store.

    Raises:
        CredentialsParseError: the file is unusable. StoreError: it cannot be read or saved.
    """
    check_certificate_name(name)
    try:
        text = resources_c.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise StoreError(f"cannot read {resources_c}: {exc}") from exc
    return Store.open(TEAM, home).add_certificate(name, parse_update_resources(text))


@dataclass(frozen=True, slots=True)
class CertificateEntry:
    """One certificate known locally or in the service.

    Attributes:
        name: its name.
        kind: ``"developer"``, ``"update"`` or ``"cloud"`` (only in the service).
        local: whether the team store holds it.
        cloud_id: its id in the service, when known.
    """

    name: str
    kind: str
    local: bool
    cloud_id: str | None


def list_certificates(
    *, home: Path | None = None, client: CloudClient | None = None
) -> list[CertificateEntry]:
    """The team store's certificates, plus the service's when ``client`` is given."""
    team = Store.open(TEAM, home)
    entries: dict[str, CertificateEntry] = {}
    for name in team.certificate_names():
        kind = "update" if is_update_set(team.read_certificate(name)) else "developer"
        entries[name] = CertificateEntry(name, kind, True, team.cloud_id(name))
    if client is not None:
        for item in client.trusted_certificates():
            name = str(item.get("name", ""))
            cloud_id = str(item.get("id", "")) or None
            if name in entries:
                local = entries[name]
                entries[name] = CertificateEntry(name, local.kind, True, local.cloud_id or cloud_id)
            elif name:
                entries[name] = CertificateEntry(name, "cloud", False, cloud_id)
    return sorted(entries.values(), key=lambda e: e.name)


def delete_certificate(
    name: str, *, cloud: bool = True, host: str | None = None, home: Path | None = None
) -> tuple[bool, str | None]:
    """Delete a certificate from the team store and, when ``cloud``, from the service.

    The service id is the one recorded at creation; otherwise the service's list is
    searched by name. An update certificate exists only locally.

    Returns:
        ``(removed locally, id deleted in the service or None)``.

    Raises:
        StoreError: the name is known neither locally nor in the service.
        CloudApiError: the service refused the deletion (the local copy is kept).
    """
    team = Store.open(TEAM, home)
    local = name in team.certificate_names()
    cloud_id = None
    if cloud and not (local and is_update_set(team.read_certificate(name))):
        client = cloud_client(host=host, home=home)
        cloud_id = team.cloud_id(name) if local else None
        if cloud_id is None:
            cloud_id = client.find_certificate_id(name)
        if cloud_id is not None:
            try:
                client.delete_certificate(cloud_id)
            except CloudApiError as exc:
                if exc.http_status != 404:  # already gone in the service: finish locally
                    raise
    if not local and cloud_id is None:
        raise StoreError(f"no certificate named {name!r} locally or in Device Management")
    if local:
        team.remove_certificate(name)
    return local, cloud_id


def load_for_provisioning(
    dev_name: str, update_name: str, *, home: Path | None = None
) -> tuple[dict[str, bytes], dict[str, bytes]]:
    """Read a developer and an update certificate set from the team store.

    Raises:
        StoreError: a name is missing, or names a set of the other kind.
    """
    team = Store.open(TEAM, home)
    dev = team.read_certificate(dev_name)
    update = team.read_certificate(update_name)
    if is_update_set(dev):
        raise StoreError(f"{dev_name!r} is an update certificate, not a developer certificate")
    if not is_update_set(update):
        raise StoreError(f"{update_name!r} is a developer certificate, not an update certificate")
    return dev, update
