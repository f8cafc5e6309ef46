"""Device side: strict request-bundle decoding that answers FCC's exact statuses.

Where each check happens (pelion-fcc.md §1.1–§1.8):

* :func:`decode_envelope` — before anything is stored: empty input (3); one
  well-formed CBOR item ending at the end of the buffer, definite lengths only,
  nesting ≤ 16 (20); top level a map (20) of ≤ 12 pairs (20) with text keys (20);
  ``SchemeVersion`` present and equal to ``"0.0.1"`` as text or bytes (24).
* :func:`parse_group` — one top-level pair, called by the handler in wire order:
  unknown group (23), request-side ``Csrs`` (22); inside an item map, pairs in wire
  order: unknown field (37), wrong CBOR type (20), then missing mandatory fields (20),
  a chain of 0 or more than 5 certificates (20), unsupported key type or a ``Format``
  other than ``der`` (37). Entropy ≠ 48 bytes (3, item ``entropy``), ROT ≠ 16 bytes
  (3, item ``rot``), flag not 0/1 (20; ``KpAlvSess`` → 35), more than 5 CSR requests (36).
  Parse failures answer ``General error:`` plus the name FCC stores with them: the flag
  or ``SID`` key, ``entropy``/``rot``, or the certificate / config param name for a bad
  field that follows its ``Name``.
* :func:`check_session_rules` — after all groups: ``Disable`` with ``KpAlvSess`` (35);
  ``CsrReqs`` without ``SID``, without an explicit ``Verify`` 0, or with ``Disable`` 1 (20).
  FCC only remembers ``CsrReqs`` in the wire-order loop and parses it after these
  rules, so the device handler calls :func:`parse_group` for it last.

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
from provkit.wire.session import SessionFlag

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
    # FCC looks the key up once (cbor_value_map_find_value): only the first one counts.
    _check_scheme(versions[0])
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
# FCC walks each item map in wire order and fails at the first bad pair, so the parsers
# below do too. A bad value stores the item's name in the InfoMessage
# ("General error:<name>") only where FCC passes it (certificate fields after Name,
# config Data after Name); key and CSR fields store no name.


def _pairs(value: object, what: str) -> Iterable[tuple[object, object]]:
    if isinstance(value, CborMap):
        return value.pairs
    if isinstance(value, Mapping):
        return tuple(value.items())
    raise _bad(f"{what} is not a CBOR map")


def _field_names(value: object, what: str) -> Iterable[tuple[str, object]]:
    """The item map's pairs in wire order; a non-text field name is 20."""
    for field, item in _pairs(value, what):
        if not isinstance(field, str):
            raise _bad(f"{what}: field name {field!r} is not text")
        yield field, item


def _unsupported(what: str, field: str) -> BundleDecodeError:
    return _bad(f"{what}: field {field!r} is not supported", FccStatus.NOT_SUPPORTED)


def _as_text(value: object, what: str, item: str = "") -> str:
    if not isinstance(value, str):
        raise _bad(f"{what} must be a text string", item=item)
    return value


def _as_bytes(value: object, what: str, item: str = "") -> bytes:
    if not isinstance(value, bytes):
        raise _bad(f"{what} must be a byte string", item=item)
    return value


def _uint(value: object, what: str) -> int:
    if type(value) is not int or value < 0:
        raise _bad(f"{what} must be an unsigned integer")
    return value


def _check_format(fmt: str | None, what: str) -> None:
    # FCC compares Format with "der" after reading every field; anything else (pem
    # included) is NOT_SUPPORTED. An absent Format passes, as in FCC.
    if fmt is not None and fmt != m.DER_FORMAT:
        raise _bad(f"{what}: Format {fmt!r} is not supported (only 'der')", FccStatus.NOT_SUPPORTED)


def _array(value: object, what: str) -> list[object]:
    if not isinstance(value, list):
        raise _bad(f"{what} is not a CBOR array")
    return value


# ---------------------------------------------------------------- group parsers


def _parse_key(value: object) -> m.KeyItem:
    what = "Keys item"
    name = key_type = fmt = None
    data = b""  # a missing Data is stored as an empty item; KCM refuses it as ITEM_IS_EMPTY
    for field, item in _field_names(value, what):
        if field == m.NAME_FIELD:
            name = _as_text(item, f"{what}: Name")
        elif field == m.TYPE_FIELD:
            key_type = _as_text(item, f"{what}: Type")
        elif field == m.FORMAT_FIELD:
            fmt = _as_text(item, f"{what}: Format")
        elif field == m.DATA_FIELD:
            data = _as_bytes(item, f"{what}: Data")
        else:
            raise _unsupported(what, field)
    if name is None or key_type is None:
        raise _bad(f"{what}: Name and Type are mandatory")
    if key_type not in m.KEY_TYPES:
        raise _bad(f"key {name!r}: key type {key_type!r} is not supported", FccStatus.NOT_SUPPORTED)
    _check_format(fmt, f"key {name!r}")
    return m.KeyItem(name, key_type, data)


def _parse_certificate_fields(value: object, chain: bool) -> tuple[str, list[bytes], str | None]:
    """One ``Certificates`` (``Data``) or ``CertificateChains`` (``DataArray``) map, as FCC reads both."""
    what = "CertificateChains item" if chain else "Certificates item"
    data_field = m.DATA_ARRAY_FIELD if chain else m.DATA_FIELD
    name: str | None = None
    prkn = fmt = None
    ders: list[bytes] = []
    for field, item in _field_names(value, what):
        named = name or ""
        if field == m.NAME_FIELD:
            name = _as_text(item, f"{what}: Name")
        elif field == m.PRKN_FIELD:
            prkn = _as_text(item, f"{what}: PrKN", named)
        elif field == m.FORMAT_FIELD:
            fmt = _as_text(item, f"{what}: Format", named)
        elif field != data_field:
            raise _unsupported(what, field)
        elif not chain:
            ders = [_as_bytes(item, f"{what}: Data", named)]
        else:
            entries = _array(item, f"{what}: DataArray")
            # FCC checks the chain length (1..5) while parsing: BUNDLE_ERROR, no item name.
            if not 1 <= len(entries) <= m.MAX_CHAIN_LENGTH:
                raise _bad(f"{what}: DataArray must hold 1 to {m.MAX_CHAIN_LENGTH} certificates")
            ders = [_as_bytes(der, f"{what}: DataArray entry", named) for der in entries]
    if name is None or not ders:
        raise _bad(f"{what}: Name and {data_field} are mandatory")
    _check_format(fmt, f"certificate {name!r}")
    return name, ders, prkn


def _parse_cert(value: object) -> m.CertificateItem:
    name, ders, prkn = _parse_certificate_fields(value, chain=False)
    return m.CertificateItem(name, ders[0], prkn)


def _parse_chain(value: object) -> m.CertificateChainItem:
    name, ders, prkn = _parse_certificate_fields(value, chain=True)
    return m.CertificateChainItem(name, tuple(ders), prkn)


def _config_data(data: object, name: str) -> int | str | bytes:
    if isinstance(data, CborTag) and data.tag == 2 and isinstance(data.value, bytes):
        return m.BigNum(data.value)  # positive bignum: FCC keeps its bytes as received
    if isinstance(data, bool) or not isinstance(data, int | str | bytes):
        raise _bad(f"config param {name!r}: Data has an unsupported CBOR type", item=name)
    return data


def _parse_config(value: object) -> m.ConfigParam:
    what = "ConfigParams item"
    name: str | None = None
    data: int | str | bytes | None = None  # no Data: FCC stores an empty item
    for field, item in _field_names(value, what):
        if field == m.NAME_FIELD:
            name = _as_text(item, f"{what}: Name")
        elif field == m.DATA_FIELD:
            data = _config_data(item, name or "")
        else:
            raise _unsupported(what, field)
    if name is None:
        raise _bad(f"{what}: Name is mandatory")
    return m.ConfigParam(name, data)


def _parse_ext(value: object, what: str) -> tuple[int | None, int | None]:
    key_usage = ext_key_usage = None
    for ext_key, ext_value in _pairs(value, f"{what}: Ext"):
        if not isinstance(ext_key, str):
            raise _bad(f"{what}: Ext key {ext_key!r} is not text")
        # Trust and unknown extension keys are skipped, as FCC does.
        if ext_key == m.KU_FIELD:
            key_usage = _uint(ext_value, f"{what}: KU")
        elif ext_key == m.EKU_FIELD:
            ext_key_usage = _uint(ext_value, f"{what}: EKU")
    return key_usage, ext_key_usage


def _parse_storage(value: object, what: str) -> m.StorageMedium:
    pairs = list(_pairs(value, f"{what}: SM"))
    if len(pairs) not in (1, 2):
        raise _bad(f"{what}: SM must have 1 or 2 entries")
    private = public = None
    for key, medium in pairs:
        # FCC answers an unknown SM key or medium with BUNDLE_ERROR (20), not NOT_SUPPORTED.
        if key not in (m.SM_PRIVATE_FIELD, m.SM_PUBLIC_FIELD):
            raise _bad(f"{what}: SM key {key!r} is not Prv or Pub")
        text = _as_text(medium, f"{what}: SM {key}")
        if text not in m.STORAGE_MEDIA:
            raise _bad(f"{what}: storage medium must be 'SE' or 'Device'")
        if key == m.SM_PRIVATE_FIELD:
            private = text
        else:
            public = text
    if private is None:
        raise _bad(f"{what}: SM needs Prv")
    return m.StorageMedium(private, public)


def _parse_csr(value: object) -> m.CsrRequest:
    what = "CsrReqs item"
    prkn = subject = None
    md = 0
    key_usage = ext_key_usage = None
    storage = None
    for field, item in _field_names(value, what):
        if field == m.PRKN_FIELD:
            prkn = _as_text(item, f"{what}: PrKN")
        elif field == m.EXT_FIELD:
            key_usage, ext_key_usage = _parse_ext(item, what)
        elif field == m.SUBJECT_FIELD:
            subject = _as_text(item, f"{what}: Subj")
        elif field == m.MD_FIELD:
            md = _uint(item, f"{what}: MD")
        elif field == m.SM_FIELD:
            storage = _parse_storage(item, what)
        else:
            raise _unsupported(what, field)
    if prkn is None or subject is None or md == 0:
        raise _bad(f"{what}: PrKN, Subj and a non-zero MD are mandatory")
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
        raise _bad("Entropy must be a byte string", item="entropy")
    if len(value) != m.ENTROPY_SIZE:
        raise _bad(
            f"Entropy must be {m.ENTROPY_SIZE} bytes, got {len(value)}",
            FccStatus.INVALID_PARAMETER,
            "entropy",
        )
    return m.EntropyGroup(value)


def _group_rot(key: str, value: object) -> m.Group:
    if not isinstance(value, bytes):
        raise _bad("ROT must be a byte string", item="rot")
    if len(value) != m.ROT_SIZE:
        raise _bad(f"ROT must be {m.ROT_SIZE} bytes, got {len(value)}", FccStatus.INVALID_PARAMETER, "rot")
    return m.RotGroup(value)


def _group_flag(key: str, value: object) -> m.Group:
    if type(value) is int and value in (0, 1):
        return m.FlagGroup(SessionFlag(key), bool(value))
    status = FccStatus.BUNDLE_INVALID_KEEP_ALIVE_SESSION_STATUS if key == m.KEEP_ALIVE_KEY else _ERR
    # FCC stores the flag's name with the error: "General error:Verify".
    raise _bad(f"{key} must be the integer 0 or 1, got {value!r}", status, key)


def _group_sid(key: str, value: object) -> m.Group:
    if not isinstance(value, str):
        raise _bad("SID must be a text string", item=m.SID_KEY)
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
