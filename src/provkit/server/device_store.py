"""What a provisioned device holds for its first connection, read from its secure storage.

Two layouts, as provisioned by provkit:

* **FCC/KCM items** (Pelion devices): ``mbed.UseBootstrap`` chooses between the bootstrap
  account (``mbed.BootstrapServerURI``, ``…ServerCACert``, ``…DeviceCert`` chain,
  ``…DevicePrivateKey``) and the direct LwM2M account (``mbed.LwM2M…``); the endpoint
  name is ``mbed.EndpointName``.
* **The LwM2M Security and Server objects** (Anjay devices, stored by the LwM2M
  acceptor as ``lwm2m.<oid>.<iid>.<rid>`` items): one account per Security instance,
  credentials by Security Mode (``/0/x/2``: 0 PSK, 2 certificate, 3 NoSec), the server
  certificate by Certificate Usage (``/0/x/15``, default 3: the exact server certificate).

What a bootstrap server writes is stored in the second layout (:func:`store_bootstrapped`),
so a device that bootstrapped once registers directly next time, as real devices do.
"""

from __future__ import annotations

import struct
from collections import defaultdict
from dataclasses import dataclass
from typing import Final

from provkit.device.kcm import ItemType, Kcm
from provkit.device.lwm2m import store as lwm2m_store
from provkit.errors import ConnectError, ItemNotFoundError, StorageError
from provkit.lwm2m.senml import Entry
from provkit.params import names
from provkit.server.client import Account, Credentials
from provkit.server.outcome import Failure

_MODES: Final = {0: "psk", 2: "certificate", 3: "nosec", 4: "certificate"}


@dataclass(frozen=True)
class DeviceIdentity:
    """A device's endpoint name and server accounts.

    Attributes:
        endpoint_name: the name it registers with (``None`` when the store does not say).
        accounts: its server accounts (the bootstrap account first).
        layout: ``fcc`` or ``lwm2m``.
    """

    endpoint_name: str | None
    accounts: tuple[Account, ...]
    layout: str

    @property
    def bootstrap_account(self) -> Account | None:
        """The bootstrap server account, if the device has one."""
        return next((a for a in self.accounts if a.bootstrap), None)

    @property
    def server_accounts(self) -> list[Account]:
        """The LwM2M server accounts."""
        return [a for a in self.accounts if not a.bootstrap]


def _config_error(message: str) -> ConnectError:
    return ConnectError(message, failure=Failure.DEVICE_CONFIG, code=Failure.DEVICE_CONFIG.code)


def _text(kcm: Kcm, name: str) -> str:
    return kcm.item_get(name, ItemType.CONFIG).decode("utf-8", "replace").rstrip("\x00")


def _fcc_identity(kcm: Kcm) -> DeviceIdentity:
    raw = kcm.item_get(names.USE_BOOTSTRAP, ItemType.CONFIG)
    use_bootstrap = struct.unpack("<I", raw[:4])[0] if len(raw) >= 4 else int.from_bytes(raw, "little")
    prefix = "Bootstrap" if use_bootstrap else "LwM2M"
    try:
        endpoint = _text(kcm, names.ENDPOINT_NAME)
        uri = _text(kcm, f"mbed.{prefix}ServerURI")
        server_ca = kcm.item_get(f"mbed.{prefix}ServerCACert", ItemType.CERTIFICATE)
        chain = tuple(kcm.cert_chain_get(f"mbed.{prefix}DeviceCert"))
        key = kcm.item_get(f"mbed.{prefix}DevicePrivateKey", ItemType.PRIVATE_KEY)
    except ItemNotFoundError as exc:
        raise _config_error(
            f"the device store lacks {exc.item or exc}: it is not provisioned for {prefix} mode"
        ) from exc
    credentials = Credentials("certificate", chain=chain, private_key=key, server_ca=server_ca)
    account = Account(uri, bool(use_bootstrap), credentials)
    return DeviceIdentity(endpoint, (account,), "fcc")


def accounts_from_entries(entries: list[Entry]) -> list[Account]:
    """The server accounts described by Security and Server object entries (bootstrap first)."""
    security: dict[int, dict[int, object]] = defaultdict(dict)
    servers: dict[int, dict[int, object]] = {}
    for entry in entries:
        oid, iid, rid = entry.ids[:3]
        if oid == 0:
            security[iid][rid] = entry.value
        elif oid == 1:
            servers.setdefault(iid, {})[rid] = entry.value
    by_ssid = {values.get(0): values for values in servers.values()}
    accounts = []
    for iid, values in sorted(security.items()):
        uri, mode = values.get(0), values.get(2)
        if (
            not isinstance(uri, str)
            or not isinstance(mode, int)
            or isinstance(mode, bool)
            or mode not in _MODES
        ):
            continue
        kind = _MODES[mode]
        public, secret, server_key = _bytes(values.get(3)), _bytes(values.get(5)), _bytes(values.get(4))
        usage = values.get(15, 3)
        credentials = Credentials(
            kind,
            chain=(public,) if kind == "certificate" and public else (),
            private_key=secret if kind == "certificate" else None,
            psk_identity=public if kind == "psk" else None,
            psk_key=secret if kind == "psk" else None,
            server_ca=server_key if usage in (0, 2) else None,
            server_certificate=server_key if usage not in (0, 2) else None,
        )
        ssid = values.get(10)
        server = by_ssid.get(ssid, {})
        lifetime, binding = server.get(1), server.get(7)
        accounts.append(
            Account(
                uri,
                values.get(1) is True,
                credentials,
                short_server_id=ssid if isinstance(ssid, int) else None,
                lifetime=lifetime if isinstance(lifetime, int) and not isinstance(lifetime, bool) else None,
                binding=binding if isinstance(binding, str) and binding else "U",
                security_instance=iid,
            )
        )
    return sorted(accounts, key=lambda a: not a.bootstrap)


def _bytes(value: object) -> bytes | None:
    return value if isinstance(value, bytes) and value else None


def _certificate_cn(der: bytes) -> str | None:
    from provkit.crypto import x509

    try:
        return x509.common_name(x509.load_certificate(der))
    except Exception:  # any parse failure means "no name from here"
        return None


def read_identity(kcm: Kcm) -> DeviceIdentity:
    """Read the device's endpoint name and accounts from its storage.

    The LwM2M layout wins when both are present (it holds what a bootstrap wrote).

    Raises:
        ConnectError: the store holds neither layout (``device-config``).
        StorageError: the store is unreadable.
    """
    entries = lwm2m_store.load(kcm)
    fcc: DeviceIdentity | None = None
    if kcm.item_exists(names.USE_BOOTSTRAP, ItemType.CONFIG):
        fcc = _fcc_identity(kcm)
    if entries:
        accounts = accounts_from_entries(entries)
        endpoint = fcc.endpoint_name if fcc else None
        if endpoint is None:
            endpoint = next(
                (
                    _certificate_cn(a.credentials.chain[0])
                    if a.credentials.chain
                    else (a.credentials.psk_identity or b"").decode("utf-8", "replace") or None
                    for a in accounts
                    if a.credentials.chain or a.credentials.psk_identity
                ),
                None,
            )
        if fcc is not None and not any(a.bootstrap for a in accounts):
            accounts = [*fcc.accounts, *accounts]
        if accounts:
            return DeviceIdentity(endpoint, tuple(accounts), "lwm2m")
    if fcc is not None:
        return fcc
    raise _config_error(
        "the device store holds no server account (neither mbed.* items nor an LwM2M Security object)"
    )


def store_bootstrapped(kcm: Kcm, entries: list[Entry]) -> None:
    """Keep what a bootstrap server wrote, replacing the device's earlier server accounts.

    The device's own bootstrap account (a Security instance with ``/0/x/1`` true) stays.

    Raises:
        StorageError: the store refused the items (nothing is changed).
    """
    current = lwm2m_store.load(kcm)
    bootstrap_iids = {e.ids[1] for e in current if e.ids[0] == 0 and e.ids[2] == 1 and e.value is True}
    kept = [e for e in current if e.ids[0] == 0 and e.ids[1] in bootstrap_iids]
    clash = {e.ids[1] for e in entries if e.ids[0] == 0} & bootstrap_iids
    if clash:
        raise StorageError(f"the bootstrap server wrote over the bootstrap account (/0/{min(clash)})")
    merged = sorted([*kept, *entries], key=lambda e: e.ids)
    modes = {
        e.ids[1]: int(e.value) for e in merged if e.ids[0] == 0 and e.ids[2] == 2 and isinstance(e.value, int)
    }
    with kcm.transaction():
        lwm2m_store.wipe(kcm)
        lwm2m_store.store(kcm, merged, modes)
