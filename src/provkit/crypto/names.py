"""X.509 distinguished names: built from fcu.yml fields, and read back.

The factory names its CA and device certificates with the fcu.yml subject keys
(``country-name``, ``common-name`` …). The Mbed TLS subject text a device gets in
``CsrReqs`` (``"C=GB,O=Acme,CN=dev-1"``) is read by the device's own rules, in
:func:`provkit.crypto.mbedtls_x509.subject_der`. Failures are
:class:`~provkit.errors.CryptoError`.
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


def name_attribute(oid: x509.ObjectIdentifier, value: str, label: str) -> x509.NameAttribute[str]:
    """Return one name attribute; ``label`` names it in the error.

    Raises:
        CryptoError: the attribute does not allow ``value`` (e.g. a 3-letter country).
    """
    try:
        return x509.NameAttribute(oid, value)
    except ValueError as exc:
        raise CryptoError(f"invalid subject attribute {label}={value!r}: {exc}") from exc


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
