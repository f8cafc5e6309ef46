"""Factory side: build the CBOR bytes of a request bundle, refusing what FCC would refuse.

One encoder with two entries. :func:`encode_bundle` checks every item against FCC's
rules, then writes. :class:`BundleTemplate` is the fast path for a factory line, where
every device's bundle carries the same static items next to a few of its own: the
rules are checked once, on a sample of the template's shape, and each device's bundle
is then written without re-checking, its static item maps built once. Both write the
same map through the same writer (:func:`provkit.cbor.dumps_prechecked`), which is safe
because nothing reaches it unchecked.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

from provkit.cbor import dumps_prechecked
from provkit.errors import BundleEncodeError
from provkit.params import FOUR_BYTE_INTEGER_PARAMS, NAME_RULE, is_kcm_name
from provkit.params import names as n
from provkit.wire import _bundle_model as m
from provkit.wire.session import session_violation

_INT64_MIN: Final = -(1 << 63)

Item = dict[str, object]
"""One item map as the encoder writes it (never mutated once built)."""


def encode_bundle(bundle: m.Bundle) -> bytes:
    """Encode a request bundle as FCC (client ≥ 3.4.0) expects it.

    The result is one definite-length CBOR map with text keys (at most 12),
    ``SchemeVersion`` ``"0.0.1"``, flags as integers 0/1, DER, entropy and root of trust
    as byte strings, and never ``ACL``, ``Format`` in ``ConfigParams`` or ``pem``.
    Empty groups and unset flags are left out.

    Args:
        bundle: the bundle to encode.

    Returns:
        The CBOR bytes (the body of an ``mbedprov`` frame).

    Raises:
        BundleEncodeError: the bundle breaks a rule FCC or KCM enforces (bad name,
            size, type, duplicate item, too many CSR requests, illegal flag mix, …).
    """
    check_bundle(bundle)
    return dumps_prechecked(_top_map(bundle, _ItemMaps.of(bundle)))


def bundle_map(bundle: m.Bundle) -> dict[str, object]:
    """The top-level map :func:`encode_bundle` writes, in wire order (not checked)."""
    return _top_map(bundle, _ItemMaps.of(bundle))


def join(own: m.Bundle, static: m.Bundle) -> m.Bundle:
    """``own``'s flags, SID, entropy and ROT, with ``own``'s items followed by ``static``'s."""
    return m.Bundle(
        keys=(*own.keys, *static.keys),
        certificates=(*own.certificates, *static.certificates),
        certificate_chains=(*own.certificate_chains, *static.certificate_chains),
        config_params=(*own.config_params, *static.config_params),
        csr_requests=(*own.csr_requests, *static.csr_requests),
        entropy=own.entropy,
        rot=own.rot,
        verify=own.verify,
        disable=own.disable,
        keep_alive=own.keep_alive,
        sid=own.sid,
        scheme_version=own.scheme_version,
    )


class BundleTemplate:
    """Many bundles sharing static items: checked once, then written without re-checking.

    Args:
        static: the items every bundle carries (its flags, SID, entropy and ROT are not used).
        sample: one device's own part, of the shape every later one has: the same item
            names, the same kinds of values, the same flags.

    Raises:
        BundleEncodeError: ``sample`` joined with ``static`` breaks a rule FCC enforces.
    """

    def __init__(self, static: m.Bundle, sample: m.Bundle) -> None:
        check_bundle(join(sample, static))
        self.static = static
        self._static_maps = _ItemMaps.of(static)

    def encode(self, own: m.Bundle) -> bytes:
        """Write ``own`` joined with the static items (see :func:`join`), unchecked.

        Only for ``own`` parts of the sample's shape: per-device values of the same
        parameters, a generated key and a signed certificate chain of the same depth.
        """
        return dumps_prechecked(_top_map(own, _ItemMaps.of(own) + self._static_maps))


# ---------------------------------------------------------------- the map


@dataclass(frozen=True, slots=True)
class _ItemMaps:
    """The item maps of a bundle's groups, in the encoder's group order."""

    params: tuple[Item, ...] = ()
    keys: tuple[Item, ...] = ()
    certificates: tuple[Item, ...] = ()
    chains: tuple[Item, ...] = ()
    csrs: tuple[Item, ...] = ()

    def __add__(self, other: _ItemMaps) -> _ItemMaps:
        return _ItemMaps(
            self.params + other.params,
            self.keys + other.keys,
            self.certificates + other.certificates,
            self.chains + other.chains,
            self.csrs + other.csrs,
        )

    @classmethod
    def of(cls, bundle: m.Bundle) -> _ItemMaps:
        """Build the item maps of ``bundle``'s items."""
        return cls(
            tuple(_config_map(p) for p in bundle.config_params),
            tuple(_key_map(k) for k in bundle.keys),
            tuple(_certificate_map(c) for c in bundle.certificates),
            tuple(_chain_map(c) for c in bundle.certificate_chains),
            tuple(_csr_map(r) for r in bundle.csr_requests),
        )


def _top_map(bundle: m.Bundle, maps: _ItemMaps) -> dict[str, object]:
    # Wire order of the top map. SchemeVersion and SID first so a reader sees them early;
    # ConfigParams before certificates so mbed.CurrentTime is set before anything else is
    # stored; flags last. FCC looks Entropy/ROT up by key, so their position is free.
    top: dict[str, object] = {m.SCHEME_VERSION_KEY: bundle.scheme_version}
    if bundle.sid is not None:
        top[m.SID_KEY] = bundle.sid
    if bundle.entropy is not None:
        top[m.ENTROPY_KEY] = bytes(bundle.entropy)
    if bundle.rot is not None:
        top[m.ROT_KEY] = bytes(bundle.rot)
    groups: tuple[tuple[str, Sequence[Item]], ...] = (
        (m.CONFIG_PARAMS_KEY, maps.params),
        (m.KEYS_KEY, maps.keys),
        (m.CERTIFICATES_KEY, maps.certificates),
        (m.CERTIFICATE_CHAINS_KEY, maps.chains),
        (m.CSR_REQS_KEY, maps.csrs),
    )
    for key, items in groups:
        if items:
            top[key] = list(items)
    for flag, value in (
        (m.KEEP_ALIVE_KEY, bundle.keep_alive),
        (m.VERIFY_KEY, bundle.verify),
        (m.DISABLE_KEY, bundle.disable),
    ):
        if value is not None:
            top[str(flag)] = int(value)  # FCC reads flags as integers, never CBOR true/false
    return top


def _with_prkn(item: Item, prkn: str | None) -> Item:
    if prkn is not None:
        item[m.PRKN_FIELD] = prkn
    return item


def _config_map(param: m.ConfigParam) -> Item:
    if param.data is None:
        return {m.NAME_FIELD: param.name}
    return {m.NAME_FIELD: param.name, m.DATA_FIELD: param.data}


def _key_map(key: m.KeyItem) -> Item:
    return {
        m.NAME_FIELD: key.name,
        m.TYPE_FIELD: key.type,
        m.FORMAT_FIELD: key.format,
        m.DATA_FIELD: key.data,
    }


def _certificate_map(cert: m.CertificateItem) -> Item:
    return _with_prkn(
        {m.NAME_FIELD: cert.name, m.FORMAT_FIELD: m.DER_FORMAT, m.DATA_FIELD: cert.data}, cert.prkn
    )


def _chain_map(chain: m.CertificateChainItem) -> Item:
    item: Item = {
        m.NAME_FIELD: chain.name,
        m.FORMAT_FIELD: m.DER_FORMAT,
        m.DATA_ARRAY_FIELD: list(chain.certificates),
    }
    return _with_prkn(item, chain.prkn)


def _csr_map(req: m.CsrRequest) -> Item:
    item: Item = {m.PRKN_FIELD: req.prkn, m.SUBJECT_FIELD: req.subject, m.MD_FIELD: req.md}
    ext: Item = {}
    if req.key_usage is not None:
        ext[m.KU_FIELD] = req.key_usage
    if req.ext_key_usage is not None:
        ext[m.EKU_FIELD] = req.ext_key_usage
    if ext:
        item[m.EXT_FIELD] = ext
    if req.storage is not None:
        sm: Item = {m.SM_PRIVATE_FIELD: req.storage.private}
        if req.storage.public is not None:
            sm[m.SM_PUBLIC_FIELD] = req.storage.public
        item[m.SM_FIELD] = sm
    return item


# ---------------------------------------------------------------- validation


def _fail(message: str) -> BundleEncodeError:
    return BundleEncodeError(message)


def check_name(name: object, what: str) -> None:
    """Check a KCM item name: 1–100 characters from ``A–Z a–z 0–9 . - _``.

    Raises:
        BundleEncodeError: KCM would answer FILE_NAME_TOO_LONG or FILE_NAME_INVALID.
    """
    if not is_kcm_name(name):
        raise _fail(f"{what} name {name!r} is not a valid KCM name ({NAME_RULE})")


def _check_bytes(data: object, what: str, size: int | None = None) -> None:
    if not isinstance(data, bytes) or not data:
        raise _fail(f"{what} must be non-empty bytes")
    if size is not None and len(data) != size:
        raise _fail(f"{what} must be exactly {size} bytes, got {len(data)}")


def _check_flag(value: object, what: str) -> None:
    if value is not None and value not in (0, 1):
        raise _fail(f"{what} must be a boolean (0/1), got {value!r}")


def check_bundle(bundle: m.Bundle) -> None:
    """Apply every rule :func:`encode_bundle` enforces, without encoding.

    Raises:
        BundleEncodeError: on the first broken rule.
    """
    if bundle.scheme_version != m.SCHEME_VERSION:
        raise _fail(f"scheme version must be {m.SCHEME_VERSION!r}, got {bundle.scheme_version!r}")
    if bundle.entropy is not None:
        _check_bytes(bundle.entropy, "Entropy", m.ENTROPY_SIZE)
    if bundle.rot is not None:
        _check_bytes(bundle.rot, "ROT", m.ROT_SIZE)
    for flag, what in (
        (bundle.verify, "Verify"),
        (bundle.disable, "Disable"),
        (bundle.keep_alive, "KpAlvSess"),
    ):
        _check_flag(flag, what)
    if bundle.sid is not None and not isinstance(bundle.sid, str):
        raise _fail("SID must be text")
    violation = session_violation(bundle.session, csr_requested=bool(bundle.csr_requests))
    if violation is not None:
        raise _fail(f"{violation.reason} (FCC answers status {int(violation.status)})")
    seen: set[tuple[str, str]] = set()

    def unique(kind: str, name: str) -> None:
        # KCM keeps one namespace per item type; a repeated name fails with FILE_EXIST.
        if (kind, name) in seen:
            raise _fail(f"duplicate {kind} item {name!r}")
        seen.add((kind, name))

    for key in bundle.keys:
        check_name(key.name, "Keys")
        if key.type not in m.KEY_TYPES:
            raise _fail(f"key {key.name!r}: type must be ECCPrivate or ECCPublic, got {key.type!r}")
        if key.format != m.DER_FORMAT:
            raise _fail(f"key {key.name!r}: format must be 'der', got {key.format!r}")
        _check_bytes(key.data, f"key {key.name!r} data")
        unique(key.type, key.name)
    for cert in bundle.certificates:
        check_name(cert.name, "Certificates")
        _check_bytes(cert.data, f"certificate {cert.name!r} data")
        if cert.prkn is not None:
            check_name(cert.prkn, "PrKN")
        unique("certificate", cert.name)
    for chain in bundle.certificate_chains:
        check_name(chain.name, "CertificateChains")
        if not 1 <= len(chain.certificates) <= m.MAX_CHAIN_LENGTH:
            raise _fail(f"chain {chain.name!r} must hold 1 to {m.MAX_CHAIN_LENGTH} certificates")
        for index, der in enumerate(chain.certificates):
            _check_bytes(der, f"chain {chain.name!r} certificate {index}")
        if chain.prkn is not None:
            check_name(chain.prkn, "PrKN")
        unique("certificate", chain.name)
    for param in bundle.config_params:
        _check_config_param(param)
        unique("config", param.name)
    _check_csr_requests(bundle, unique)


def _check_config_param(param: m.ConfigParam) -> None:
    check_name(param.name, "ConfigParams")
    data = param.data
    if isinstance(data, bool) or not isinstance(data, int | str | bytes | None):
        raise _fail(f"config param {param.name!r}: data must be int, str, bytes or None")
    if param.name in FOUR_BYTE_INTEGER_PARAMS and not (isinstance(data, int) and 0 <= data < 1 << 32):
        raise _fail(f"config param {param.name!r} must be an integer in 0..2**32-1 (stored as 4 bytes)")
    if param.name == n.CURRENT_TIME and not (isinstance(data, int) and 0 <= data < 1 << 64):
        raise _fail(f"{n.CURRENT_TIME} must be a non-negative integer (Unix seconds)")
    if isinstance(data, int) and data < _INT64_MIN:
        # FCC reads negatives as int64 and knows no tag 3 (negative bignum).
        raise _fail(f"config param {param.name!r}: negative integers must fit in int64")


def _check_csr_requests(bundle: m.Bundle, unique: Callable[[str, str], None]) -> None:
    reqs = bundle.csr_requests
    if not reqs:
        return
    if len(reqs) > m.MAX_CSR_REQUESTS:
        raise _fail(f"at most {m.MAX_CSR_REQUESTS} CSR requests are allowed, got {len(reqs)}")
    for req in reqs:
        check_name(req.prkn, "CSR PrKN")
        subject: object = req.subject  # typed str, but callers may pass anything at runtime
        md: object = req.md
        if not isinstance(subject, str) or not subject:
            raise _fail(f"CSR {req.prkn!r}: subject must be non-empty text")
        if isinstance(md, bool) or not isinstance(md, int) or not 1 <= md < 1 << 64:
            raise _fail(f"CSR {req.prkn!r}: MD must be a non-zero unsigned integer")
        usages: tuple[tuple[object, str], ...] = ((req.key_usage, "KU"), (req.ext_key_usage, "EKU"))
        for value, what in usages:
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 1 << 64
            ):
                raise _fail(f"CSR {req.prkn!r}: {what} must be an unsigned 64-bit bitmask")
        if req.storage is not None:
            media = (req.storage.private, req.storage.public)
            if media[0] not in m.STORAGE_MEDIA or media[1] not in (*m.STORAGE_MEDIA, None):
                raise _fail(f"CSR {req.prkn!r}: storage medium must be 'SE' or 'Device'")
        unique(m.ECC_PRIVATE, req.prkn)
