"""Fast bundle encoding for the per-device hot path.

:func:`provkit.wire.bundle.encode_bundle` checks every item against FCC's rules and
encodes with provkit's strict pure-Python CBOR writer; for a ~2 KB bundle that costs more
than signing the device certificate. The factory side builds every bundle of a
configuration from the same static items, so the :class:`~provkit.factory.builder.BundleBuilder`
runs the full check once (:func:`check_template`) and then encodes each device's bundle
with :func:`encode_prechecked`, which writes the *same bytes* through ``cbor2``'s C
encoder (a test compares both encoders over every bundle shape the builder makes).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import cbor2

from provkit.codes import FcuErrorCode
from provkit.errors import BundleEncodeError, FactoryError
from provkit.wire.bundle import (
    Bundle,
    CertificateChainItem,
    CertificateItem,
    ConfigParam,
    KeyItem,
    check_bundle,
)


def check_template(bundle: Bundle) -> None:
    """Run the wire rules on a representative bundle of a configuration.

    Raises:
        FactoryError: 100 naming the rule a configured item breaks.
    """
    try:
        check_bundle(bundle)
    except BundleEncodeError as exc:
        raise FactoryError.from_code(
            FcuErrorCode.GENERAL, exc.message, hint="an item of the configuration is not acceptable to FCC"
        ) from exc


def _with_prkn(item: dict[str, Any], prkn: str | None) -> dict[str, Any]:
    if prkn is not None:
        item["PrKN"] = prkn
    return item


Item = dict[str, Any]
"""One item map as ``encode_bundle`` writes it (never mutated once built)."""


def param_maps(params: Sequence[ConfigParam]) -> tuple[Item, ...]:
    """Item maps of ``ConfigParams`` entries."""
    return tuple({"Name": p.name} if p.data is None else {"Name": p.name, "Data": p.data} for p in params)


def key_maps(keys: Sequence[KeyItem]) -> tuple[Item, ...]:
    """Item maps of ``Keys`` entries."""
    return tuple({"Name": k.name, "Type": k.type, "Format": k.format, "Data": k.data} for k in keys)


def certificate_maps(certs: Sequence[CertificateItem]) -> tuple[Item, ...]:
    """Item maps of ``Certificates`` entries."""
    return tuple(_with_prkn({"Name": c.name, "Format": "der", "Data": c.data}, c.prkn) for c in certs)


def chain_maps(chains: Sequence[CertificateChainItem]) -> tuple[Item, ...]:
    """Item maps of ``CertificateChains`` entries."""
    return tuple(
        _with_prkn({"Name": c.name, "Format": "der", "DataArray": list(c.certificates)}, c.prkn)
        for c in chains
    )


@dataclass(frozen=True, slots=True)
class ItemGroups:
    """The item maps of a bundle's four item groups.

    A builder makes the maps of its static items once and adds each device's own maps
    in front of them (``own + static``), so per device only a handful of maps are built
    and one C-level ``cbor2.dumps`` writes the whole bundle.
    """

    params: tuple[Item, ...] = ()
    keys: tuple[Item, ...] = ()
    certificates: tuple[Item, ...] = ()
    chains: tuple[Item, ...] = ()

    def __add__(self, other: ItemGroups) -> ItemGroups:
        return ItemGroups(
            self.params + other.params,
            self.keys + other.keys,
            self.certificates + other.certificates,
            self.chains + other.chains,
        )

    @classmethod
    def of(
        cls,
        params: Sequence[ConfigParam] = (),
        keys: Sequence[KeyItem] = (),
        certificates: Sequence[CertificateItem] = (),
        chains: Sequence[CertificateChainItem] = (),
    ) -> ItemGroups:
        """Build the item maps of the given items."""
        return cls(param_maps(params), key_maps(keys), certificate_maps(certificates), chain_maps(chains))


def assemble(
    groups: ItemGroups,
    *,
    sid: str | None = None,
    entropy: bytes | None = None,
    rot: bytes | None = None,
    keep_alive: bool | None = None,
    verify: bool | None = None,
    disable: bool | None = None,
    scheme_version: str = "0.0.1",
) -> bytes:
    """Encode a whole bundle from item maps, in ``encode_bundle``'s group order."""
    top: dict[str, Any] = {"SchemeVersion": scheme_version}
    if sid is not None:
        top["SID"] = sid
    if entropy is not None:
        top["Entropy"] = bytes(entropy)
    if rot is not None:
        top["ROT"] = bytes(rot)
    for key, items in (
        ("ConfigParams", groups.params),
        ("Keys", groups.keys),
        ("Certificates", groups.certificates),
        ("CertificateChains", groups.chains),
    ):
        if items:
            top[key] = list(items)
    for key, flag in (("KpAlvSess", keep_alive), ("Verify", verify), ("Disable", disable)):
        if flag is not None:
            top[key] = int(flag)
    data: bytes = cbor2.dumps(top)
    return data


def encode_prechecked(bundle: Bundle) -> bytes:
    """Encode ``bundle`` exactly as ``encode_bundle`` does, without re-running its checks.

    Only for bundles whose items passed :func:`check_template` (per-device values are
    fixed-name parameters, a generated key and a signed certificate).
    """
    if bundle.csr_requests:
        raise ValueError("CSR requests go through provkit.wire.bundle.encode_bundle")
    groups = ItemGroups.of(bundle.config_params, bundle.keys, bundle.certificates, bundle.certificate_chains)
    return assemble(
        groups,
        sid=bundle.sid,
        entropy=bundle.entropy,
        rot=bundle.rot,
        keep_alive=bundle.keep_alive,
        verify=bundle.verify,
        disable=bundle.disable,
        scheme_version=bundle.scheme_version,
    )
