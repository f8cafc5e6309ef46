"""The developer flow's operations: stores, the Device Management API and the C parsers together.

Each function is one MBL CLI command's library half (the commands of PelionIoT/mbl-cli
``mbl/cli/args/parser.py``); the CLI adds argument parsing, the device transport and printing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provkit.crypto import x509
from provkit.developer.cloud import CloudClient, DeveloperCertificate, check_api_key
from provkit.developer.credentials import (
    ENDPOINT_NAME,
    is_update_set,
    parse_developer_credentials,
    parse_update_resources,
)
from provkit.developer.ctokens import source_text
from provkit.developer.provision import check_developer_material, check_update_material
from provkit.developer.store import TEAM, USER, Store, check_certificate_name
from provkit.errors import CloudApiError, CredentialsParseError, CryptoError, StoreError


def save_api_key(
    key: str, *, host: str | None = None, home: Path | None = None, ca_file: Path | None = None
) -> dict[str, Any]:
    """Validate ``key`` with ``GET /v3/accounts/me``, then save it in the user store.

    Returns:
        The account object the service answered.

    Raises:
        ApiKeyRejected: the key is malformed (not sent) or the service refused it; nothing
            is saved.
        CloudApiError: the service failed or is unreachable (nothing is saved).
        StoreError: the user store cannot be written.
    """
    key = check_api_key(key)
    account = CloudClient(key, host, ca_file=ca_file).account()
    Store.open(USER, home).set_api_key(key)
    return account


def cloud_client(
    *, host: str | None = None, home: Path | None = None, ca_file: Path | None = None
) -> CloudClient:
    """A client with the API key saved in the user store.

    Raises:
        StoreError: no key is saved.
    """
    key = Store.open(USER, home).api_key
    if key is None:
        raise StoreError("no API key is saved", hint="run save-api-key with a key from the Portal first")
    return CloudClient(key, host, ca_file=ca_file)


def create_developer_certificate(
    name: str,
    *,
    description: str = "",
    host: str | None = None,
    home: Path | None = None,
    ca_file: Path | None = None,
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
    team = _team_without(
        name, home, "provision with it as it is (leave out -c), or delete it first with delete-certificate"
    )
    client = cloud_client(host=host, home=home, ca_file=ca_file)
    created = client.create_developer_certificate(name, description)
    return _save_developer_certificate(team, name, created, "created")


def _save_developer_certificate(team: Store, name: str, cert: DeveloperCertificate, how: str) -> list[Path]:
    try:
        variables = parse_developer_credentials(cert.security_file_content)
        check_developer_material(variables)
    except CredentialsParseError as exc:
        raise CredentialsParseError(
            f"the developer certificate returned by the service is unusable: {exc.message}",
            hint=f"it was {how} with id {cert.id}; delete it in the Portal",
        ) from exc
    return team.add_certificate(name, variables, cloud_id=cert.id)


def fetch_developer_certificate(
    name: str, *, host: str | None = None, home: Path | None = None, ca_file: Path | None = None
) -> list[Path]:
    """Download an existing developer certificate by name and save it in the team store.

    mbl-cli does this when the name is not in the team store: the certificate was made in
    the Portal or by a team member (``get_dev_credentials`` in mbl-cli's ``cloudapi.py``). The id is found in
    ``GET /v3/trusted-certificates`` and the credentials come from
    ``GET /v3/developer-certificates/{id}``.

    Raises:
        StoreError: no API key is saved, or the account has no certificate of that name.
        CloudApiError: the service failed. CredentialsParseError: its credentials are unusable.
    """
    check_certificate_name(name)
    client = cloud_client(host=host, home=home, ca_file=ca_file)
    cert_id = client.find_certificate_id(name)
    if cert_id is None:
        raise StoreError(
            f"no certificate named {name!r} in the team store or in Device Management",
            hint="create it with -c (create-certificate)",
        )
    return _save_developer_certificate(
        Store.open(TEAM, home), name, client.developer_certificate(cert_id), "fetched"
    )


def import_developer_credentials(
    resources_c: Path, name: str | None = None, *, home: Path | None = None
) -> tuple[str, list[Path]]:
    """Save a local ``mbed_cloud_dev_credentials.c`` in the team store; no service is asked.

    This is the file the Portal offers for download (or a team member's copy). Its
    variables are parsed and checked as a created certificate's are.

    Args:
        resources_c: the C file.
        name: the name in the team store; default the file's endpoint name.
        home: the stores' home.

    Returns:
        The name used and the saved ``.bin`` paths.

    Raises:
        CredentialsParseError: the file is unreadable or unusable.
        StoreError: an invalid name, or the team store has a set of that name already.
    """
    variables = parse_developer_credentials(_read_c_file(resources_c))
    check_developer_material(variables)
    if name is None:
        name = variables[ENDPOINT_NAME].decode("utf-8", "replace")
    team = _team_without(
        name, home, "choose another name, or delete the old set with delete-certificate --local-only"
    )
    return name, team.add_certificate(name, variables)


def _team_without(name: str, home: Path | None, hint: str) -> Store:
    """The team store, checked to have no set called ``name`` (a valid name)."""
    check_certificate_name(name)
    team = Store.open(TEAM, home)
    if name in team.certificate_names():
        raise StoreError(f"the team store already has a certificate named {name!r}", hint=hint)
    return team


def _read_c_file(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CredentialsParseError(f"cannot read {path}: {exc.strerror or exc}") from exc
    return source_text(data)


def read_update_resources(resources_c: Path) -> dict[str, bytes]:
    """Read and parse a manifest-tool ``update_default_resources.c``; check its certificate.

    Raises:
        CredentialsParseError: the file cannot be read, or is unusable (naming the line or
            the variable).
    """
    variables = parse_update_resources(_read_c_file(resources_c))
    check_update_material(variables)
    return variables


def import_update_certificate(name: str, resources_c: Path, *, home: Path | None = None) -> list[Path]:
    """Parse a manifest-tool ``update_default_resources.c`` and save its variables in the team store.

    Raises:
        CredentialsParseError: the file is unreadable or unusable. StoreError: it cannot be saved.
    """
    check_certificate_name(name)
    return Store.open(TEAM, home).add_certificate(name, read_update_resources(resources_c))


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
        kind = "update" if is_update_set(team.certificate_variables(name)) else "developer"
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
    name: str,
    *,
    cloud: bool = True,
    host: str | None = None,
    home: Path | None = None,
    ca_file: Path | None = None,
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
    # The kind comes from config.json alone, so a set with a lost file can still be deleted.
    if cloud and not (local and is_update_set(team.certificate_variables(name))):
        client = cloud_client(host=host, home=home, ca_file=ca_file)
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
    return _developer_set(team, dev_name), _update_set(team, update_name)


def _developer_set(team: Store, name: str) -> dict[str, bytes]:
    variables = team.read_certificate(name)
    if is_update_set(variables):
        raise StoreError(f"{name!r} is an update certificate, not a developer certificate")
    return variables


def _update_set(team: Store, name: str) -> dict[str, bytes]:
    if name not in team.certificate_names():
        raise StoreError(
            f"no update certificate named {name!r} in the team store ({team.location})",
            hint="import one with -p update_default_resources.c",
        )
    variables = team.read_certificate(name)
    if not is_update_set(variables):
        raise StoreError(f"{name!r} is a developer certificate, not an update certificate")
    return variables


def prepare_provisioning(
    dev_name: str,
    update_name: str,
    *,
    create: bool = False,
    resources_c: Path | None = None,
    host: str | None = None,
    home: Path | None = None,
    ca_file: Path | None = None,
) -> tuple[dict[str, bytes], dict[str, bytes]]:
    """Gather both certificate sets for ``provision-pelion``, saving new ones in the team store.

    Everything local is checked before the service is asked to create anything, so a bad
    name, a malformed ``update_default_resources.c`` or a missing update set never leaves a
    new developer certificate behind in the account. A developer certificate that is
    neither created (``create``) nor in the team store is fetched from the service by name,
    as mbl-cli does.

    Args:
        dev_name: the developer certificate's name.
        update_name: the update certificate's name.
        create: create ``dev_name`` in the service first (``-c``).
        resources_c: import this ``update_default_resources.c`` as ``update_name`` (``-p``).
        host: the API host.
        ca_file: CA certificates to trust for an ``https://`` host (see :class:`CloudClient`).
        home: the stores' home.

    Raises:
        StoreError, CredentialsParseError, CloudApiError: as the steps they come from.
    """
    check_certificate_name(dev_name)
    check_certificate_name(update_name)
    team = Store.open(TEAM, home)
    update = read_update_resources(resources_c) if resources_c else _update_set(team, update_name)
    if create:
        create_developer_certificate(dev_name, host=host, home=home, ca_file=ca_file)
    elif dev_name not in team.certificate_names():
        if Store.open(USER, home).api_key is None:  # nothing to fetch it with
            raise StoreError(
                f"no developer certificate named {dev_name!r} in the team store ({team.location})",
                hint="create it with -c, or save an API key to fetch it from Device Management",
            )
        fetch_developer_certificate(dev_name, host=host, home=home, ca_file=ca_file)
    dev = _developer_set(team, dev_name)
    if resources_c is not None:
        team.add_certificate(update_name, update)
    return dev, update


def upload_ca_certificate(
    ca_file: Path,
    *,
    key: str | None = None,
    name: str | None = None,
    service: str = "bootstrap",
    host: str | None = None,
    home: Path | None = None,
    ca_file_for_tls: Path | None = None,
) -> dict[str, Any]:
    """Upload a factory CA (``keystore/fcu.crt``) to ``/v3/trusted-certificates``.

    Devices signed by it are then accepted by the service's server. With a CA chain
    (intermediate mode), the first certificate, the one that signs the devices, is sent.

    Args:
        ca_file: the CA certificate file (PEM chain or DER).
        key: an API key of the administrators group; default the user store's.
        name: the name in Device Management; default the CA's CN (else its subject), with
            `` (lwm2m)`` for that service, as names are unique across services.
        service: ``bootstrap`` or ``lwm2m``.
        host: the API host.
        home: the stores' home (for the saved key).
        ca_file_for_tls: CA certificates to trust for an ``https://`` host.

    Returns:
        The trusted certificate the service answered.

    Raises:
        CredentialsParseError: the file is unreadable or holds no certificate.
        StoreError: no key given and none saved.
        CertificateExists, ApiKeyRejected, CloudApiError: as the service answers.
    """
    try:
        certificates = x509.load_certificates(ca_file.read_bytes())
    except (OSError, CryptoError) as exc:
        raise CredentialsParseError(f"cannot read a CA certificate from {ca_file}: {exc}") from exc
    if not certificates:
        raise CredentialsParseError(f"{ca_file} holds no certificate")
    issuing = certificates[0]
    base = x509.common_name(issuing) or x509.subject_text(issuing)
    label = name or (base if service == "bootstrap" else f"{base} ({service})")
    pem = x509.certificate_pem([issuing]).decode("ascii")
    client = (
        CloudClient(key, host, ca_file=ca_file_for_tls)
        if key
        else cloud_client(host=host, home=home, ca_file=ca_file_for_tls)
    )
    return client.upload_trusted_certificate(
        label, pem, service=service, description="factory CA (provkit setup)"
    )
