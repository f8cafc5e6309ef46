"""Device side: request-bundle decoding that answers FCC's exact statuses.

It reads a bundle the way ``fcc-bundle-handler/source/`` of PelionIoT/mbed-cloud-client
(``factory-configurator-client/``) does, and fails where and how that parser fails:

* :func:`decode_envelope` — before anything is stored (``fcc_bundle_handler.c``): empty
  input (3); one well-formed CBOR item ending at the end of the buffer, definite lengths
  only (20); top level a map (20) of ≤ 12 pairs (20); then ``SchemeVersion`` looked up
  among the text keys (``cbor_value_map_find_value``, whole-key compare): missing, not
  text or bytes, or not exactly ``"0.0.1"`` (24). Keys that are not text do not stop
  that lookup: they fail later, when the group loop reaches them (20).
* :func:`group_of` — the group loop's dispatch for one top-level key, in FCC's order
  (``SchemeVersion``/``Entropy``/``ROT`` skipped, then ``Keys``, ``Certificates``,
  ``CertificateChains``, ``ConfigParams``, ``Verify``, ``Disable``, ``KpAlvSess``,
  ``SID``, ``CsrReqs``), each compared as FCC compares names
  (:func:`~provkit.wire._fcc_names.fcc_name_matches`); anything else is 23, ``Csrs``
  included.
* :func:`iter_items` — the maps of one item group, parsed one at a time as FCC's
  ``fcc_bundle_process_maps_in_arr`` does, so a handler stores each before the next is
  read: not an array (20), an entry not a map (20), more than 5 CSR requests (36). Inside
  an item map the pairs are read in wire order: a field name that is not text (20), an
  unknown field (37), a value of the wrong type (20, with the item's name where FCC
  stores one); then missing mandatory fields (20) and key types / formats (37).
* :func:`parse_flag`, :func:`parse_sid`, :func:`parse_rbp` — the single-value groups.

Strings are read as FCC's C parser sees them: text that is not UTF-8 is kept byte for
byte (``surrogateescape``), and every string knows where it sits in the bundle, for the
parameters FCC stores as exactly four bytes whatever their length.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Final

from provkit.codes import FccStatus
from provkit.errors import BundleDecodeError
from provkit.wire import _bundle_model as m
from provkit.wire._fcc_names import fcc_match
from provkit.wire.cbor_strict import CborDecodeError, CborMap, CborTag, WireBytes, WireText, loads
from provkit.wire.session import SessionFlag

_ERR: Final = FccStatus.BUNDLE_ERROR
_POSITIVE_BIGNUM: Final = 2
_WORD: Final = 4
_UINT32: Final = 1 << 32
_INT64_MIN: Final = -(1 << 63)

SKIPPED_GROUPS: Final = (m.SCHEME_VERSION_KEY, m.ENTROPY_KEY, m.ROT_KEY)
"""Keys FCC's loop skips (it read them by key before the loop): their prefixes too."""

LOOP_GROUPS: Final = (
    m.KEYS_KEY,
    m.CERTIFICATES_KEY,
    m.CERTIFICATE_CHAINS_KEY,
    m.CONFIG_PARAMS_KEY,
    m.VERIFY_KEY,
    m.DISABLE_KEY,
    m.KEEP_ALIVE_KEY,
    m.SID_KEY,
    m.CSR_REQS_KEY,
)
"""The groups of FCC's wire-order loop, in the order it tries them."""

ITEM_GROUPS: Final = frozenset(
    {m.KEYS_KEY, m.CERTIFICATES_KEY, m.CERTIFICATE_CHAINS_KEY, m.CONFIG_PARAMS_KEY}
)


def _bad(message: str, status: FccStatus = _ERR, item: str = "") -> BundleDecodeError:
    return BundleDecodeError(message, fcc_status=status, item=item)


@dataclass(frozen=True, slots=True)
class Envelope:
    """A request's top map, checked as far as FCC checks it before storing anything.

    Attributes:
        pairs: the top-level ``(key, value)`` pairs in wire order, duplicates kept; keys
            are usually text (:class:`~provkit.wire.cbor_strict.WireText`) but need not be.
        source: the bundle bytes, for values whose position matters.
    """

    pairs: tuple[tuple[object, object], ...]
    source: bytes

    def lookup(self, key: str) -> object | None:
        """The value of the first text key equal to ``key`` (``cbor_value_map_find_value``)."""
        return next((value for k, value in self.pairs if isinstance(k, str) and k == key), None)

    def __iter__(self) -> Iterator[tuple[object, object]]:
        return iter(self.pairs)


def decode_envelope(data: bytes) -> Envelope:
    """Check the outer structure of a request and return its top-level pairs.

    Args:
        data: the CBOR body of an ``mbedprov`` frame.

    Returns:
        The envelope: pairs in wire order (nested maps are
        :class:`~provkit.wire.cbor_strict.CborMap`) and the source bytes.

    Raises:
        BundleDecodeError: ``fcc_status`` 3 (empty), 20 (not one definite map of ≤ 12
            pairs) or 24 (``SchemeVersion`` missing or not ``"0.0.1"``).
    """
    if not data:
        raise _bad("empty bundle", FccStatus.INVALID_PARAMETER)
    source = bytes(data)
    try:
        top = loads(source, strict=True, located=True)
    except CborDecodeError as exc:
        raise _bad(f"bundle is not one well-formed definite-length CBOR item: {exc}") from exc
    if not isinstance(top, CborMap):
        raise _bad("bundle top level is not a CBOR map")
    if len(top) > m.MAX_TOP_LEVEL_KEYS:
        raise _bad(f"bundle has {len(top)} top-level keys; at most {m.MAX_TOP_LEVEL_KEYS} are allowed")
    envelope = Envelope(top.pairs, source)
    version = envelope.lookup(m.SCHEME_VERSION_KEY)
    if version is None:
        raise _bad("SchemeVersion is missing", FccStatus.BUNDLE_INVALID_SCHEME)
    _check_scheme(version)
    return envelope


def _check_scheme(value: object) -> None:
    raw = value.encode("utf-8", "surrogateescape") if isinstance(value, str) else value
    if raw != m.SCHEME_VERSION.encode():
        raise _bad(f"unsupported SchemeVersion {value!r}", FccStatus.BUNDLE_INVALID_SCHEME)


def group_of(key: object) -> str | None:
    """The group FCC's wire-order loop takes a top-level key for.

    Returns:
        The group's wire key (``Keys``, ``SID`` …), or ``None`` for keys the loop skips
        (prefixes of ``SchemeVersion``, ``Entropy``, ``ROT``, and ``""``).

    Raises:
        BundleDecodeError: 20 for a key that is not text, 23 for an unknown group.
    """
    if not isinstance(key, str):
        raise _bad(f"top-level key {key!r} is not a text string")
    if fcc_match(key, SKIPPED_GROUPS) is not None:
        return None
    group = fcc_match(key, LOOP_GROUPS)
    if group is None:
        raise _bad(f"unknown group {key!r}", FccStatus.BUNDLE_INVALID_GROUP)
    return group


# ---------------------------------------------------------------- field helpers
# A bad value stores the item's name in the InfoMessage ("General error:<name>") only
# where FCC passes it: certificate fields after Name, config Data after Name, the flags'
# and SID's own names; key and CSR fields store no name.


def _pairs(value: object, what: str) -> Iterable[tuple[object, object]]:
    if isinstance(value, CborMap):
        return value.pairs
    if isinstance(value, Mapping):
        return tuple(value.items())
    raise _bad(f"{what} is not a CBOR map")


def _fields(value: object, what: str, known: tuple[str, ...]) -> Iterator[tuple[str, object]]:
    """The item map's pairs in wire order, each field name resolved to the known field FCC takes it for.

    Raises:
        BundleDecodeError: 20 for a field name that is not text, 37 for an unknown one.
    """
    for name, item in _pairs(value, what):
        if not isinstance(name, str):
            raise _bad(f"{what}: field name {name!r} is not text")
        field = fcc_match(name, known)
        if field is None:
            raise _bad(f"{what}: field {name!r} is not supported", FccStatus.NOT_SUPPORTED)
        yield field, item


def _text(value: object, what: str, item: str = "") -> str:
    if not isinstance(value, str):
        raise _bad(f"{what} must be a text string", item=item)
    return str(value)


def _bytes(value: object, what: str, item: str = "") -> bytes:
    if not isinstance(value, bytes):
        raise _bad(f"{what} must be a byte string", item=item)
    return bytes(value)


def _uint(value: object, what: str) -> int:
    if type(value) is not int or value < 0:
        raise _bad(f"{what} must be an unsigned integer")
    return value


def _array(value: object, what: str) -> list[object]:
    if not isinstance(value, list):
        raise _bad(f"{what} is not a CBOR array")
    return value


def _check_format(fmt: str | None, what: str) -> None:
    # strncmp("der", Format, len(Format)): an absent Format, "", "d" and "de" pass; pem does not.
    if fmt is not None and fcc_match(fmt, (m.DER_FORMAT,)) is None:
        raise _bad(f"{what}: Format {fmt!r} is not supported (only 'der')", FccStatus.NOT_SUPPORTED)


# ---------------------------------------------------------------- item parsers

_KEY_FIELDS: Final = (m.NAME_FIELD, m.TYPE_FIELD, m.FORMAT_FIELD, m.DATA_FIELD)
_KEY_TYPE_ORDER: Final = (m.ECC_PRIVATE, m.ECC_PUBLIC)


def parse_key(value: object, source: bytes = b"") -> m.KeyItem:
    """One ``Keys`` map (``fcc_bundle_key_utils.c``).

    Raises:
        BundleDecodeError: with FCC's status for the first defect.
    """
    what = "Keys item"
    name = key_type = fmt = None
    data = b""  # no Data: KCM refuses the empty item (16)
    for field, item in _fields(value, what, _KEY_FIELDS):
        if field == m.NAME_FIELD:
            name = _text(item, f"{what}: Name")
        elif field == m.TYPE_FIELD:
            key_type = _text(item, f"{what}: Type")
        elif field == m.FORMAT_FIELD:
            fmt = _text(item, f"{what}: Format")
        else:
            data = _bytes(item, f"{what}: Data")
    if name is None or key_type is None:
        raise _bad(f"{what}: Name and Type are mandatory")
    resolved = fcc_match(key_type, _KEY_TYPE_ORDER)
    if resolved is None:
        raise _bad(f"key {name!r}: key type {key_type!r} is not supported", FccStatus.NOT_SUPPORTED)
    _check_format(fmt, f"key {name!r}")
    return m.KeyItem(name, resolved, data)


_CERT_FIELDS: Final = (m.NAME_FIELD, m.PRKN_FIELD, m.FORMAT_FIELD, m.DATA_FIELD)
_CHAIN_FIELDS: Final = (m.NAME_FIELD, m.PRKN_FIELD, m.FORMAT_FIELD, m.DATA_ARRAY_FIELD)


def _certificate_fields(value: object, chain: bool) -> tuple[str, list[bytes], str | None]:
    """One ``Certificates`` or ``CertificateChains`` map (``fcc_bundle_certificate_utils.c``).

    FCC's chain branch is chosen by ``DataArray`` alone, so in a chain ``Data`` (a prefix of
    it) is taken for ``DataArray``; in a single certificate ``DataArray`` is unknown (37).
    """
    what = "CertificateChains item" if chain else "Certificates item"
    name: str | None = None
    prkn = fmt = None
    ders: list[bytes] = []
    for field, item in _fields(value, what, _CHAIN_FIELDS if chain else _CERT_FIELDS):
        named = name or ""
        if field == m.NAME_FIELD:
            name = _text(item, f"{what}: Name")
        elif field == m.PRKN_FIELD:
            prkn = _text(item, f"{what}: PrKN", named)
        elif field == m.FORMAT_FIELD:
            fmt = _text(item, f"{what}: Format", named)
        elif not chain:
            ders = [_bytes(item, f"{what}: Data", named)]
        else:
            entries = _array(item, f"{what}: DataArray")
            # FCC checks each array's length (1..5) as it reads it: BUNDLE_ERROR, no item name.
            if not 1 <= len(entries) <= m.MAX_CHAIN_LENGTH:
                raise _bad(f"{what}: DataArray must hold 1 to {m.MAX_CHAIN_LENGTH} certificates")
            # A repeated DataArray carries on at FCC's running index.
            ders += [_bytes(der, f"{what}: DataArray entry", named) for der in entries]
            if len(ders) > m.MAX_CHAIN_LENGTH:
                raise _bad(f"{what}: more than {m.MAX_CHAIN_LENGTH} certificates in all")
    if name is None or not ders:
        raise _bad(f"{what}: Name and {'DataArray' if chain else 'Data'} are mandatory")
    _check_format(fmt, f"certificate {name!r}")
    return name, ders, prkn


def parse_certificate(value: object, source: bytes = b"") -> m.CertificateItem:
    """One ``Certificates`` map."""
    name, ders, prkn = _certificate_fields(value, chain=False)
    return m.CertificateItem(name, ders[0], prkn)


def parse_chain(value: object, source: bytes = b"") -> m.CertificateChainItem:
    """One ``CertificateChains`` map."""
    name, ders, prkn = _certificate_fields(value, chain=True)
    return m.CertificateChainItem(name, tuple(ders), prkn)


def _wire_word(value: object, source: bytes) -> bytes | None:
    """The four bytes at a string's payload in the bundle (zeros past its end)."""
    if not isinstance(value, WireBytes | WireText):
        return None
    return source[value.at : value.at + _WORD].ljust(_WORD, b"\0")


def _config_data(data: object, name: str, source: bytes) -> tuple[int | str | bytes, bytes | None]:
    """``fcc_bundle_get_variant``: every leading tag skipped if the first is 2, then int, bytes or text."""
    what = f"config param {name!r}: Data"
    bignum = False
    if isinstance(data, CborTag):
        if data.tag != _POSITIVE_BIGNUM:
            raise _bad(f"{what} has tag {data.tag}; only 2 (positive bignum) is read", item=name)
        while isinstance(data, CborTag):
            data = data.value
        bignum = True
    if isinstance(data, bool) or not isinstance(data, int | str | bytes):
        raise _bad(f"{what} has an unsupported CBOR type", item=name)
    if isinstance(data, int):
        if data < _INT64_MIN:
            raise _bad(f"{what} is below the int64 range", item=name)
        return data, None
    word = _wire_word(data, source)
    if isinstance(data, bytes):
        return (m.BigNum(data) if bignum else bytes(data)), word
    return str(data), word


def parse_config(value: object, source: bytes = b"") -> m.ConfigParam:
    """One ``ConfigParams`` map (``fcc_bundle_config_params_utils.c``)."""
    what = "ConfigParams item"
    name: str | None = None
    data: int | str | bytes | None = None  # no Data: FCC stores an empty item
    word: bytes | None = None
    for field, item in _fields(value, what, (m.NAME_FIELD, m.DATA_FIELD)):
        if field == m.NAME_FIELD:
            name = _text(item, f"{what}: Name")
        else:
            data, word = _config_data(item, name or "", source)
    if name is None:
        raise _bad(f"{what}: Name is mandatory")
    return m.ConfigParam(name, data, word)


_CSR_FIELDS: Final = (m.PRKN_FIELD, m.EXT_FIELD, m.SUBJECT_FIELD, m.MD_FIELD, m.SM_FIELD)
_MEDIA_ORDER: Final = ("SE", "Device")


def _parse_ext(value: object, what: str) -> tuple[int | None, int | None]:
    # parse_csr_extensions: KU then EKU by FCC's name rule; other keys (Trust …) skipped.
    key_usage = ext_key_usage = None
    for ext_key, ext_value in _pairs(value, f"{what}: Ext"):
        if not isinstance(ext_key, str):
            raise _bad(f"{what}: Ext key {ext_key!r} is not text")
        which = fcc_match(ext_key, (m.KU_FIELD, m.EKU_FIELD))
        if which == m.KU_FIELD:
            key_usage = _uint(ext_value, f"{what}: KU") % _UINT32
        elif which == m.EKU_FIELD:
            ext_key_usage = _uint(ext_value, f"{what}: EKU") % _UINT32
    return key_usage, ext_key_usage


def _parse_medium(value: object, what: str) -> str:
    medium = fcc_match(_text(value, what), _MEDIA_ORDER)
    if medium is None:
        raise _bad(f"{what}: storage medium must be 'SE' or 'Device'")
    if medium == "SE":
        raise _bad(f"{what}: no secure element on this device", FccStatus.NOT_SUPPORTED)
    return medium


def _parse_storage(value: object, what: str) -> m.StorageMedium:
    # parse_csr_storage_medium: 1 or 2 entries, Prv then Pub by FCC's name rule, "SE"
    # refused (37) as soon as it is read; a lone Pub entry is 20.
    pairs = list(_pairs(value, f"{what}: SM"))
    if len(pairs) not in (1, 2):
        raise _bad(f"{what}: SM must have 1 or 2 entries")
    private = "Device"
    public = None
    for key, medium in pairs:
        if not isinstance(key, str):
            raise _bad(f"{what}: SM key {key!r} is not text")
        which = fcc_match(key, (m.SM_PRIVATE_FIELD, m.SM_PUBLIC_FIELD))
        if which is None:
            raise _bad(f"{what}: SM key {key!r} is not Prv or Pub")
        if which == m.SM_PRIVATE_FIELD:
            private = _parse_medium(medium, f"{what}: SM Prv")
        else:
            public = _parse_medium(medium, f"{what}: SM Pub")
    if len(pairs) == 1 and public is not None:
        raise _bad(f"{what}: SM with Pub alone")
    return m.StorageMedium(private, public)


def parse_csr(value: object, source: bytes = b"") -> m.CsrRequest:
    """One ``CsrReqs`` map (``fcc_bundle_csr_utils.c``)."""
    what = "CsrReqs item"
    prkn = subject = None
    md = 0
    key_usage = ext_key_usage = None
    storage = None
    for field, item in _fields(value, what, _CSR_FIELDS):
        if field == m.PRKN_FIELD:
            prkn = _text(item, f"{what}: PrKN")
        elif field == m.EXT_FIELD:
            key_usage, ext_key_usage = _parse_ext(item, what)
        elif field == m.SUBJECT_FIELD:
            subject = _text(item, f"{what}: Subj")
        elif field == m.MD_FIELD:
            md = _uint(item, f"{what}: MD") % _UINT32  # FCC casts it to an enum
        else:
            storage = _parse_storage(item, what)
    if prkn is None or subject is None or md == 0:
        raise _bad(f"{what}: PrKN, Subj and a non-zero MD are mandatory")
    return m.CsrRequest(prkn, subject, md, key_usage, ext_key_usage, storage)


_ITEM_PARSERS: Final[dict[str, Callable[[object, bytes], object]]] = {
    m.KEYS_KEY: parse_key,
    m.CERTIFICATES_KEY: parse_certificate,
    m.CERTIFICATE_CHAINS_KEY: parse_chain,
    m.CONFIG_PARAMS_KEY: parse_config,
    m.CSR_REQS_KEY: parse_csr,
}


def iter_items(group: str, value: object, source: bytes = b"") -> Iterator[object]:
    """The items of one item group, each parsed only when the previous one was taken.

    Args:
        group: the group's wire key, as :func:`group_of` returned it.
        value: the group's decoded value.
        source: the bundle bytes (for :attr:`~provkit.wire.bundle.ConfigParam.wire_word`).

    Yields:
        ``KeyItem``, ``CertificateItem``, ``CertificateChainItem``, ``ConfigParam`` or
        ``CsrRequest`` models.

    Raises:
        BundleDecodeError: when FCC's parser reaches a defect.
    """
    entries = _array(value, f"{group} group")
    if group == m.CSR_REQS_KEY and len(entries) > m.MAX_CSR_REQUESTS:
        raise _bad(f"{len(entries)} CSR requests; at most 5 are supported", FccStatus.TOO_MANY_CSR_REQUESTS)
    parse = _ITEM_PARSERS[group]
    for entry in entries:
        if not isinstance(entry, CborMap | Mapping):
            raise _bad(f"an entry of {group} is not a CBOR map")
        yield parse(entry, source)


# ---------------------------------------------------------------- single values


def _as_c_int(value: int) -> int:
    """What tinycbor's unchecked ``cbor_value_get_int`` makes of a CBOR integer: its low 32 bits."""
    argument = value if value >= 0 else -1 - value
    low = ((argument & 0xFFFF_FFFF) ^ 0x8000_0000) - 0x8000_0000
    return low if value >= 0 else -low - 1


def parse_flag(flag: str, value: object) -> bool:
    """``Verify``, ``Disable`` or ``KpAlvSess``: a CBOR integer 0 or 1 (``fcc_bundle_get_bool``).

    Raises:
        BundleDecodeError: 20 (35 for ``KpAlvSess``) naming the flag: ``General error:Verify``.
    """
    if type(value) is int and _as_c_int(value) in (0, 1):
        return bool(_as_c_int(value))
    status = FccStatus.BUNDLE_INVALID_KEEP_ALIVE_SESSION_STATUS if flag == SessionFlag.KEEP_ALIVE else _ERR
    raise _bad(f"{flag} must be the integer 0 or 1, got {value!r}", status, flag)


def parse_sid(value: object) -> str:
    """``SID``: a text string (``General error:SID`` otherwise)."""
    return _text(value, "SID", m.SID_KEY)


def parse_rbp(key: str, value: object) -> bytes:
    """``Entropy`` (48 bytes) or ``ROT`` (16 bytes), named ``entropy`` / ``rot`` in errors.

    Raises:
        BundleDecodeError: 20 for a value that is not bytes, 3 for a wrong size.
    """
    item, size = (m.ENTROPY_ITEM, m.ENTROPY_SIZE) if key == m.ENTROPY_KEY else (m.ROT_ITEM, m.ROT_SIZE)
    raw = _bytes(value, key, item)
    if len(raw) != size:
        raise _bad(f"{key} must be {size} bytes, got {len(raw)}", FccStatus.INVALID_PARAMETER, item)
    return raw


def parse_group(key: str, value: object, source: bytes = b"") -> m.Group:
    """Parse one top-level pair of a request whole, into its model.

    Args:
        key: the top-level key (FCC's name rule applies, see :func:`group_of`; the
            skipped keys parse as themselves).
        value: the decoded value.
        source: the bundle bytes.

    Raises:
        BundleDecodeError: with the ``fcc_status`` FCC answers for the defect.
    """
    if key == m.SCHEME_VERSION_KEY:
        _check_scheme(value)
        return m.SchemeVersionGroup(m.SCHEME_VERSION)
    if key in (m.ENTROPY_KEY, m.ROT_KEY):
        raw = parse_rbp(key, value)
        return m.EntropyGroup(raw) if key == m.ENTROPY_KEY else m.RotGroup(raw)
    group = group_of(key)
    if group is None:
        return m.SchemeVersionGroup(m.SCHEME_VERSION)  # a prefix the loop skips
    if group in (m.VERIFY_KEY, m.DISABLE_KEY, m.KEEP_ALIVE_KEY):
        return m.FlagGroup(SessionFlag(group), parse_flag(group, value))
    if group == m.SID_KEY:
        return m.SidGroup(parse_sid(value))
    items = list(iter_items(group, value, source))
    if group == m.KEYS_KEY:
        return m.KeysGroup(tuple(i for i in items if isinstance(i, m.KeyItem)))
    if group == m.CERTIFICATES_KEY:
        return m.CertificatesGroup(tuple(i for i in items if isinstance(i, m.CertificateItem)))
    if group == m.CERTIFICATE_CHAINS_KEY:
        return m.CertificateChainsGroup(tuple(i for i in items if isinstance(i, m.CertificateChainItem)))
    if group == m.CONFIG_PARAMS_KEY:
        return m.ConfigParamsGroup(tuple(i for i in items if isinstance(i, m.ConfigParam)))
    return m.CsrReqsGroup(tuple(i for i in items if isinstance(i, m.CsrRequest)))
