"""The MBL CLI developer flow: API key, developer and update certificates, one-bundle provisioning.

A developer provisions a development device for Device Management without a factory CA:
save an API key (:func:`save_api_key`), create a developer certificate in the service
(:func:`create_developer_certificate`), import the manifest-tool update certificate
(:func:`import_update_certificate`) and send both to the device as one bundle
(:func:`build_provisioning_bundle`). Stores keep mbl-cli's on-disk format
(:mod:`provkit.developer.store`). See ``docs/developer.md``.
"""

from provkit.developer.cloud import CloudClient, DeveloperCertificate, api_host
from provkit.developer.cparse import CVariable, parse_c_variables
from provkit.developer.credentials import parse_developer_credentials, parse_update_resources
from provkit.developer.flow import (
    CertificateEntry,
    cloud_client,
    create_developer_certificate,
    delete_certificate,
    fetch_developer_certificate,
    import_developer_credentials,
    import_update_certificate,
    list_certificates,
    load_for_provisioning,
    prepare_provisioning,
    read_update_resources,
    save_api_key,
    upload_ca_certificate,
)
from provkit.developer.provision import (
    STORED_ITEMS,
    ProvisioningBundle,
    build_provisioning_bundle,
    check_device_response,
    deliver_bundle,
    status_bundle,
    status_json,
    truncation_warnings,
)
from provkit.developer.store import TEAM, USER, Store, store_locations

__all__ = [
    "STORED_ITEMS",
    "TEAM",
    "USER",
    "CVariable",
    "CertificateEntry",
    "CloudClient",
    "DeveloperCertificate",
    "ProvisioningBundle",
    "Store",
    "api_host",
    "build_provisioning_bundle",
    "check_device_response",
    "cloud_client",
    "create_developer_certificate",
    "delete_certificate",
    "deliver_bundle",
    "fetch_developer_certificate",
    "import_developer_credentials",
    "import_update_certificate",
    "list_certificates",
    "load_for_provisioning",
    "parse_c_variables",
    "parse_developer_credentials",
    "parse_update_resources",
    "prepare_provisioning",
    "read_update_resources",
    "save_api_key",
    "status_bundle",
    "status_json",
    "store_locations",
    "truncation_warnings",
    "upload_ca_certificate",
]
