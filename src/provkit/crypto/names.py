"""X.509 distinguished names: built from mbedTLS subject text or fcu.yml fields, and read back.

Two notations reach provkit: the mbedTLS subject string a device gets in ``CsrReqs``
(``"C=GB,O=Acme,CN=dev-1"``, pelion-fcc.md §1.7) and the fcu.yml subject keys
(``country-name``, ``common-name`` …) the factory uses for its CA and device
certificates. Failures are :class:`~provkit.errors.CryptoError`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final, TypeAlias

from cryptography import x509
from cryptography.x509.oid import NameOID

from provkit.errors import CryptoError

Name: TypeAlias = x509.Name
"""An X.509 distinguished name."""

# fcu.yml subject keys -> X.509 attribute OIDs, in the order they appear in the DN.
SUBJECT_FIELDS: Final[Mapping[str, x509.ObjectIdentifier]] = {
    "country-name": NameOID.COUNTRY_NAME,
    "state-or-province-name": NameOID.STATE_OR_PROVINCE_NAME,
    "locality-name": NameOID.LOCALITY_NAME,
    "organization-name": NameOID.ORGANIZATION_NAME,
    "organizational-unit-name": NameOID.ORGANIZATIONAL_UNIT_NAME,
    "common-name": NameOID.COMMON_NAME,
}

# mbedTLS subject short names (x509_create.c's table) -> OIDs.
_DN_OIDS: Final[dict[str, x509.ObjectIdentifier]] = {
    "CN": NameOID.COMMON_NAME,
    "commonName": NameOID.COMMON_NAME,
    "C": NameOID.COUNTRY_NAME,
    "countryName": NameOID.COUNTRY_NAME,
    "O": NameOID.ORGANIZATION_NAME,
    "organizationName": NameOID.ORGANIZATION_NAME,
    "L": NameOID.LOCALITY_NAME,
    "locality": NameOID.LOCALITY_NAME,
    "R": NameOID.EMAIL_ADDRESS,
    "OU": NameOID.ORGANIZATIONAL_UNIT_NAME,
    "organizationalUnitName": NameOID.ORGANIZATIONAL_UNIT_NAME,
    "ST": NameOID.STATE_OR_PROVINCE_NAME,
    "stateOrProvinceName": NameOID.STATE_OR_PROVINCE_NAME,
    "emailAddress": NameOID.EMAIL_ADDRESS,
    "serialNumber": NameOID.SERIAL_NUMBER,
    "postalAddress": NameOID.POSTAL_ADDRESS,
    "postalCode": NameOID.POSTAL_CODE,
    "dnQualifier": NameOID.DN_QUALIFIER,
    "title": NameOID.TITLE,
    "SN": NameOID.SURNAME,
    "GN": NameOID.GIVEN_NAME,
    "initials": NameOID.INITIALS,
    "pseudonym": NameOID.PSEUDONYM,
    "generationQualifier": NameOID.GENERATION_QUALIFIER,
    "DC": NameOID.DOMAIN_COMPONENT,
}


def name_attribute(oid: x509.ObjectIdentifier, value: str, label: str) -> x509.NameAttribute[str]:
    """Return one name attribute; ``label`` names it in the error.

    Raises:
        CryptoError: the attribute does not allow ``value`` (e.g. a 3-letter country).
    """
    try:
        return x509.NameAttribute(oid, value)
    except ValueError as exc:
        raise CryptoError(f"invalid subject attribute {label}={value!r}: {exc}") from exc


def _split_dn(text: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    chars = iter(text)
    for char in chars:
        if char == "\\":
            # mbedTLS lets a backslash escape the next character (e.g. a comma in O=).
            escaped = next(chars, None)
            if escaped is None:
                raise CryptoError("subject ends with a lone backslash")
            current.append(escaped)
        elif char == ",":
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def parse_dn(mbedtls_subject: str) -> Name:
    r"""Parse an mbedTLS-format subject such as ``"C=GB,O=Acme,CN=dev-1"``.

    Attributes keep their order; ``\\,`` escapes a comma inside a value.

    Raises:
        CryptoError: empty subject, an unknown attribute, a missing ``=`` or a value the
            attribute does not allow (e.g. a three-letter country).
    """
    if not mbedtls_subject.strip():
        raise CryptoError("subject is empty")
    attributes = []
    for part in _split_dn(mbedtls_subject):
        key, eq, value = part.partition("=")
        key = key.strip()
        if not eq or not value:
            raise CryptoError(f"subject component {part!r} is not KEY=VALUE")
        oid = _DN_OIDS.get(key)
        if oid is None:
            raise CryptoError(f"subject attribute {key!r} is not supported")
        attributes.append(name_attribute(oid, value, key))
    return x509.Name(attributes)


def build_name(fields: Mapping[str, str]) -> Name:
    """Return an X.509 name from fcu.yml-style subject fields (``common-name``, ``country-name`` …).

    Raises:
        CryptoError: a value is not acceptable in that attribute (e.g. a 3-letter country).
    """
    return x509.Name(
        [name_attribute(oid, str(fields[key]), key) for key, oid in SUBJECT_FIELDS.items() if fields.get(key)]
    )


def first_value(name: Name, oid: x509.ObjectIdentifier) -> str | None:
    """Return the first value of attribute ``oid`` in ``name``, or ``None`` if it has none."""
    values = name.get_attributes_for_oid(oid)
    if not values:
        return None
    value = values[0].value
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def subject_fields(name: Name) -> dict[str, str]:
    """Return ``name`` as fcu.yml-style subject fields (only the fields it has)."""
    found = ((field, first_value(name, oid)) for field, oid in SUBJECT_FIELDS.items())
    return {field: value for field, value in found if value is not None}
