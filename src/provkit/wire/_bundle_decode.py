"""Device side: strict request-bundle decoding that answers FCC's exact statuses.

Where each check happens (pelion-fcc.md §1.1–§1.8):

* :func:`decode_envelope` — before anything is stored: empty input (3); one
  well-formed CBOR item ending at the end of the buffer, definite lengths only,
  nesting ≤ 16 (20); top level a map (20) of ≤ 12 pairs (20) with text keys (20);
  ``SchemeVersion`` present and equal to ``"0.0.1"`` as text or bytes (24).
* :func:`parse_group` — one top-level pair, called by the handler in wire order:
  unknown group (23), request-side ``Csrs`` (22), wrong CBOR types and missing
  mandatory fields (20), unknown item field (37), unsupported key type or ``pem`` (37),
  Entropy ≠ 48 bytes (3, item ``entropy``), ROT ≠ 16 bytes (3, item ``rot``), flag not
  0/1 (20; ``KpAlvSess`` → 35), more than 5 CSR requests (36).
* :func:`check_session_rules` — after all groups: ``Disable`` with ``KpAlvSess`` (35);
  ``CsrReqs`` without ``SID``, without an explicit ``Verify`` 0, or with ``Disable`` 1 (20).

Deliberate difference from Arm's parser: keys are matched exactly. FCC compares a
received key only over its own length, so ``"Ke"`` would match ``Keys`` there; here it
is an unknown group (23) or field (37).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Final

from provkit.codes import FccStatus
from provkit.errors import BundleDecodeError
from provkit.wire import _bundle_model as m
from provkit.wire.cbor_strict import CborDecodeError, CborMap, CborTag, loads

_ERR: Final = FccStatus.BUNDLE_ERROR


def _bad(message: str, status: FccStatus = _ERR, item: str = "") -> BundleDecodeError:
    return BundleDecodeError(message, fcc_status=status, item=item)


def decode_envelope(data: bytes) -> tuple[tuple[str, object], ...]:
    """Check the outer structure of a request and return its top-level pairs in wire order.

    Args:
        data: the CBOR body of an ``mbedprov`` frame.

    Returns:
        The ``(key, value)`` pairs of the top map, duplicates kept, for :func:`parse_group`.
        Nested maps are :class:`~provkit.wire.cbor_strict.CborMap` objects.

    Raises:
        BundleDecodeError: ``fcc_status`` 3 (empty), 20 (not one definite map of ≤ 12
            text keys) or 24 (``SchemeVersion`` missing or not ``"0.0.1"``).
    """
    if not data:
        raise _bad("empty bundle", FccStatus.INVALID_PARAMETER)
    try:
        top = loads(data, strict=True)
    except CborDecodeError as exc:
        raise _bad(f"bundle is not one well-formed definite-length CBOR item: {exc}") from exc
    if not isinstance(top, CborMap):
        raise _bad("bundle top level is not a CBOR map")
    if len(top) > m.MAX_TOP_LEVEL_KEYS:
        raise _bad(f"bundle has {len(top)} top-level keys; at most {m.MAX_TOP_LEVEL_KEYS} are allowed")
    pairs: list[tuple[str, object]] = []
    for key, value in top:
        if not isinstance(key, str):
            raise _bad(f"top-level key {key!r} is not a text string")
        pairs.append((key, value))
    versions = [value for key, value in pairs if key == m.SCHEME_VERSION_KEY]
    if not versions:
        raise _bad("SchemeVersion is missing", FccStatus.BUNDLE_INVALID_SCHEME)
    for version in versions:
        _check_scheme(version)
    return tuple(pairs)


def _check_scheme(value: object) -> str:
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
    if text != m.SCHEME_VERSION:
        raise _bad(f"unsupported SchemeVersion {value!r}", FccStatus.BUNDLE_INVALID_SCHEME)
    return m.SCHEME_VERSION


def parse_group(key: str, value: object) -> m.Group:
    """Parse one top-level pair of a request into its model.

    Args:
        key: the top-level key (exact match, see the module docstring).
        value: the decoded value as returned by :func:`decode_envelope`.

    Returns:
        The group object (``KeysGroup``, ``FlagGroup``, …).

    Raises:
        BundleDecodeError: with the ``fcc_status`` FCC answers for the defect.
    """
    parser = _GROUP_PARSERS.get(key)
    if parser is None:
        if key == m.CSRS_RESPONSE_KEY:
            raise _bad("Csrs is a response group", FccStatus.BUNDLE_UNSUPPORTED_GROUP)
        raise _bad(f"unknown group {key!r}", FccStatus.BUNDLE_INVALID_GROUP)
    return parser(key, value)


# ---------------------------------------------------------------- field helpers


def _pairs(value: object, what: str) -> Iterable[tuple[object, object]]:
    if isinstance(value, CborMap):
        return value.pairs
    if isinstance(value, Mapping):
        return tuple(value.items())
    raise _bad(f"{what} is not a CBOR map")


def _fields(value: object, what: str, allowed: frozenset[str]) -> dict[str, object]:
    """Collect an item map's fields; unknown field → 37, later duplicates win (FCC loops)."""
    fields: dict[str, object] = {}
    for field, item in _pairs(value, what):
        if not isinstance(field, str):
            raise _bad(f"{what}: field name {field!r} is not text")
        if field not in allowed:
            raise _bad(f"{what}: field {field!r} is not supported", FccStatus.NOT_SUPPORTED)
        fields[field] = item
    return fields


def _text(fields: dict[str, object], field: str, what: str, *, required: bool = True) -> str | None:
    value = fields.get(field)
    if value is None and field not in fields and not required:
        return None
    if not isinstance(value, str):
        raise _bad(f"{what}: {field} must be a text string")
    return value


def _bytes(fields: dict[str, object], field: str, what: str) -> bytes:
    # A missing Data is stored as an empty item; KCM then refuses it as ITEM_IS_EMPTY.
    value = fields.get(field, b"")
    if not isinstance(value, bytes):
        raise _bad(f"{what}: {field} must be a byte string")
    return value


def _uint(value: object, what: str) -> int:
    if type(value) is not int or value < 0:
        raise _bad(f"{what} must be an unsigned integer")
    return value


def _check_format(fields: dict[str, object], what: str) -> None:
    if m.FORMAT_FIELD not in fields:
        return
    fmt = fields[m.FORMAT_FIELD]
    if not isinstance(fmt, str):
        raise _bad(f"{what}: Format must be a text string")
    if fmt == m.PEM_FORMAT:
        raise _bad(f"{what}: Format 'pem' is not supported", FccStatus.NOT_SUPPORTED)
    if fmt != m.DER_FORMAT:
        raise _bad(f"{what}: unknown Format {fmt!r}")


def _array(value: object, what: str) -> list[object]:
    if not isinstance(value, list):
        raise _bad(f"{what} is not a CBOR array")
    return value


# ---------------------------------------------------------------- group parsers

_KEY_FIELDS: Final = frozenset({m.NAME_FIELD, m.TYPE_FIELD, m.FORMAT_FIELD, m.DATA_FIELD})
_CERT_FIELDS: Final = frozenset({m.NAME_FIELD, m.FORMAT_FIELD, m.DATA_FIELD, m.PRKN_FIELD})
_CHAIN_FIELDS: Final = frozenset({m.NAME_FIELD, m.FORMAT_FIELD, m.DATA_ARRAY_FIELD, m.PRKN_FIELD})
_CONFIG_FIELDS: Final = frozenset({m.NAME_FIELD, m.DATA_FIELD})
_CSR_FIELDS: Final = frozenset({m.PRKN_FIELD, m.SUBJECT_FIELD, m.MD_FIELD, m.EXT_FIELD, m.SM_FIELD})
_SM_FIELDS: Final = frozenset({m.SM_PRIVATE_FIELD, m.SM_PUBLIC_FIELD})


def _parse_key(value: object) -> m.KeyItem:
    f = _fields(value, "Keys item", _KEY_FIELDS)
    name = _text(f, m.NAME_FIELD, "Keys item")
    what = f"key {name!r}"
    key_type = _text(f, m.TYPE_FIELD, what)
    if key_type not in m.KEY_TYPES:
        raise _bad(f"{what}: key type {key_type!r} is not supported", FccStatus.NOT_SUPPORTED)
    _check_format(f, what)
    assert name is not None and key_type is not None
    return m.KeyItem(name, key_type, _bytes(f, m.DATA_FIELD, what))


def _parse_cert(value: object) -> m.CertificateItem:
    f = _fields(value, "Certificates item", _CERT_FIELDS)
    name = _text(f, m.NAME_FIELD, "Certificates item")
    what = f"certificate {name!r}"
    _check_format(f, what)
    assert name is not None
    return m.CertificateItem(
        name, _bytes(f, m.DATA_FIELD, what), _text(f, m.PRKN_FIELD, what, required=False)
    )


def _parse_chain(value: object) -> m.CertificateChainItem:
    f = _fields(value, "CertificateChains item", _CHAIN_FIELDS)
    name = _text(f, m.NAME_FIELD, "CertificateChains item")
    what = f"chain {name!r}"
    _check_format(f, what)
    ders = []
    # Chain length limits (1..5) are KCM's to enforce at store time (status 16).
    for der in _array(f.get(m.DATA_ARRAY_FIELD, []), f"{what} DataArray"):
        if not isinstance(der, bytes):
            raise _bad(f"{what}: DataArray entries must be byte strings")
        ders.append(der)
    assert name is not None
    return m.CertificateChainItem(name, tuple(ders), _text(f, m.PRKN_FIELD, what, required=False))


def _parse_config(value: object) -> m.ConfigParam:
    f = _fields(value, "ConfigParams item", _CONFIG_FIELDS)
    name = _text(f, m.NAME_FIELD, "ConfigParams item")
    assert name is not None
    if m.DATA_FIELD not in f:
        return m.ConfigParam(name, None)  # FCC stores an empty item
    data = f[m.DATA_FIELD]
    if isinstance(data, CborTag) and data.tag == 2 and isinstance(data.value, bytes):
        data = int.from_bytes(data.value, "big")  # positive bignum, as fcc_bundle_get_variant
    if isinstance(data, bool) or not isinstance(data, int | str | bytes):
        raise _bad(f"config param {name!r}: Data has an unsupported CBOR type")
    return m.ConfigParam(name, data)


def _parse_csr(value: object) -> m.CsrRequest:
    f = _fields(value, "CsrReqs item", _CSR_FIELDS)
    prkn = _text(f, m.PRKN_FIELD, "CsrReqs item")
    what = f"CSR {prkn!r}"
    subject = _text(f, m.SUBJECT_FIELD, what)
    md = _uint(f.get(m.MD_FIELD), f"{what}: MD")
    if md == 0:
        raise _bad(f"{what}: MD must be non-zero")
    key_usage = ext_key_usage = None
    if m.EXT_FIELD in f:
        for ext_key, ext_value in _pairs(f[m.EXT_FIELD], f"{what}: Ext"):
            # Trust and unknown extension keys are skipped, as FCC does.
            if ext_key == m.KU_FIELD:
                key_usage = _uint(ext_value, f"{what}: KU")
            elif ext_key == m.EKU_FIELD:
                ext_key_usage = _uint(ext_value, f"{what}: EKU")
    storage = None
    if m.SM_FIELD in f:
        sm = _fields(f[m.SM_FIELD], f"{what}: SM", _SM_FIELDS)
        private = _text(sm, m.SM_PRIVATE_FIELD, f"{what}: SM")
        public = _text(sm, m.SM_PUBLIC_FIELD, f"{what}: SM", required=False)
        if private not in m.STORAGE_MEDIA or public not in (*m.STORAGE_MEDIA, None):
            raise _bad(f"{what}: storage medium must be 'SE' or 'Device'")
        assert private is not None
        storage = m.StorageMedium(private, public)
    assert prkn is not None and subject is not None
    return m.CsrRequest(prkn, subject, md, key_usage, ext_key_usage, storage)


def _items(key: str, value: object) -> list[object]:
    return _array(value, f"{key} group")


def _group_keys(key: str, value: object) -> m.Group:
    return m.KeysGroup(tuple(_parse_key(v) for v in _items(key, value)))


def _group_certs(key: str, value: object) -> m.Group:
    return m.CertificatesGroup(tuple(_parse_cert(v) for v in _items(key, value)))


def _group_chains(key: str, value: object) -> m.Group:
    return m.CertificateChainsGroup(tuple(_parse_chain(v) for v in _items(key, value)))


def _group_config(key: str, value: object) -> m.Group:
    return m.ConfigParamsGroup(tuple(_parse_config(v) for v in _items(key, value)))


def _group_csrs(key: str, value: object) -> m.Group:
    reqs = _items(key, value)
    if len(reqs) > m.MAX_CSR_REQUESTS:
        raise _bad(f"{len(reqs)} CSR requests; at most 5 are supported", FccStatus.TOO_MANY_CSR_REQUESTS)
    return m.CsrReqsGroup(tuple(_parse_csr(v) for v in reqs))


def _group_entropy(key: str, value: object) -> m.Group:
    if not isinstance(value, bytes):
        raise _bad("Entropy must be a byte string")
    if len(value) != m.ENTROPY_SIZE:
        raise _bad(
            f"Entropy must be {m.ENTROPY_SIZE} bytes, got {len(value)}",
            FccStatus.INVALID_PARAMETER,
            "entropy",
        )
    return m.EntropyGroup(value)


def _group_rot(key: str, value: object) -> m.Group:
    if not isinstance(value, bytes):
        raise _bad("ROT must be a byte string")
    if len(value) != m.ROT_SIZE:
        raise _bad(f"ROT must be {m.ROT_SIZE} bytes, got {len(value)}", FccStatus.INVALID_PARAMETER, "rot")
    return m.RotGroup(value)


def _group_flag(key: str, value: object) -> m.Group:
    if type(value) is int and value in (0, 1):
        return m.FlagGroup(key, bool(value))
    status = FccStatus.BUNDLE_INVALID_KEEP_ALIVE_SESSION_STATUS if key == m.KEEP_ALIVE_KEY else _ERR
    raise _bad(f"{key} must be the integer 0 or 1, got {value!r}", status)


def _group_sid(key: str, value: object) -> m.Group:
    if not isinstance(value, str):
        raise _bad("SID must be a text string")
    return m.SidGroup(value)


def _group_scheme(key: str, value: object) -> m.Group:
    return m.SchemeVersionGroup(_check_scheme(value))


_GROUP_PARSERS: Final[dict[str, Callable[[str, object], m.Group]]] = {
    m.SCHEME_VERSION_KEY: _group_scheme,
    m.KEYS_KEY: _group_keys,
    m.CERTIFICATES_KEY: _group_certs,
    m.CERTIFICATE_CHAINS_KEY: _group_chains,
    m.CONFIG_PARAMS_KEY: _group_config,
    m.CSR_REQS_KEY: _group_csrs,
    m.ENTROPY_KEY: _group_entropy,
    m.ROT_KEY: _group_rot,
    m.VERIFY_KEY: _group_flag,
    m.DISABLE_KEY: _group_flag,
    m.KEEP_ALIVE_KEY: _group_flag,
    m.SID_KEY: _group_sid,
}
