"""PKCS#11 URIs (RFC 7512): which module, token and key object the factory CA key is.

``pkcs11:token=factory;object=provkit-ca?module-path=/usr/lib/softhsm/libsofthsm2.so``

The path part (attributes separated by ``;``) selects a token and an object; the query part
(``&``-separated) says how to reach it. Values are percent-encoded UTF-8, except ``id``,
which is raw bytes (``id=%01%a2``). The grammar and attribute names are those of RFC 7512
§2.3: unknown attributes, a repeated attribute, characters the grammar does not allow
(a space, ``/`` in the path, ``;`` in the query, a bare ``%``) and values of the wrong form
are refused, so a typo never silently selects another key.

provkit never takes a PIN from a URI: a ``pin-value`` would end up on command lines and in
configuration files, so it is refused; ``pin-source`` (a file) is honoured.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from typing import Any, Final
from urllib.parse import quote, unquote_to_bytes

from provkit.codes import FcuErrorCode
from provkit.errors import HsmError

SCHEME: Final = "pkcs11:"

OBJECT_TYPES: Final = ("public", "private", "cert", "secret-key", "data")
"""Values of the ``type`` attribute (CKO_PUBLIC_KEY, CKO_PRIVATE_KEY, CKO_CERTIFICATE, …)."""

# RFC 7512 §2.3: pk11-pchar / pk11-qchar = unreserved / reserved-but-allowed / pct-encoded.
_UNRESERVED: Final = r"\-A-Za-z0-9._~"
_COMMON: Final = re.escape(":[]@!$'()*+,=")
_PATH_VALUE: Final = re.compile(rf"(?:[{_UNRESERVED}{_COMMON}&]|%[0-9A-Fa-f]{{2}})*")
_QUERY_VALUE: Final = re.compile(rf"(?:[{_UNRESERVED}{_COMMON}/?|]|%[0-9A-Fa-f]{{2}})*")
# What may stay unescaped when a value is written back (RFC 3986 unreserved plus the
# characters both parts allow; anything else is percent-encoded).
_SAFE_PATH: Final = ":[]@!$'()*+,"
_SAFE_QUERY: Final = ":[]@!$'()*+,/?|"

_PATH_NAMES: Final = {
    "token": "token",
    "manufacturer": "manufacturer",
    "serial": "serial",
    "model": "model",
    "library-manufacturer": "library_manufacturer",
    "library-description": "library_description",
    "library-version": "library_version",
    "object": "object",
    "type": "type",
    "id": "id",
    "slot-description": "slot_description",
    "slot-manufacturer": "slot_manufacturer",
    "slot-id": "slot_id",
}
_QUERY_NAMES: Final = {
    "pin-source": "pin_source",
    "module-name": "module_name",
    "module-path": "module_path",
}
_VERSION: Final = re.compile(r"[0-9]+(?:\.[0-9]+)?")


class Pkcs11UriError(HsmError, ValueError):
    """The text is not a PKCS#11 URI provkit can use (FCU code 407); the message says what is wrong."""

    default_code = int(FcuErrorCode.HSM_URI_INVALID)


class _Malformed(Exception):
    """One defect of the URI text; :meth:`Pkcs11Uri.parse` reports it as 407."""


_PIN_VALUE: Final = re.compile(r"pin-value=[^&]*")


@dataclass(frozen=True, slots=True)
class Pkcs11Uri:
    """A parsed RFC 7512 URI. Every attribute is optional; ``None`` means "any".

    Attributes:
        token: token label (``CK_TOKEN_INFO.label``).
        manufacturer: token manufacturer id.
        serial: token serial number.
        model: token model.
        library_manufacturer: module manufacturer id (``CK_INFO``).
        library_description: module description.
        library_version: module version as ``major[.minor]``.
        object: object label (``CKA_LABEL``).
        type: object class: ``public``, ``private``, ``cert``, ``secret-key`` or ``data``.
        id: object id (``CKA_ID``), raw bytes.
        slot_description: slot description.
        slot_manufacturer: slot manufacturer id.
        slot_id: slot id (decimal in the URI).
        pin_source: where to read the user PIN from (a file path or ``file:`` URI).
        module_name: module file name without directory or extension (``softhsm2``).
        module_path: module file path; used rather than ``module_name`` when both are given.
    """

    token: str | None = None
    manufacturer: str | None = None
    serial: str | None = None
    model: str | None = None
    library_manufacturer: str | None = None
    library_description: str | None = None
    library_version: str | None = None
    object: str | None = None
    type: str | None = None
    id: bytes | None = None
    slot_description: str | None = None
    slot_manufacturer: str | None = None
    slot_id: int | None = None
    pin_source: str | None = None
    module_name: str | None = None
    module_path: str | None = None

    @classmethod
    def parse(cls, text: str) -> Pkcs11Uri:
        """Parse ``text`` (``pkcs11:`` followed by path and optional query).

        Raises:
            Pkcs11UriError: not a PKCS#11 URI, or an attribute is unknown, repeated,
                malformed or a ``pin-value``.
        """
        try:
            if text[: len(SCHEME)].lower() != SCHEME:
                raise _Malformed("a PKCS#11 URI starts with 'pkcs11:'")
            rest = text[len(SCHEME) :].strip()
            if "#" in rest:
                raise _Malformed("a PKCS#11 URI has no fragment ('#' must be written %23)")
            path, _, query = rest.partition("?")
            values: dict[str, object] = {}
            _parse_part(path, ";", _PATH_NAMES, _PATH_VALUE, values, "path")
            _parse_part(query, "&", _QUERY_NAMES, _QUERY_VALUE, values, "query")
        except _Malformed as exc:
            # A PIN given in the URI is never echoed into messages and logs.
            shown = _PIN_VALUE.sub("pin-value=***", text)
            raise Pkcs11UriError.from_code(
                FcuErrorCode.HSM_URI_INVALID,
                repr(shown),
                exc,
                hint="write it as pkcs11:token=<label>;object=<key label> (RFC 7512)",
            ) from None
        return cls(**values)  # type: ignore[arg-type]  # keys and value types checked per attribute

    def __str__(self) -> str:
        """The URI in canonical form: path attributes in RFC order, percent-encoded as needed."""
        path = [
            f"{name}={_encode(getattr(self, attr), _SAFE_PATH)}"
            for name, attr in _PATH_NAMES.items()
            if getattr(self, attr) is not None
        ]
        query = [
            f"{name}={_encode(getattr(self, attr), _SAFE_QUERY)}"
            for name, attr in _QUERY_NAMES.items()
            if getattr(self, attr) is not None
        ]
        return SCHEME + ";".join(path) + ("?" + "&".join(query) if query else "")

    def without_query(self) -> Pkcs11Uri:
        """The same object without module and PIN attributes: what names the key itself."""
        return Pkcs11Uri(**{f.name: getattr(self, f.name) for f in fields(self) if f.name in _PATH_ATTRS})

    def replace(self, **changes: Any) -> Pkcs11Uri:
        """A copy with ``changes`` applied (attribute names as on this class)."""
        current = {f.name: getattr(self, f.name) for f in fields(self)}
        unknown = set(changes) - set(current)
        if unknown:
            raise TypeError(f"unknown PKCS#11 URI attributes: {', '.join(sorted(unknown))}")
        return Pkcs11Uri(**{**current, **changes})

    @property
    def names_object(self) -> bool:
        """Whether the URI names an object (by label or id), not just a token."""
        return self.object is not None or self.id is not None


_PATH_ATTRS: Final = frozenset(_PATH_NAMES.values())


def _parse_part(
    part: str,
    separator: str,
    names: dict[str, str],
    allowed: re.Pattern[str],
    values: dict[str, object],
    where: str,
) -> None:
    if not part:
        return
    for item in part.split(separator):
        name, equals, raw = item.partition("=")
        if not equals:
            raise _Malformed(f"{where} attribute {item!r} has no '=value'")
        if name == "pin-value":
            raise _Malformed(
                "pin-value is not accepted: give the PIN in PROVKIT_PKCS11_PIN or a PIN file "
                "(--pin-file, or pin-source in the URI)"
            )
        if name.startswith("x-"):
            raise _Malformed(f"vendor attribute {name!r} is not supported")
        if name not in names:
            other = "query" if names is _PATH_NAMES else "path"
            if name in _PATH_NAMES or name in _QUERY_NAMES:
                raise _Malformed(f"{name!r} belongs in the {other} part of the URI")
            raise _Malformed(f"unknown {where} attribute {name!r}")
        attr = names[name]
        if attr in values:
            raise _Malformed(f"attribute {name!r} is given twice")
        if not allowed.fullmatch(raw):
            bad = next((ch for ch in raw if ch != "%" and not allowed.fullmatch(ch)), None)
            shown = "a bare '%'" if bad is None else repr(bad)
            raise _Malformed(f"{name}: {shown} must be percent-encoded")
        values[attr] = _decode_value(name, unquote_to_bytes(raw))


def _decode_value(name: str, data: bytes) -> object:
    if name == "id":
        return data
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _Malformed(f"{name}: the value is not UTF-8 text") from exc
    if name == "slot-id":
        if not text.isascii() or not text.isdigit():
            raise _Malformed(f"slot-id: {text!r} is not a decimal number")
        return int(text)
    if name == "library-version" and not _VERSION.fullmatch(text):
        raise _Malformed(f"library-version: {text!r} is not 'major' or 'major.minor'")
    if name == "type" and text not in OBJECT_TYPES:
        raise _Malformed(f"type: {text!r} is not one of {', '.join(OBJECT_TYPES)}")
    return text


def _encode(value: object, safe: str) -> str:
    if isinstance(value, bytes):
        # Object ids are binary: every byte is written %XX, as RFC 7512's examples do.
        return "".join(f"%{byte:02x}" for byte in value)
    return quote(str(value), safe=safe)
