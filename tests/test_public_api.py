"""Each package's public surface is deliberate: its ``__all__`` is pinned here.

Adding or removing a public name is then an edit of this table, seen in review, not an
accident of an import. Every name listed resolves, and is documented.
"""

from __future__ import annotations

import importlib
import inspect

import pytest

SURFACES: dict[str, list[str]] = {
    "provkit": [
        "ProvkitError",
        "__version__",
    ],
    "provkit.crypto": [],
    "provkit.crypto.hsm": [],
    "provkit.developer": [
        "CVariable",
        "CertificateEntry",
        "CloudClient",
        "DeveloperCertificate",
        "ProvisioningBundle",
        "STORED_ITEMS",
        "Store",
        "TEAM",
        "USER",
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
    ],
    "provkit.device": [
        "DeviceClock",
        "FactoryConfiguratorClient",
        "HandlerResult",
        "ItemInfo",
        "ItemType",
        "Kcm",
        "MemoryStorage",
        "OpenMode",
        "SqliteStorage",
        "StorageBackend",
        "VerifyResult",
        "device_handlers",
        "open_storage",
        "verify_device",
    ],
    "provkit.device.lwm2m": [
        "AcceptResult",
        "AcceptStatus",
        "Lwm2mAcceptor",
        "make_lwm2m_handler",
    ],
    "provkit.device.smp": [
        "AnjayProvisioningImage",
        "SmpDevice",
        "default_endpoint_name",
    ],
    "provkit.factory": [
        "CsrPending",
        "DeviceConfigurationRequest",
        "DeviceResponseStatus",
        "ErrorInfo",
        "FactoryCa",
        "FactoryToolApi",
        "SetupStatus",
        "WarningInfo",
    ],
    "provkit.factory.lwm2m": [
        "CertConfigError",
        "CertInfo",
        "CoioteRegistration",
        "Credentials",
        "FactoryProvisioning",
        "ProvisioningRefused",
        "ServerInfo",
        "deliver",
    ],
    "provkit.factory.templates": [],
    "provkit.line": [
        "Batch",
        "BatchOptions",
        "BatchReport",
        "BoardOptions",
        "BundleArchive",
        "DemoResult",
        "DeviceFarm",
        "DeviceOutcome",
        "NoProgress",
        "Progress",
        "SettledBundles",
        "SmpDeviceFarm",
        "run_demo",
        "unseal_bundle",
    ],
    "provkit.lwm2m": [
        "EndpointConfig",
        "Entry",
        "Objlnk",
        "Record",
        "config_from_mapping",
        "decode_cbor",
        "decode_json",
        "decode_strict",
        "encode_cbor",
        "encode_json",
        "load_config_text",
    ],
    "provkit.params": [
        "BOOTSTRAP_MODE",
        "BUNDLE_LEVEL_NAMES",
        "CATALOG",
        "DEVICE_CERT_OF_KEY",
        "FOUR_BYTE_INTEGER_PARAMS",
        "ItemKind",
        "LWM2M_MODE",
        "MAX_NAME_LENGTH",
        "META_DATA_NAMES",
        "Mandatory",
        "ModeNames",
        "NAME_RULE",
        "NameFault",
        "ParamSpec",
        "ValueFormat",
        "get_param",
        "is_custom_name_allowed",
        "is_kcm_name",
        "mandatory_for",
        "mode_names",
        "name_fault",
        "names",
        "redundant_for",
    ],
    "provkit.registry": [
        "Attempt",
        "AttemptState",
        "Connection",
        "ConnectionEvent",
        "ConnectionOutcome",
        "Connections",
        "Identity",
        "IdentityPattern",
        "NewAttempt",
        "PskCredential",
        "PskCredentials",
        "Registry",
        "RegistryStats",
        "Revocation",
        "RevocationSet",
        "Revocations",
        "SealedPsk",
        "Service",
        "StateChange",
        "TERMINAL_STATES",
        "TrustStatus",
        "TrustStore",
        "TrustedCertificate",
        "default_station_id",
        "parse_identity_csv",
    ],
    "provkit.server": [
        "BoundPorts",
        "DEFAULT_BOOTSTRAP_PORT",
        "DEFAULT_LWM2M_PORT",
        "ServerConfig",
        "ServerMaterial",
        "ServerThread",
        "init_home",
        "load_home",
        "run_server",
    ],
    "provkit.server.api": [
        "AdminKey",
        "AnyKey",
        "ApiContext",
        "DeveloperAuthority",
        "Principal",
        "ServerIdentity",
        "authenticate",
        "create_app",
        "require",
    ],
    "provkit.server.api.routes": [],
    "provkit.server.lineview": [
        "PREFIX",
        "build_router",
    ],
    "provkit.transport": [
        "ChecksumError",
        "DeviceAgent",
        "DeviceLink",
        "DeviceStatusError",
        "FileLink",
        "MessageHandler",
        "Reply",
        "SerialAgentServer",
        "SerialLink",
        "SessionEnd",
        "TcpAgentServer",
        "TcpLink",
    ],
    "provkit.wire": [
        "Bundle",
        "BundleResponse",
        "CertificateChainItem",
        "CertificateItem",
        "ConfigParam",
        "CsrRequest",
        "CsrResult",
        "KeyItem",
        "StorageMedium",
        "decode_bundle",
        "decode_envelope",
        "decode_response",
        "encode_bundle",
        "encode_response",
        "parse_group",
        "split_message",
    ],
}


@pytest.mark.parametrize("package", sorted(SURFACES))
def test_public_names_are_the_pinned_ones(package: str) -> None:
    """The package's ``__all__`` is exactly the pinned list."""
    module = importlib.import_module(package)
    assert sorted(module.__all__) == SURFACES[package]


@pytest.mark.parametrize("package", sorted(SURFACES))
def test_public_names_resolve_and_are_documented(package: str) -> None:
    """Every public name exists and has a docstring (constants are documented by their module)."""
    module = importlib.import_module(package)
    assert module.__doc__
    for name in module.__all__:
        value = getattr(module, name)
        if inspect.isclass(value) or inspect.isfunction(value):
            assert inspect.getdoc(value), f"{package}.{name} has no docstring"


def test_every_package_is_pinned() -> None:
    """A new package gets its surface pinned too (the CLI and the migrations are not an API)."""
    import pkgutil

    import provkit

    packages = {
        info.name
        for info in pkgutil.walk_packages(provkit.__path__, "provkit.")
        if info.ispkg and ".migrations" not in info.name and not info.name.startswith("provkit.cli")
    }
    assert packages | {"provkit"} == set(SURFACES)
