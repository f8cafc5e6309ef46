"""Factory side: build the CBOR bytes of a request bundle, refusing what FCC would refuse."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Final

from provkit.errors import BundleEncodeError
from provkit.wire import _bundle_model as m
from provkit.wire.cbor_strict import dumps

FOUR_BYTE_NAMES: Final = frozenset({"mbed.UseBootstrap", "mbed.MemoryTotalKB", "mbed.FirstToClaim"})
"""Config params FCC stores as 4 bytes; they must be CBOR integers below 2**32.

Mirrors ``provkit.params.FOUR_BYTE_INTEGER_PARAMS`` (the pure layers may not import each
other; a test keeps the two equal)."""

CURRENT_TIME_NAME: Final = "mbed.CurrentTime"
_NAME_RE: Final = re.compile(r"[A-Za-z0-9._-]{1,100}")
_INT64_MIN: Final = -(1 << 63)

# Wire order of the top map. SchemeVersion and SID first so a reader sees them early;
# ConfigParams before certificates so mbed.CurrentTime is set before anything else is
# stored; flags last. FCC looks Entropy/ROT up by key, so their position is free.
_GROUP_ORDER: Final = (
    m.SCHEME_VERSION_KEY,
    m.SID_KEY,
    m.ENTROPY_KEY,
    m.ROT_KEY,
    m.CONFIG_PARAMS_KEY,
    m.KEYS_KEY,
    m.CERTIFICATES_KEY,
    m.CERTIFICATE_CHAINS_KEY,
    m.CSR_REQS_KEY,
    m.KEEP_ALIVE_KEY,
    m.VERIFY_KEY,
    m.DISABLE_KEY,
)


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
    groups: dict[str, object] = {m.SCHEME_VERSION_KEY: bundle.scheme_version}
    if bundle.sid is not None:
        groups[m.SID_KEY] = bundle.sid
    if bundle.entropy is not None:
        groups[m.ENTROPY_KEY] = bytes(bundle.entropy)
    if bundle.rot is not None:
        groups[m.ROT_KEY] = bytes(bundle.rot)
    if bundle.config_params:
        groups[m.CONFIG_PARAMS_KEY] = [_config_map(p) for p in bundle.config_params]
    if bundle.keys:
        groups[m.KEYS_KEY] = [
            {m.NAME_FIELD: k.name, m.TYPE_FIELD: k.type, m.FORMAT_FIELD: k.format, m.DATA_FIELD: k.data}
            for k in bundle.keys
        ]
    if bundle.certificates:
        groups[m.CERTIFICATES_KEY] = [
            _with_prkn({m.NAME_FIELD: c.name, m.FORMAT_FIELD: m.DER_FORMAT, m.DATA_FIELD: c.data}, c.prkn)
            for c in bundle.certificates
        ]
    if bundle.certificate_chains:
        groups[m.CERTIFICATE_CHAINS_KEY] = [
            _with_prkn(
                {
                    m.NAME_FIELD: c.name,
                    m.FORMAT_FIELD: m.DER_FORMAT,
                    m.DATA_ARRAY_FIELD: list(c.certificates),
                },
                c.prkn,
            )
            for c in bundle.certificate_chains
        ]
    if bundle.csr_requests:
        groups[m.CSR_REQS_KEY] = [_csr_map(r) for r in bundle.csr_requests]
    for key, flag in (
        (m.KEEP_ALIVE_KEY, bundle.keep_alive),
        (m.VERIFY_KEY, bundle.verify),
        (m.DISABLE_KEY, bundle.disable),
    ):
        if flag is not None:
            groups[key] = int(flag)  # FCC reads flags as integers, never CBOR true/false
    ordered = {key: groups[key] for key in _GROUP_ORDER if key in groups}
    return dumps(ordered)


def _with_prkn(item: dict[str, object], prkn: str | None) -> dict[str, object]:
    if prkn is not None:
        item[m.PRKN_FIELD] = prkn
    return item


def _config_map(param: m.ConfigParam) -> dict[str, object]:
    item: dict[str, object] = {m.NAME_FIELD: param.name}
    if param.data is not None:
        item[m.DATA_FIELD] = param.data
    return item


def _csr_map(req: m.CsrRequest) -> dict[str, object]:
    item: dict[str, object] = {m.PRKN_FIELD: req.prkn, m.SUBJECT_FIELD: req.subject, m.MD_FIELD: req.md}
    ext: dict[str, object] = {}
    if req.key_usage is not None:
        ext[m.KU_FIELD] = req.key_usage
    if req.ext_key_usage is not None:
        ext[m.EKU_FIELD] = req.ext_key_usage
    if ext:
        item[m.EXT_FIELD] = ext
    if req.storage is not None:
        sm: dict[str, object] = {m.SM_PRIVATE_FIELD: req.storage.private}
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
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
        raise _fail(f"{what} name {name!r} is not a valid KCM name (1-100 chars of A-Z a-z 0-9 . - _)")


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
    if bundle.disable and bundle.keep_alive:
        raise _fail("Disable=1 cannot be combined with KpAlvSess=1 (FCC status 35)")
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
    if param.name in FOUR_BYTE_NAMES and not (isinstance(data, int) and 0 <= data < 1 << 32):
        raise _fail(f"config param {param.name!r} must be an integer in 0..2**32-1 (stored as 4 bytes)")
    if param.name == CURRENT_TIME_NAME and not (isinstance(data, int) and 0 <= data < 1 << 64):
        raise _fail(f"{CURRENT_TIME_NAME} must be a non-negative integer (Unix seconds)")
    if isinstance(data, int) and data < _INT64_MIN:
        # FCC reads negatives as int64 and knows no tag 3 (negative bignum).
        raise _fail(f"config param {param.name!r}: negative integers must fit in int64")


def _check_csr_requests(bundle: m.Bundle, unique: Callable[[str, str], None]) -> None:
    reqs = bundle.csr_requests
    if not reqs:
        return
    if len(reqs) > m.MAX_CSR_REQUESTS:
        raise _fail(f"at most {m.MAX_CSR_REQUESTS} CSR requests are allowed, got {len(reqs)}")
    if bundle.sid is None:
        raise _fail("CsrReqs require a SID")
    if bundle.verify is None or bundle.verify:
        raise _fail("CsrReqs require Verify explicitly set to False")
    if bundle.disable:
        raise _fail("CsrReqs cannot be combined with Disable=1")
    for req in reqs:
        check_name(req.prkn, "CSR PrKN")
        subject: object = req.subject  # typed str, but callers may pass anything at runtime
        md: object = req.md
        if not isinstance(subject, str) or not subject:
            raise _fail(f"CSR {req.prkn!r}: subject must be non-empty text")
        if isinstance(md, bool) or not isinstance(md, int) or not 1 <= md < 1 << 64:
            raise _fail(f"CSR {req.prkn!r}: MD must be a non-zero unsigned integer")
        for value, what in ((req.key_usage, "KU"), (req.ext_key_usage, "EKU")):
            if value is not None and (isinstance(value, bool) or not 0 <= value < 1 << 64):
                raise _fail(f"CSR {req.prkn!r}: {what} must be an unsigned 64-bit bitmask")
        if req.storage is not None:
            media = (req.storage.private, req.storage.public)
            if media[0] not in m.STORAGE_MEDIA or media[1] not in (*m.STORAGE_MEDIA, None):
                raise _fail(f"CSR {req.prkn!r}: storage medium must be 'SE' or 'Device'")
        unique(m.ECC_PRIVATE, req.prkn)
