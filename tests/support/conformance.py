"""The conformance table: bundles and sessions with the real FCC's exact answers.

Every row is a bundle (or a session of bundles on one connection) and the answer a real
Factory Configurator Client gives it: ReturnStatus, InfoMessage, WarningInfo, and so the
response bytes. The answers were taken from FCC built for Linux from
PelionIoT/factory-configurator-client-example 4.13.2 with mbed-cloud-client 4.13.4 and
Mbed TLS 2.28.2 (Debug build; the rows marked ``undefined`` read uninitialised memory in
FCC and a Release build answers them otherwise); ``test_conformance.py`` checks
provkit's virtual device against them. Rows marked ``atomic`` run provkit's all-or-nothing
option, which the real FCC does not have.
Sections follow the rules they exercise; docs/device.md states each rule and the line of
``factory-configurator-client/`` it mirrors.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import cbor2

from provkit.codes import SUCCESS_INFO_MESSAGE as OK

ENDPOINT = "EP_fdsf"
"""The endpoint name of the device bundle builder (``tests/device/conftest.py``)."""
AID = "0158d3c1a2b3"
"""The account id in the builder's server URIs, and the OU of its LwM2M certificates."""

BS_CERT = "mbed.BootstrapDeviceCert"
BS_KEY = "mbed.BootstrapDevicePrivateKey"
BS_URI = "mbed.BootstrapServerURI"
UNSET_TIME = "Item not set:mbed.CurrentTime\n"


@dataclass(frozen=True)
class Case:
    """One row: how to build the bundle and what the device must answer."""

    id: str
    mutate: Callable[[dict[str, Any], Any], Any]
    status: int
    info: str
    warnings: str = ""
    mode: str = "bootstrap"
    sid: str | None = None
    """The SID the response echoes (FCC echoes one it read before the failure)."""
    csrs: int = 0
    """How many CSRs a successful response carries."""
    undefined: bool = False
    """FCC's answer depends on memory it never initialised; provkit's documented choice is checked."""


def _nothing(b: dict[str, Any], bld: Any) -> None:
    return None


def _param(name: str, value: Any) -> Callable[[dict[str, Any], Any], None]:
    return lambda b, bld: bld.set_param(b, name, value)


def _drop(name: str) -> Callable[[dict[str, Any], Any], None]:
    return lambda b, bld: bld.drop_param(b, name)


def _drop_item(group: str, name: str) -> Callable[[dict[str, Any], Any], None]:
    return lambda b, bld: bld.drop_item(b, group, name)


def _device_cert(**kwargs: Any) -> Callable[[dict[str, Any], Any], None]:
    """Replace the bootstrap device key and chain with a certificate built with ``kwargs``."""

    def mutate(b: dict[str, Any], bld: Any) -> None:
        key, cert = bld.pki.device(**kwargs)
        b["Keys"][0]["Data"] = key
        b["CertificateChains"][0]["DataArray"] = [cert, bld.pki.ca_der]

    return mutate


def _self_signed_device(b: dict[str, Any], bld: Any) -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    from provkit.crypto.keys import private_key_der
    from provkit.crypto.x509 import certificate_der

    key = ec.generate_private_key(ec.SECP256R1())
    cert = bld.pki.self_signed("EP_fdsf", ca=False, years=20, key=key)
    b["Keys"][0]["Data"] = private_key_der(key)
    b["CertificateChains"][0]["DataArray"] = [certificate_der(cert)]


def _mismatched_key(b: dict[str, Any], bld: Any) -> None:
    other_key, _ = bld.pki.device()
    b["Keys"][0]["Data"] = other_key


def _broken_chain(b: dict[str, Any], bld: Any) -> None:
    b["CertificateChains"][0]["DataArray"][1] = bld.pki.server_ca


def _set(key: str, value: Any) -> Callable[[dict[str, Any], Any], None]:
    def mutate(b: dict[str, Any], bld: Any) -> None:
        b[key] = value

    return mutate


def _replace(data: bytes) -> Callable[[dict[str, Any], Any], bytes]:
    return lambda b, bld: data


def _truncated(b: dict[str, Any], bld: Any) -> bytes:
    return bld.encode(b)[:-7]


def _csrs(count: int, **flags: Any) -> Callable[[dict[str, Any], Any], None]:
    def mutate(b: dict[str, Any], bld: Any) -> None:
        b["CsrReqs"] = [{"PrKN": f"gen.key{i}", "Subj": "CN=EP_fdsf", "MD": 1} for i in range(count)]
        b.update(flags)

    return mutate


def _key_field(field: str, value: Any) -> Callable[[dict[str, Any], Any], None]:
    def mutate(b: dict[str, Any], bld: Any) -> None:
        b["Keys"][0][field] = value

    return mutate


def _rename_key_field(b: dict[str, Any], bld: Any) -> None:
    b["Keys"][0]["Field"] = b["Keys"][0].pop("Name")


def _rename_group(old: str, new: str) -> Callable[[dict[str, Any], Any], None]:
    def mutate(b: dict[str, Any], bld: Any) -> None:
        b[new] = b.pop(old)

    return mutate


def _lwm2m_with_bootstrap_key(b: dict[str, Any], bld: Any) -> None:
    key, _ = bld.pki.device()
    b["Keys"].append({"Name": BS_KEY, "Type": "ECCPrivate", "Format": "der", "Data": key})


def _duplicate_param(b: dict[str, Any], bld: Any) -> None:
    b["ConfigParams"].append({"Name": "mbed.Manufacturer", "Data": "again"})


def _chain_of(n: int) -> Callable[[dict[str, Any], Any], None]:
    def mutate(b: dict[str, Any], bld: Any) -> None:
        b["CertificateChains"][0]["DataArray"] = [bld.pki.ca_der] * n

    return mutate


def _too_many_keys(b: dict[str, Any], bld: Any) -> None:
    for i in range(8):
        b[f"Extra{i}"] = 0


def _bad_version(der: bytes) -> bytes:
    # TBSCertificate starts with [0] { INTEGER 2 } (a0 03 02 01 02); X.509 knows versions 0-2 only.
    return der.replace(b"\xa0\x03\x02\x01\x02", b"\xa0\x03\x02\x01\x07", 1)


def _unknown_signature_algorithm(der: bytes) -> bytes:
    # ecdsa-with-SHA256 (1.2.840.10045.4.3.2) becomes the unassigned 1.2.840.10045.4.3.9.
    oid = bytes.fromhex("06082a8648ce3d040302")
    return der.replace(oid, oid[:-1] + b"\x09")


def _negative_serial(b: dict[str, Any], bld: Any) -> None:
    # Serial INTEGER right after the version field, rewritten as a negative number of the same length.
    der = bytearray(b["Certificates"][0]["Data"])
    at = der.index(b"\xa0\x03\x02\x01\x02") + 5
    length = der[at + 1]
    der[at + 2 : at + 2 + length] = b"\x80" + bytes(length - 1)
    b["Certificates"][0]["Data"] = bytes(der)


def _ca_version_7(b: dict[str, Any], bld: Any) -> None:
    b["Certificates"][0]["Data"] = _bad_version(b["Certificates"][0]["Data"])


def _chain_unknown_signature(b: dict[str, Any], bld: Any) -> None:
    chain = b["CertificateChains"][0]["DataArray"]
    chain[0] = _unknown_signature_algorithm(chain[0])


def _bad_csr_then_bad_key(b: dict[str, Any], bld: Any) -> dict[str, Any]:
    keys = b.pop("Keys")
    keys[0]["Data"] = b"\x30\x03\x02\x01\x00"
    csr = {"PrKN": "gen.key", "Subj": "CN=EP_fdsf", "MD": 1, "Bogus": 1}
    return {"CsrReqs": [csr], **b, "Keys": keys, "SID": "s", "Verify": 0}


def _update_cert(days_before: int, days_after: int) -> Callable[[dict[str, Any], Any], None]:
    """Replace mbed.UpdateAuthCert with a self-signed one valid from/until now ± days."""

    def mutate(b: dict[str, Any], bld: Any) -> None:
        from cryptography import x509 as cx509
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec

        from provkit.crypto.x509 import certificate_der

        key = ec.generate_private_key(ec.SECP256R1())
        name = cx509.Name([cx509.NameAttribute(cx509.oid.NameOID.COMMON_NAME, "update auth")])
        cert = (
            cx509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(7)
            .not_valid_before(NOW + dt.timedelta(days=days_before))
            .not_valid_after(NOW + dt.timedelta(days=days_after))
            .sign(key, hashes.SHA256())
        )
        b["Certificates"][1]["Data"] = certificate_der(cert)

    return mutate


def _cert_field(field: str, value: Any) -> Callable[[dict[str, Any], Any], None]:
    def mutate(b: dict[str, Any], bld: Any) -> None:
        b["Certificates"][0][field] = value

    return mutate


def _sid_then_bad_group(b: dict[str, Any], bld: Any) -> dict[str, Any]:
    return {"SchemeVersion": "0.0.1", "SID": "sess-1", "Bogus": []}


def _keep_alive_with_lwm2m_ca(b: dict[str, Any], bld: Any) -> None:
    b["KpAlvSess"] = 1
    b["Certificates"].append({"Name": "mbed.LwM2MServerCACert", "Format": "der", "Data": bld.pki.server_ca})


def _ftc(value: int, uri: str | None) -> Callable[[dict[str, Any], Any], None]:
    def mutate(b: dict[str, Any], bld: Any) -> None:
        bld.set_param(b, "mbed.FirstToClaim", value)
        if uri is not None:
            bld.set_param(b, BS_URI, uri)

    return mutate


NOW = dt.datetime.now(dt.UTC)
NO_TIME_WARNINGS = (
    UNSET_TIME
    + f"Certificate validity cannot be checked:{BS_CERT}\n" * 2
    + "Certificate validity cannot be checked:mbed.UpdateAuthCert\n"
)

CASES = [
    Case("valid-bootstrap", _nothing, 0, OK),
    Case("valid-lwm2m", _nothing, 0, OK, "Bootstrap mode not activated:mbed.UseBootstrap\n", mode="lwm2m"),
    Case(
        "lwm2m-redundant-bootstrap-key",
        _lwm2m_with_bootstrap_key,
        0,
        OK,
        "Bootstrap mode not activated:mbed.UseBootstrap\nItem redundant:mbed.BootstrapDevicePrivateKey\n",
        mode="lwm2m",
    ),
    Case("wrong-scheme", _set("SchemeVersion", "0.0.2"), 24, "General error:"),
    Case("scheme-as-bytes", _set("SchemeVersion", b"0.0.1"), 0, OK),
    Case("no-scheme", lambda b, bld: b.pop("SchemeVersion"), 24, "General error:"),
    Case("unknown-group", _set("Kuku", []), 23, "General error:"),
    Case("lowercase-certificates", _rename_group("Certificates", "certificates"), 23, "General error:"),
    # "Csrs" is no prefix of any request group: unknown (23).
    Case("csrs-group-in-request", _set("Csrs", []), 23, "General error:"),
    Case("key-field-instead-of-name", _rename_key_field, 37, "General error:"),
    Case("key-format-kuku", _key_field("Format", "kuku"), 37, "General error:"),
    Case("key-format-pem", _key_field("Format", "pem"), 37, "General error:"),
    Case("key-type-rsa", _key_field("Type", "RSAPrivate"), 37, "General error:"),
    Case(
        "key-data-garbage",
        _key_field("Data", b"\x30\x03\x02\x01\x00"),
        18,
        f"Public key format invalid:{BS_KEY}",
    ),
    Case("key-data-empty", _key_field("Data", b""), 16, f"Item data empty:{BS_KEY}"),
    Case("missing-endpoint", _drop("mbed.EndpointName"), 25, "Item does not exist:mbed.EndpointName"),
    Case("empty-endpoint", _param("mbed.EndpointName", ""), 26, "Item empty:mbed.EndpointName"),
    Case("missing-use-bootstrap", _drop("mbed.UseBootstrap"), 25, "Item does not exist:mbed.UseBootstrap"),
    Case(
        "use-bootstrap-6",
        _param("mbed.UseBootstrap", 6),
        30,
        "Bootstrap mode value incorrect:mbed.UseBootstrap",
    ),
    # Stored as the two bytes and the two bundle bytes after them: not 0 or 1.
    Case(
        "use-bootstrap-2-bytes",
        _param("mbed.UseBootstrap", b"\x01\x00"),
        30,
        "Bootstrap mode value incorrect:mbed.UseBootstrap",
    ),
    # Cut to its first four bytes, 0: LwM2M mode, whose server CA is missing.
    Case(
        "use-bootstrap-8-bytes",
        _param("mbed.UseBootstrap", bytes(8)),
        25,
        "Item does not exist:mbed.LwM2MServerCACert",
        "Bootstrap mode not activated:mbed.UseBootstrap\n",
    ),
    Case("soap-uri", _param(BS_URI, "soap://bootstrap.arm.com?aid=1"), 28, f"URI format incorrect:{BS_URI}"),
    Case(
        "uri-without-aid", _param(BS_URI, "coaps://bootstrap.arm.com"), 28, f"URI format incorrect:{BS_URI}"
    ),
    Case("empty-uri", _param(BS_URI, ""), 26, f"Item empty:{BS_URI}"),
    Case("utc-offset-9k", _param("mbed.UTCOffset", "+9k:00"), 33, "UTC offset incorrect:mbed.UTCOffset"),
    Case("utc-offset-sign", _param("mbed.UTCOffset", "#92:00"), 33, "UTC offset incorrect:mbed.UTCOffset"),
    Case("no-timezone", _drop("mbed.Timezone"), 0, OK, "Item not set:mbed.Timezone\n"),
    Case("no-utc-offset", _drop("mbed.UTCOffset"), 0, OK, "Item not set:mbed.UTCOffset\n"),
    Case("no-current-time", _drop("mbed.CurrentTime"), 0, OK, NO_TIME_WARNINGS),
    Case("missing-manufacturer", _drop("mbed.Manufacturer"), 25, "Item does not exist:mbed.Manufacturer"),
    Case("missing-serial", _drop("mbed.SerialNumber"), 25, "Item does not exist:mbed.SerialNumber"),
    Case(
        "missing-server-ca",
        _drop_item("Certificates", "mbed.BootstrapServerCACert"),
        25,
        "Item does not exist:mbed.BootstrapServerCACert",
    ),
    Case("missing-device-key", lambda b, bld: b.pop("Keys"), 25, f"Item does not exist:{BS_KEY}"),
    Case(
        "missing-device-cert", lambda b, bld: b.pop("CertificateChains"), 25, f"Item does not exist:{BS_CERT}"
    ),
    Case("wrong-cn", _device_cert(cn="EP_other"), 14, f"Certificate CN attribute invalid:{BS_CERT}"),
    # No ExtendedKeyUsage extension at all allows client authentication.
    Case("no-client-auth", _device_cert(client_auth=False), 0, OK),
    Case("key-mismatch", _mismatched_key, 34, f"Certificate public key validation failed:{BS_CERT}"),
    Case("self-signed-device-cert", _self_signed_device, 0, OK, f"Certificate is self signed:{BS_CERT}\n"),
    Case(
        "expired-device-cert",
        _device_cert(not_before=NOW - dt.timedelta(days=800), not_after=NOW - dt.timedelta(days=1)),
        13,
        f"Certificate expired:{BS_CERT}",
    ),
    Case(
        "device-cert-5-years",
        _device_cert(not_after=NOW + dt.timedelta(days=5 * 365)),
        0,
        OK,
        f"Certificate validity is less than 10 years:{BS_CERT}\n",
    ),
    Case(
        "device-cert-not-yet-valid",
        _device_cert(not_before=NOW + dt.timedelta(days=2)),
        0,
        OK,
        f"Certificate validity cannot be checked:{BS_CERT}\n",
    ),
    Case("first-to-claim-with-aid", _ftc(1, None), 29, f"first to claim not allowed:{BS_URI}"),
    Case("first-to-claim-without-aid", _ftc(1, "coaps://bootstrap.example.com:5684"), 0, OK),
    Case(
        "first-to-claim-0-needs-aid",
        _ftc(0, "coaps://bootstrap.example.com"),
        28,
        f"URI format incorrect:{BS_URI}",
    ),
    # FirstToClaim is stored as four bytes whatever its length: two bytes and the next two
    # of the bundle are not 1, so the URI needs an aid and its soap:// scheme fails (28).
    Case(
        "first-to-claim-2-bytes",
        lambda b, bld: (
            bld.set_param(b, "mbed.FirstToClaim", b"\x01\x00"),
            bld.set_param(b, BS_URI, "soap://x?aid=1"),
        ),
        28,
        f"URI format incorrect:{BS_URI}",
    ),
    Case("first-to-claim-8-bytes", _param("mbed.FirstToClaim", bytes(8)), 0, OK),
    Case(
        "first-to-claim-lwm2m",
        _param("mbed.FirstToClaim", 1),
        29,
        "first to claim not allowed:mbed.FirstToClaim",
        "Bootstrap mode not activated:mbed.UseBootstrap\n",
        mode="lwm2m",
    ),
    # An aid shorter than the OU is a URI format error named after the device certificate.
    Case(
        "lwm2m-wrong-ou",
        lambda b, bld: bld.set_param(b, "mbed.LwM2MServerURI", "coaps://lwm2m.example.com?aid=ffff"),
        28,
        "URI format incorrect:mbed.LwM2MDeviceCert",
        "Bootstrap mode not activated:mbed.UseBootstrap\n",
        mode="lwm2m",
    ),
    Case(
        "lwm2m-missing-ca",
        _drop_item("Certificates", "mbed.LwM2MServerCACert"),
        25,
        "Item does not exist:mbed.LwM2MServerCACert",
        "Bootstrap mode not activated:mbed.UseBootstrap\n",
        mode="lwm2m",
    ),
    Case("broken-chain", _broken_chain, 18, f"Chain validation error:{BS_CERT}"),
    # FCC's parser checks the DataArray length (1..5) itself: BUNDLE_ERROR without a name.
    Case("chain-of-6", _chain_of(6), 20, "General error:"),
    Case("chain-empty", _chain_of(0), 20, "General error:"),
    Case(
        "cert-garbage",
        lambda b, bld: b["Certificates"][0].update(Data=b"\x30\x82garbage"),
        18,
        "Certificate parse failed:mbed.BootstrapServerCACert",
    ),
    # RFC 5280 forbids it, but mbedTLS (and cryptography, with a warning) accept it.
    Case("ca-negative-serial", _negative_serial, 0, OK),
    Case("cert-version-7", _ca_version_7, 18, "Certificate parse failed:mbed.BootstrapServerCACert"),
    Case(
        "chain-unknown-signature-algorithm",
        _chain_unknown_signature,
        18,
        f"General error:{BS_CERT}",
    ),
    Case("duplicate-param", _duplicate_param, 17, "Data already exists:mbed.Manufacturer"),
    Case("name-too-long", _param("x" * 101, "v"), 16, "File name too long:" + "x" * 101),
    Case("name-invalid-char", _param("my param", "v"), 16, "File name invalid:my param"),
    Case("class-id-15-bytes", _param("mbed.ClassId", bytes(15)), 27, "Item size is wrong:mbed.ClassId"),
    Case(
        "no-update-cert",
        _drop_item("Certificates", "mbed.UpdateAuthCert"),
        0,
        OK,
        "Item not set:mbed.UpdateAuthCert\n",
    ),
    # More recipes from the early FCC test generator.
    Case(
        "uri-wrong-prefix-location",
        _param(BS_URI, "bootstrap.arm.com/coaps://?aid=1"),
        28,
        f"URI format incorrect:{BS_URI}",
    ),
    Case(
        "certificate-null-format",
        _cert_field("Format", None),
        20,
        "General error:mbed.BootstrapServerCACert",
    ),
    Case("certificate-pem-format", _cert_field("Format", "pem"), 37, "General error:"),
    Case("update-cert-expired", _update_cert(-800, -1), 13, "Certificate expired:mbed.UpdateAuthCert"),
    Case(
        "update-cert-in-the-future",
        _update_cert(2, 20 * 365),
        0,
        OK,
        "Certificate validity cannot be checked:mbed.UpdateAuthCert\n",
    ),
    Case(
        "lwm2m-without-time",
        _drop("mbed.CurrentTime"),
        0,
        OK,
        "Item not set:mbed.CurrentTime\nBootstrap mode not activated:mbed.UseBootstrap\n"
        + "Certificate validity cannot be checked:mbed.LwM2MDeviceCert\n" * 2
        + "Certificate validity cannot be checked:mbed.UpdateAuthCert\n",
        mode="lwm2m",
    ),
    Case(
        "no-class-vendor",
        lambda b, bld: (bld.drop_param(b, "mbed.ClassId"), bld.drop_param(b, "mbed.VendorId")),
        0,
        OK,
        "Item not set:mbed.ClassId\nItem not set:mbed.VendorId\n",
    ),
    Case("entropy-47", _set("Entropy", bytes(47)), 3, "General error:entropy"),
    Case("entropy-ok", _set("Entropy", bytes(48)), 0, OK),
    Case("rot-15", _set("ROT", bytes(15)), 3, "General error:rot"),
    Case("truncated", _truncated, 20, "General error:"),
    Case("garbage", _replace(b"\xff\x00garbage"), 20, "General error:"),
    Case("empty", _replace(b""), 3, "General error:"),
    Case("top-level-array", _replace(cbor2.dumps(["SchemeVersion", "0.0.1"])), 20, "General error:"),
    Case("thirteen-keys", _too_many_keys, 20, "General error:"),
    Case("verify-2", _set("Verify", 2), 20, "General error:Verify"),
    Case("keep-alive-2", _set("KpAlvSess", 2), 35, "General error:KpAlvSess"),
    Case("sid-not-text", _set("SID", 7), 20, "General error:SID"),
    Case("entropy-as-text", _set("Entropy", "x" * 48), 20, "General error:entropy"),
    Case("disable-with-keep-alive", lambda b, bld: b.update(Disable=1, KpAlvSess=1), 35, "General error:"),
    Case("csr-without-sid", _csrs(1, Verify=0), 20, "General error:"),
    # CsrReqs is parsed after the session rules and after every other group (fcc_bundle_handler.c).
    Case("six-csrs-without-sid", _csrs(6, Verify=0), 20, "General error:"),
    Case("bad-csr-before-bad-key", _bad_csr_then_bad_key, 18, f"Public key format invalid:{BS_KEY}"),
    Case("csr-with-verify", _csrs(1, SID="s", Verify=1), 20, "General error:", sid="s"),
    Case(
        "six-csrs",
        _csrs(6, SID="s", Verify=0),
        36,
        "Too many CSR requests. Maximum CSR requests supported is CSR_MAX_NUMBER_OF_CSRS",
        sid="s",
    ),
    Case(
        "verify-0-incomplete",
        lambda b, bld: (bld.drop_param(b, "mbed.EndpointName"), b.update(Verify=0)),
        0,
        OK,
    ),
    # PAL secure time: a bundle verified before its session ends has no trusted CA id yet.
    Case(
        "keep-alive-ca-identifier-not-set",
        _set("KpAlvSess", 1),
        0,
        OK,
        "CA identifier wasn't set properly:mbed.BootstrapServerCACert\n",
    ),
    Case(
        "keep-alive-redundant-ca-then-ca-identifier",
        _keep_alive_with_lwm2m_ca,
        0,
        OK,
        "Item redundant:mbed.LwM2MServerCACert\n"
        "CA identifier wasn't set properly:mbed.BootstrapServerCACert\n",
    ),
    Case("config-data-array", _param("custom.param", [1, 2]), 20, "General error:custom.param"),
    # FCC hands an integer it never set to the clock here (an uninitialised variable): a
    # Debug build answers as for an unset time, as provkit does; a Release build answers 1.
    Case("current-time-text", _param("mbed.CurrentTime", "now"), 0, OK, NO_TIME_WARNINGS, undefined=True),
]


# ---------------------------------------------------------------- builders for the sections below

_MARK = b"\xde\xad\xbe\xef\xfe\xed\xfa\xce"
LW_CERT = "mbed.LwM2MDeviceCert"
LW_URI = "mbed.LwM2MServerURI"
LWM2M_WARNING = "Bootstrap mode not activated:mbed.UseBootstrap\n"
P256_OID = bytes.fromhex("06082a8648ce3d030107")


def _raw_param(name: str, raw: bytes) -> Callable[[dict[str, Any], Any], bytes]:
    """Set a param's Data to the CBOR item ``raw`` exactly as given (cbor2 would re-encode it)."""

    def mutate(b: dict[str, Any], bld: Any) -> bytes:
        bld.set_param(b, name, _MARK)
        data = bld.encode(b)
        marker = cbor2.dumps(_MARK)
        assert data.count(marker) == 1
        return data.replace(marker, raw)

    return mutate


def _no_data(name: str) -> Callable[[dict[str, Any], Any], None]:
    def mutate(b: dict[str, Any], bld: Any) -> None:
        for param in b["ConfigParams"]:
            if param["Name"] == name:
                del param["Data"]

    return mutate


def _tlv(tag: int, body: bytes) -> bytes:
    size = len(body)
    length = (
        bytes([size])
        if size < 0x80
        else bytes([0x81, size])
        if size < 0x100
        else b"\x82" + size.to_bytes(2, "big")
    )
    return bytes([tag]) + length + body


def _sec1(
    d: int, *, params: bool = True, pub: bytes | None = None, version: int = 1, size: int = 32
) -> bytes:
    body = _tlv(2, bytes([version])) + _tlv(4, d.to_bytes(size, "big"))
    if params:
        body += _tlv(0xA0, P256_OID)
    if pub is not None:
        body += _tlv(0xA1, _tlv(3, b"\x00" + pub))
    return _tlv(0x30, body)


def _own_key(transform: Callable[[Any, bytes], bytes]) -> Callable[[dict[str, Any], Any], None]:
    """Re-encode the device's own private key (so it still matches its certificate)."""

    def mutate(b: dict[str, Any], bld: Any) -> None:
        from cryptography.hazmat.primitives import serialization

        der = b["Keys"][0]["Data"]
        b["Keys"][0]["Data"] = transform(serialization.load_der_private_key(der, None), der)

    return mutate


def _private_value(key: Any) -> int:
    return int(key.private_numbers().private_value)


def _point(key: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return bytes(
        key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
    )


def _pkcs8(key: Any, password: bytes | None = None) -> bytes:
    from cryptography.hazmat.primitives import serialization

    encryption: Any = (
        serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    )
    return bytes(key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, encryption))


def _fresh(kind: str) -> Any:
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

    if kind == "rsa":
        return rsa.generate_private_key(65537, 1024)
    if kind == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    return ec.generate_private_key(ec.SECP384R1() if kind == "p384" else ec.SECP256R1())


def _spki(key: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return bytes(
        key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )


def _key_data(make: Callable[[], bytes]) -> Callable[[dict[str, Any], Any], None]:
    def mutate(b: dict[str, Any], bld: Any) -> None:
        b["Keys"][0]["Data"] = make()

    return mutate


def _extra_key(
    key_type: str, make: Callable[[], bytes], name: str = "custom.key"
) -> Callable[[dict[str, Any], Any], None]:
    def mutate(b: dict[str, Any], bld: Any) -> None:
        b["Keys"].append({"Name": name, "Type": key_type, "Format": "der", "Data": make()})

    return mutate


def _self_signed_with(kind: str, algorithm: str | None) -> bytes:
    from cryptography import x509 as cx509
    from cryptography.hazmat.primitives import hashes

    from provkit.crypto.x509 import certificate_der

    key = _fresh(kind)
    signer = _fresh("p256") if kind == "p384" and algorithm == "sha256" else key
    digest = {"sha256": hashes.SHA256(), "sha224": hashes.SHA224(), "sha384": hashes.SHA384(), None: None}[
        algorithm
    ]
    name = cx509.Name([cx509.NameAttribute(cx509.oid.NameOID.COMMON_NAME, "x")])
    cert = (
        cx509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(5)
        .not_valid_before(NOW - dt.timedelta(days=1))
        .not_valid_after(NOW + dt.timedelta(days=3650))
        .sign(signer, digest)
    )
    return certificate_der(cert)


def _extra_cert(kind: str, algorithm: str | None) -> Callable[[dict[str, Any], Any], None]:
    def mutate(b: dict[str, Any], bld: Any) -> None:
        b["Certificates"].append(
            {"Name": "custom.cert", "Format": "der", "Data": _self_signed_with(kind, algorithm)}
        )

    return mutate


def _device_with(
    attributes: Callable[[], list[Any]], *, eku: list[Any] | str | None = "client", mode: str = "bootstrap"
) -> Callable[[dict[str, Any], Any], None]:
    """Replace the device key and certificate with one of the given subject and EKU."""

    def mutate(b: dict[str, Any], bld: Any) -> None:
        from cryptography import x509 as cx509
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import ExtendedKeyUsageOID

        from provkit.crypto.keys import private_key_der
        from provkit.crypto.x509 import certificate_der

        key = ec.generate_private_key(ec.SECP256R1())
        builder = (
            cx509.CertificateBuilder()
            .subject_name(cx509.Name(attributes()))
            .issuer_name(bld.pki.ca.subject)
            .public_key(key.public_key())
            .serial_number(cx509.random_serial_number())
            .not_valid_before(NOW - dt.timedelta(days=1))
            .not_valid_after(NOW + dt.timedelta(days=20 * 365))
        )
        usages = [ExtendedKeyUsageOID.CLIENT_AUTH] if eku == "client" else eku
        if usages is not None:
            builder = builder.add_extension(cx509.ExtendedKeyUsage(usages), critical=False)
        cert = builder.sign(bld.pki.ca_key, hashes.SHA256())
        b["Keys"][0]["Data"] = private_key_der(key)
        b["CertificateChains"][0]["DataArray"] = [certificate_der(cert), bld.pki.ca_der]

    return mutate


def _cn(value: str = ENDPOINT) -> Any:
    from cryptography import x509 as cx509

    return cx509.NameAttribute(cx509.oid.NameOID.COMMON_NAME, value)


def _ou(value: str = AID) -> Any:
    from cryptography import x509 as cx509

    return cx509.NameAttribute(cx509.oid.NameOID.ORGANIZATIONAL_UNIT_NAME, value)


def _custom_attribute() -> Any:
    from cryptography import x509 as cx509

    return cx509.NameAttribute(cx509.ObjectIdentifier("1.2.3.4"), "q")


def _eku_usages(*names: str) -> list[Any]:
    from cryptography.x509.oid import ExtendedKeyUsageOID

    return [getattr(ExtendedKeyUsageOID, name) for name in names]


def _renamed_group(old: str, new: str) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    def mutate(b: dict[str, Any], bld: Any) -> dict[str, Any]:
        return {(new if k == old else k): v for k, v in b.items()}

    return mutate


def _renamed_field(group: str, old: str, new: str, index: int = 0) -> Callable[[dict[str, Any], Any], None]:
    def mutate(b: dict[str, Any], bld: Any) -> None:
        item = b[group][index]
        b[group][index] = {(new if k == old else k): v for k, v in item.items()}

    return mutate


def _field(group: str, field: str, value: Any, index: int = 0) -> Callable[[dict[str, Any], Any], None]:
    def mutate(b: dict[str, Any], bld: Any) -> None:
        b[group][index][field] = value

    return mutate


def _without(group: str, field: str, index: int = 0) -> Callable[[dict[str, Any], Any], None]:
    def mutate(b: dict[str, Any], bld: Any) -> None:
        del b[group][index][field]

    return mutate


def _append(
    group: str, item: Callable[[dict[str, Any], Any], dict[str, Any]]
) -> Callable[[dict[str, Any], Any], None]:
    def mutate(b: dict[str, Any], bld: Any) -> None:
        b[group].append(item(b, bld))

    return mutate


def _top(pairs: list[tuple[Any, Any]]) -> Callable[[dict[str, Any], Any], bytes]:
    """A top-level map written pair by pair (keys of any CBOR type)."""

    def mutate(b: dict[str, Any], bld: Any) -> bytes:
        head = bytes([0xA0 + len(pairs)])
        return head + b"".join(cbor2.dumps(k) + cbor2.dumps(v) for k, v in pairs)

    return mutate


def _csr_bundle(subject: str, **extra: Any) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    """A CSR-only keep-alive bundle (SID ``s``)."""

    def mutate(b: dict[str, Any], bld: Any) -> dict[str, Any]:
        request = {"PrKN": "gen.key", "Subj": subject, "MD": 1, **extra}
        return {"SchemeVersion": "0.0.1", "SID": "s", "Verify": 0, "KpAlvSess": 1, "CsrReqs": [request]}

    return mutate


def _bytes_replaced(old: bytes, new: bytes) -> Callable[[dict[str, Any], Any], bytes]:
    def mutate(b: dict[str, Any], bld: Any) -> bytes:
        data = bld.encode(b)
        assert data.count(old) == 1
        return data.replace(old, new)

    return mutate


def _with(*mutations: Callable[[dict[str, Any], Any], Any]) -> Callable[[dict[str, Any], Any], None]:
    def mutate(b: dict[str, Any], bld: Any) -> None:
        for mutation in mutations:
            mutation(b, bld)

    return mutate


def _traditional(key: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return bytes(
        key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )


def _pem(key: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )


def _public_pem() -> bytes:
    from cryptography.hazmat.primitives import serialization

    key = _fresh("p256")
    return bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )


def _compressed_spki() -> bytes:
    from cryptography.hazmat.primitives import serialization

    point = (
        _fresh("p256")
        .public_key()
        .public_bytes(serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint)
    )
    algorithm = _tlv(0x30, bytes.fromhex("06072a8648ce3d0201") + P256_OID)
    return _tlv(0x30, algorithm + _tlv(3, b"\x00" + bytes(point)))


def _off_curve_spki() -> bytes:
    spki = _spki(_fresh("p256"))
    return spki[:-1] + bytes([spki[-1] ^ 1])


def _cert_der_edit(index: int, edit: Callable[[bytes], bytes]) -> Callable[[dict[str, Any], Any], None]:
    def mutate(b: dict[str, Any], bld: Any) -> None:
        b["Certificates"][index]["Data"] = edit(b["Certificates"][index]["Data"])

    return mutate


def _chain_der_edit(index: int, edit: Callable[[bytes], bytes]) -> Callable[[dict[str, Any], Any], None]:
    def mutate(b: dict[str, Any], bld: Any) -> None:
        chain = b["CertificateChains"][0]["DataArray"]
        chain[index] = edit(chain[index])

    return mutate


UB = "mbed.UseBootstrap"
FTC = "mbed.FirstToClaim"
MEM = "mbed.MemoryTotalKB"
CT = "mbed.CurrentTime"
CUSTOM = "custom.param"
GARBAGE_KEY = b"\x30\x03\x02\x01\x00"
EXPIRED = f"Certificate expired:{BS_CERT}"

CASES += [
    # ---- item 2: UseBootstrap, MemoryTotalKB, FirstToClaim are stored as exactly 4 bytes
    Case("ub-int-1-in-3-byte-head", _raw_param(UB, b"\x19\x00\x01"), 0, OK),
    Case("ub-int-1-in-9-byte-head", _raw_param(UB, b"\x1b" + (1).to_bytes(8, "big")), 0, OK),
    Case("ub-int-256", _param(UB, 256), 30, "Bootstrap mode value incorrect:mbed.UseBootstrap"),
    Case("ub-int-2**32+1", _param(UB, (1 << 32) + 1), 0, OK),
    Case("ub-int-minus-1", _param(UB, -1), 30, "Bootstrap mode value incorrect:mbed.UseBootstrap"),
    Case("ub-text-1", _param(UB, "1"), 30, "Bootstrap mode value incorrect:mbed.UseBootstrap"),
    Case("ub-text-4-bytes-le-1", _param(UB, "\x01\x00\x00\x00"), 0, OK),
    Case("ub-bytes-le-1", _param(UB, b"\x01\x00\x00\x00"), 0, OK),
    Case("ub-bytes-8-le-1", _param(UB, b"\x01\x00\x00\x00\xff\xff\xff\xff"), 0, OK),
    Case(
        "ub-bignum-01",
        _raw_param(UB, b"\xc2\x41\x01"),
        30,
        "Bootstrap mode value incorrect:mbed.UseBootstrap",
    ),
    Case("ub-bignum-01000000", _raw_param(UB, b"\xc2\x44\x01\x00\x00\x00"), 0, OK),
    Case("ub-bignum-around-int-1", _raw_param(UB, b"\xc2\x01"), 0, OK),
    Case("ub-empty-bytes", _param(UB, b""), 30, "Bootstrap mode value incorrect:mbed.UseBootstrap"),
    Case("ub-no-data", _no_data(UB), 15, "General error:mbed.UseBootstrap"),
    Case(
        "ub-lwm2m-int-0-in-3-byte-head", _raw_param(UB, b"\x19\x00\x00"), 0, OK, LWM2M_WARNING, mode="lwm2m"
    ),
    Case(
        "ub-name-prefix-is-four-bytes",
        lambda b, bld: (bld.drop_param(b, UB), bld.set_param(b, "mbed.UseB", 1)),
        25,
        "Item does not exist:mbed.UseBootstrap",
    ),
    Case("ftc-bytes-2", _param(FTC, b"\x01\x00"), 0, OK),
    Case("ftc-bytes-1", _param(FTC, b"\x01"), 0, OK),
    Case("ftc-bytes-8-le-1", _param(FTC, b"\x01" + bytes(7)), 29, f"first to claim not allowed:{BS_URI}"),
    Case(
        "ftc-int-1-in-3-byte-head",
        _raw_param(FTC, b"\x19\x00\x01"),
        29,
        f"first to claim not allowed:{BS_URI}",
    ),
    Case("ftc-text-1", _param(FTC, "1"), 0, OK),
    Case("memory-text", _param(MEM, "102400"), 0, OK),
    Case("memory-bytes-1", _param(MEM, b"\x01"), 0, OK),
    Case("memory-no-data", _no_data(MEM), 15, "General error:mbed.MemoryTotalKB"),
    # ---- item 3: mbed.CurrentTime is never refused as a type
    Case("time-minus-1000", _param(CT, -1000), 13, EXPIRED),
    Case("time-zero-is-unset", _param(CT, 0), 0, OK, NO_TIME_WARNINGS),
    Case("time-1-below-pal-minimum", _param(CT, 1), 1, "General error:"),
    Case("time-bytes", _param(CT, b"\x00\x01"), 0, OK, NO_TIME_WARNINGS, undefined=True),
    Case("time-no-data", _no_data(CT), 0, OK, NO_TIME_WARNINGS, undefined=True),
    Case("time-bignum", _raw_param(CT, b"\xc2\x44\x01\x00\x00\x00"), 0, OK, NO_TIME_WARNINGS, undefined=True),
    Case(
        "time-name-empty",
        _append("ConfigParams", lambda b, bld: {"Name": "", "Data": 5}),
        1,
        "General error:",
    ),
    Case(
        "time-name-empty-negative",
        _append("ConfigParams", lambda b, bld: {"Name": "", "Data": -1000}),
        13,
        EXPIRED,
    ),
    Case(
        "time-name-prefix",
        _append("ConfigParams", lambda b, bld: {"Name": "mbed.C", "Data": 5}),
        1,
        "General error:",
    ),
    # ---- item 4: private keys as Mbed TLS reads them
    Case("key-random-bytes", _key_data(lambda: bytes(range(40))), 18, f"Public key format invalid:{BS_KEY}"),
    Case("key-truncated", _own_key(lambda k, der: der[:-10]), 18, f"Public key format invalid:{BS_KEY}"),
    Case(
        "key-public-key-der",
        _key_data(lambda: _spki(_fresh("p256"))),
        18,
        f"Public key format invalid:{BS_KEY}",
    ),
    Case(
        "key-p384", _key_data(lambda: _traditional(_fresh("p384"))), 18, f"Public key format invalid:{BS_KEY}"
    ),
    Case("key-pem-text", _own_key(lambda k, der: _pem(k)), 15, f"General error:{BS_KEY}"),
    Case("key-rsa", _key_data(lambda: _pkcs8(_fresh("rsa"))), 18, f"Public key format invalid:{BS_KEY}"),
    Case(
        "key-ed25519", _key_data(lambda: _pkcs8(_fresh("ed25519"))), 18, f"Public key format invalid:{BS_KEY}"
    ),
    Case(
        "key-encrypted-pkcs8",
        _own_key(lambda k, der: _pkcs8(k, b"pw")),
        18,
        f"Public key format invalid:{BS_KEY}",
    ),
    Case(
        "key-sec1-version-2",
        _own_key(lambda k, der: _sec1(_private_value(k), pub=_point(k), version=2)),
        18,
        f"Public key format invalid:{BS_KEY}",
    ),
    Case(
        "key-sec1-no-curve",
        _own_key(lambda k, der: _sec1(_private_value(k), params=False, pub=_point(k))),
        18,
        f"Public key format invalid:{BS_KEY}",
    ),
    Case("key-zero", _key_data(lambda: _sec1(0)), 18, f"Public key format invalid:{BS_KEY}"),
    Case(
        "key-pem-marker-after-nul",
        _key_data(lambda: b"\x00-----BEGIN "),
        18,
        f"Public key format invalid:{BS_KEY}",
    ),
    Case("key-trailing-bytes", _own_key(lambda k, der: der + b"junk"), 0, OK),
    Case("key-sec1-no-public-key", _own_key(lambda k, der: _sec1(_private_value(k))), 0, OK),
    Case(
        "key-sec1-foreign-public-key",
        _own_key(lambda k, der: _sec1(_private_value(k), pub=_point(_fresh("p256")))),
        0,
        OK,
    ),
    Case(
        "key-33-byte-scalar", _own_key(lambda k, der: _sec1(_private_value(k), pub=_point(k), size=33)), 0, OK
    ),
    Case("key-pkcs8", _own_key(lambda k, der: _pkcs8(k)), 0, OK),
    Case("key-pkcs8-trailing", _own_key(lambda k, der: _pkcs8(k) + b"\x00\x00"), 0, OK),
    Case("key-long-form-length", _own_key(lambda k, der: b"\x30\x81" + der[1:]), 0, OK),
    Case("key-pem-marker-after-der", _own_key(lambda k, der: der + b"-----BEGIN "), 0, OK),
    Case(
        "key-unrelated-pkcs8",
        _key_data(lambda: _pkcs8(_fresh("p256"))),
        34,
        f"Certificate public key validation failed:{BS_CERT}",
    ),
    Case("public-key-ok", _extra_key("ECCPublic", lambda: _spki(_fresh("p256"))), 0, OK),
    Case("public-key-trailing", _extra_key("ECCPublic", lambda: _spki(_fresh("p256")) + b"\x00"), 0, OK),
    Case(
        "public-key-garbage",
        _extra_key("ECCPublic", lambda: GARBAGE_KEY),
        18,
        "Public key parse failed:custom.key",
    ),
    Case(
        "public-key-private-der",
        _extra_key("ECCPublic", lambda: _pkcs8(_fresh("p256"))),
        18,
        "Public key parse failed:custom.key",
    ),
    Case(
        "public-key-truncated",
        _extra_key("ECCPublic", lambda: _spki(_fresh("p256"))[:-5]),
        18,
        "Public key format invalid:custom.key",
    ),
    Case(
        "public-key-p384",
        _extra_key("ECCPublic", lambda: _spki(_fresh("p384"))),
        18,
        "Curve unsupported:custom.key",
    ),
    Case(
        "public-key-rsa",
        _extra_key("ECCPublic", lambda: _spki(_fresh("rsa"))),
        18,
        "Public key algorithm unknown:custom.key",
    ),
    Case(
        "public-key-ed25519",
        _extra_key("ECCPublic", lambda: _spki(_fresh("ed25519"))),
        18,
        "Public key algorithm unknown:custom.key",
    ),
    Case(
        "public-key-compressed",
        _extra_key("ECCPublic", lambda: _compressed_spki()),
        18,
        "Public key parse failed:custom.key",
    ),
    Case(
        "public-key-off-curve",
        _extra_key("ECCPublic", lambda: _off_curve_spki()),
        18,
        "EC key invalid:custom.key",
    ),
    Case(
        "public-key-inner-trailing",
        _extra_key("ECCPublic", lambda: _tlv(0x30, _spki(_fresh("p256"))[2:] + b"\x00")),
        18,
        "Public key invalid:custom.key",
    ),
    Case("public-key-pem", _extra_key("ECCPublic", lambda: _public_pem()), 15, "General error:custom.key"),
    # ---- item 5: certificates whose signature algorithm the device does not know
    Case(
        "ca-unknown-signature-algorithm",
        _cert_der_edit(0, _unknown_signature_algorithm),
        18,
        "General error:mbed.BootstrapServerCACert",
    ),
    Case(
        "update-cert-unknown-signature-algorithm",
        _cert_der_edit(1, _unknown_signature_algorithm),
        18,
        "General error:mbed.UpdateAuthCert",
    ),
    Case(
        "chain-root-unknown-signature-algorithm",
        _chain_der_edit(1, _unknown_signature_algorithm),
        18,
        f"General error:{BS_CERT}",
    ),
    Case("cert-ecdsa-sha384", _extra_cert("p256", "sha384"), 18, "General error:custom.cert"),
    Case("cert-ecdsa-sha224", _extra_cert("p256", "sha224"), 0, OK),
    Case("cert-rsa", _extra_cert("rsa", "sha256"), 18, "General error:custom.cert"),
    Case("cert-ed25519", _extra_cert("ed25519", None), 18, "General error:custom.cert"),
    Case("cert-p384-key", _extra_cert("p384", "sha256"), 18, "Curve unsupported:custom.cert"),
    # ---- item 6: ExtendedKeyUsage of the device certificate
    Case("eku-any", _device_with(lambda: [_cn()], eku=_eku_usages("ANY_EXTENDED_KEY_USAGE")), 0, OK),
    Case(
        "eku-server-auth-only",
        _device_with(lambda: [_cn()], eku=_eku_usages("SERVER_AUTH")),
        10,
        f"Certificate invalid:{BS_CERT}",
    ),
    Case(
        "eku-server-auth-and-any",
        _device_with(lambda: [_cn()], eku=_eku_usages("SERVER_AUTH", "ANY_EXTENDED_KEY_USAGE")),
        0,
        OK,
    ),
    Case(
        "eku-code-signing-and-client",
        _device_with(lambda: [_cn()], eku=_eku_usages("CODE_SIGNING", "CLIENT_AUTH")),
        0,
        OK,
    ),
    # ---- item 7: the LwM2M certificate's OU against the aid (and the CN lookup)
    Case(
        "aid-ou-then-x",
        _param(LW_URI, f"coaps://lwm2m.example.com?aid={AID}x"),
        14,
        f"Certificate CN attribute invalid:{LW_CERT}",
        LWM2M_WARNING,
        mode="lwm2m",
    ),
    Case(
        "aid-ou-then-query",
        _param(LW_URI, f"coaps://lwm2m.example.com?aid={AID}&x=1"),
        14,
        f"Certificate CN attribute invalid:{LW_CERT}",
        LWM2M_WARNING,
        mode="lwm2m",
    ),
    Case(
        "aid-after-ampersand",
        _param(LW_URI, f"coaps://lwm2m.example.com?x=1&aid={AID}"),
        0,
        OK,
        LWM2M_WARNING,
        mode="lwm2m",
    ),
    Case(
        "aid-same-length-other",
        _param(LW_URI, "coaps://lwm2m.example.com?aid=ffffffffffff"),
        14,
        f"Certificate CN attribute invalid:{LW_CERT}",
        LWM2M_WARNING,
        mode="lwm2m",
    ),
    Case(
        "aid-empty",
        _param(LW_URI, "coaps://lwm2m.example.com?aid="),
        28,
        f"URI format incorrect:{LW_CERT}",
        LWM2M_WARNING,
        mode="lwm2m",
    ),
    Case(
        "aid-question-mark-first",
        _param(LW_URI, f"coaps://lwm2m.example.com?aid=zz&aid={AID}"),
        14,
        f"Certificate CN attribute invalid:{LW_CERT}",
        LWM2M_WARNING,
        mode="lwm2m",
    ),
    Case(
        "aid-missing",
        _param(LW_URI, "coaps://lwm2m.example.com"),
        28,
        f"URI format incorrect:{LW_URI}",
        LWM2M_WARNING,
        mode="lwm2m",
    ),
    Case(
        "aid-behind-nul",
        _param(LW_URI, f"coaps://l.example.com\x00?aid={AID}"),
        28,
        f"URI format incorrect:{LW_URI}",
        LWM2M_WARNING,
        mode="lwm2m",
    ),
    Case(
        "ou-missing",
        _device_with(lambda: [_cn()], mode="lwm2m"),
        11,
        f"General error:{LW_CERT}",
        LWM2M_WARNING,
        mode="lwm2m",
    ),
    Case(
        "ou-first-of-two-counts",
        _device_with(lambda: [_ou(), _ou("zz"), _cn()], mode="lwm2m"),
        0,
        OK,
        LWM2M_WARNING,
        mode="lwm2m",
    ),
    Case(
        "ou-second-of-two-ignored",
        _device_with(lambda: [_ou("zz"), _ou(), _cn()], mode="lwm2m"),
        14,
        f"Certificate CN attribute invalid:{LW_CERT}",
        LWM2M_WARNING,
        mode="lwm2m",
    ),
    Case(
        "ou-short",
        lambda b, bld: (
            _device_with(lambda: [_ou("abc"), _cn()], mode="lwm2m")(b, bld),
            bld.set_param(b, LW_URI, "coaps://l.example.com?aid=ab"),
        ),
        28,
        f"URI format incorrect:{LW_CERT}",
        LWM2M_WARNING,
        mode="lwm2m",
    ),
    Case("cn-missing", _device_with(lambda: [_ou("o")]), 11, f"General error:{BS_CERT}"),
    Case(
        "cn-after-unknown-attribute",
        _device_with(lambda: [_custom_attribute(), _cn()]),
        11,
        f"General error:{BS_CERT}",
    ),
    Case("cn-before-unknown-attribute", _device_with(lambda: [_cn(), _custom_attribute()]), 0, OK),
    Case(
        "cn-first-of-two-counts",
        _device_with(lambda: [_cn("zz"), _cn()]),
        14,
        f"Certificate CN attribute invalid:{BS_CERT}",
    ),
    Case(
        "endpoint-with-nul",
        _param("mbed.EndpointName", ENDPOINT + "\x00"),
        14,
        f"Certificate CN attribute invalid:{BS_CERT}",
    ),
    # ---- item 8 (six-csrs above), item 9: the response group in a request
    Case("csr-reqs-prefix-is-csr-reqs", _set("CsrReq", []), 20, "General error:"),
    # ---- item 10: FCC takes any prefix of a known name (strncmp over the received length)
    Case("group-cert", _renamed_group("Certificates", "Cert"), 0, OK),
    Case("group-key", _renamed_group("Keys", "Key"), 0, OK),
    Case("group-c-is-certificates", _renamed_group("Certificates", "C"), 0, OK),
    Case("group-certificatec-is-chains", _renamed_group("CertificateChains", "CertificateC"), 0, OK),
    Case("group-co-is-config", _renamed_group("ConfigParams", "Co"), 0, OK),
    Case("group-v-is-verify", lambda b, bld: (b.update(V=0), bld.drop_param(b, "mbed.EndpointName")), 0, OK),
    Case("group-empty-key-skipped", _set("", 5), 0, OK),
    Case("group-s-skipped", _set("S", 5), 0, OK),
    Case("group-e-skipped", _set("E", 5), 0, OK),
    Case("group-entrop-skipped", _set("Entrop", bytes(48)), 0, OK),
    Case("group-si-is-sid", _set("SI", "sid"), 0, OK, sid="sid"),
    Case("group-k-is-keys", _set("K", []), 0, OK),
    Case(
        "group-kp-is-keep-alive",
        _set("Kp", 1),
        0,
        OK,
        "CA identifier wasn't set properly:mbed.BootstrapServerCACert\n",
    ),
    Case("group-d-is-disable", _set("D", 0), 0, OK),
    Case("group-longer-than-known", _set("KeysX", []), 23, "General error:"),
    Case("group-scheme-version-longer", _set("SchemeVersionX", "0.0.1"), 23, "General error:"),
    Case("field-nam", _renamed_field("Keys", "Name", "Nam"), 0, OK),
    Case("field-n", _renamed_field("Keys", "Name", "N"), 0, OK),
    Case("field-t", _renamed_field("Keys", "Type", "T"), 0, OK),
    Case("field-f", _renamed_field("Keys", "Format", "F"), 0, OK),
    Case("field-d", _renamed_field("Keys", "Data", "D"), 0, OK),
    Case("format-d", _field("Keys", "Format", "d"), 0, OK),
    Case("format-empty", _field("Keys", "Format", ""), 0, OK),
    Case("format-derx", _field("Keys", "Format", "derx"), 37, "General error:"),
    Case("format-absent", _without("Keys", "Format"), 0, OK),
    Case("type-eccpriv", _field("Keys", "Type", "ECCPriv"), 0, OK),
    Case("type-empty-is-private", _field("Keys", "Type", ""), 0, OK),
    Case("type-eccp-is-private", _field("Keys", "Type", "ECCP"), 0, OK),
    Case("type-eccpu-is-public", _field("Keys", "Type", "ECCPu"), 18, f"Public key parse failed:{BS_KEY}"),
    Case("empty-field-renames-key", _field("Keys", "", "other.name"), 25, f"Item does not exist:{BS_KEY}"),
    Case("empty-field-bytes-in-key", _field("Keys", "", b"x"), 20, "General error:"),
    Case(
        "empty-field-renames-certificate",
        _field("Certificates", "", "mbed.Other"),
        25,
        "Item does not exist:mbed.BootstrapServerCACert",
    ),
    Case(
        "empty-field-renames-param",
        _field("ConfigParams", "", "mbed.Other", 1),
        25,
        "Item does not exist:mbed.EndpointName",
    ),
    Case("chain-data-is-data-array", _renamed_field("CertificateChains", "DataArray", "Data"), 0, OK),
    Case("chain-d-is-data-array", _renamed_field("CertificateChains", "DataArray", "D"), 0, OK),
    Case("chain-data-not-an-array", _field("CertificateChains", "Data", b"\x30\x00"), 20, "General error:"),
    Case("cert-d-is-data", _renamed_field("Certificates", "Data", "D"), 0, OK),
    Case("cert-dat-is-data", _renamed_field("Certificates", "Data", "Dat"), 0, OK),
    Case(
        "cert-data-array-unknown", _renamed_field("Certificates", "Data", "DataArray"), 37, "General error:"
    ),
    Case("cert-f-is-format", _renamed_field("Certificates", "Format", "F"), 0, OK),
    Case("cert-p-is-prkn", _field("Certificates", "P", "nokey"), 34, "Item does not exist:nokey"),
    Case("param-dat-is-data", _renamed_field("ConfigParams", "Data", "Dat", 1), 0, OK),
    Case("param-tag-2-around-int", _raw_param(CUSTOM, b"\xc2\x05"), 0, OK),
    Case("param-tag-2-around-text", _raw_param(CUSTOM, b"\xc2\x61a"), 0, OK),
    Case("param-tag-2-twice", _raw_param(CUSTOM, b"\xc2\xc2\x41\x01"), 0, OK),
    Case("param-tag-3", _raw_param(CUSTOM, b"\xc3\x41\x01"), 20, f"General error:{CUSTOM}"),
    Case("param-true", _raw_param(CUSTOM, b"\xf5"), 20, f"General error:{CUSTOM}"),
    Case("param-null", _raw_param(CUSTOM, b"\xf6"), 20, f"General error:{CUSTOM}"),
    Case("param-half-float", _raw_param(CUSTOM, b"\xf9\x3c\x00"), 20, f"General error:{CUSTOM}"),
    Case("param-map", _raw_param(CUSTOM, b"\xa0"), 20, f"General error:{CUSTOM}"),
    Case(
        "csr-short-field-names",
        lambda b, bld: {
            "SchemeVersion": "0.0.1",
            "SID": "s",
            "Verify": 0,
            "CsrReqs": [{"P": "k", "S": "CN=a", "M": 1}],
        },
        25,
        "Item does not exist:mbed.UseBootstrap",
        sid="s",
    ),
    Case(
        "csr-storage-medium-empty-is-se", _csr_bundle("CN=a", SM={"Prv": ""}), 37, "General error:", sid="s"
    ),
    Case("text-not-utf8-in-value", _bytes_replaced(b"Toshiba", b"Tosh\xffba"), 0, OK),
    Case(
        "text-not-utf8-in-group", _bytes_replaced(b"ConfigParams", b"ConfigParam\xff"), 23, "General error:"
    ),
    Case(
        "text-not-utf8-in-name",
        _bytes_replaced(b"mbed.Manufacturer", b"mbed.Manufactur\xffr"),
        16,
        "File name invalid:mbed.Manufactur\udcffr",
    ),
    # ---- item 11: the scheme version is looked up before keys are checked
    Case("only-integer-key", _top([(1, 2)]), 24, "General error:"),
    Case("scheme-version-as-byte-string-key", _top([(b"SchemeVersion", "0.0.1")]), 24, "General error:"),
    Case("integer-key-then-scheme", _top([(1, 2), ("SchemeVersion", "0.0.1")]), 20, "General error:"),
    Case("scheme-then-integer-key", _top([("SchemeVersion", "0.0.1"), (1, 2)]), 20, "General error:"),
    Case("empty-map", _top([]), 24, "General error:"),
    Case("scheme-version-prefix-key", _renamed_group("SchemeVersion", "SchemeVersio"), 24, "General error:"),
    # ---- item 12: chains are created before they are filled
    Case(
        "chain-exists",
        _append("CertificateChains", lambda b, bld: dict(b["CertificateChains"][0])),
        15,
        f"Data already exists:{BS_CERT}",
    ),
    Case(
        "chain-over-single-certificate",
        _append(
            "CertificateChains",
            lambda b, bld: {
                "Name": "mbed.UpdateAuthCert",
                "Format": "der",
                "DataArray": [bld.pki.update_cert],
            },
        ),
        15,
        "Data already exists:mbed.UpdateAuthCert",
    ),
    Case(
        "chain-name-invalid",
        _append("CertificateChains", lambda b, bld: dict(b["CertificateChains"][0], Name="bad name")),
        15,
        "File name invalid:bad name",
    ),
    Case(
        "chain-name-too-long",
        _append("CertificateChains", lambda b, bld: dict(b["CertificateChains"][0], Name="x" * 101)),
        15,
        "File name too long:" + "x" * 101,
    ),
    Case(
        "chain-empty-certificate",
        _append(
            "CertificateChains", lambda b, bld: {"Name": "custom.chain", "Format": "der", "DataArray": [b""]}
        ),
        15,
        "General error:custom.chain",
    ),
    Case(
        "chain-garbage-certificate",
        _append(
            "CertificateChains",
            lambda b, bld: {"Name": "custom.chain", "Format": "der", "DataArray": [GARBAGE_KEY]},
        ),
        18,
        "Certificate parse failed:custom.chain",
    ),
    Case(
        "chain-name-checked-before-data",
        _append(
            "CertificateChains",
            lambda b, bld: {"Name": "bad name", "Format": "der", "DataArray": [GARBAGE_KEY]},
        ),
        15,
        "File name invalid:bad name",
    ),
    Case(
        "certificate-exists",
        _append("Certificates", lambda b, bld: dict(b["Certificates"][0])),
        17,
        "Data already exists:mbed.BootstrapServerCACert",
    ),
    Case(
        "key-exists", _append("Keys", lambda b, bld: dict(b["Keys"][0])), 17, f"Data already exists:{BS_KEY}"
    ),
    Case(
        "key-data-checked-before-existence",
        _append("Keys", lambda b, bld: dict(b["Keys"][0], Data=GARBAGE_KEY)),
        18,
        f"Public key format invalid:{BS_KEY}",
    ),
    Case(
        "key-data-checked-before-name",
        _append("Keys", lambda b, bld: dict(b["Keys"][0], Name="bad name", Data=GARBAGE_KEY)),
        18,
        "Public key format invalid:bad name",
    ),
    Case(
        "certificate-data-checked-before-name",
        _append("Certificates", lambda b, bld: dict(b["Certificates"][0], Name="bad name", Data=GARBAGE_KEY)),
        18,
        "Certificate parse failed:bad name",
    ),
    Case("key-without-data", _without("Keys", "Data"), 16, f"Item data empty:{BS_KEY}"),
    Case(
        "prkn-certificate-garbage",
        _append(
            "Certificates",
            lambda b, bld: {"Name": "custom.c", "Format": "der", "Data": GARBAGE_KEY, "PrKN": BS_KEY},
        ),
        34,
        "Certificate parse failed:custom.c",
    ),
    Case(
        "prkn-mismatch",
        _append(
            "Certificates",
            lambda b, bld: {"Name": "custom.c", "Format": "der", "Data": bld.pki.server_ca, "PrKN": BS_KEY},
        ),
        34,
        "Self-generated certificate validation failed:custom.c",
    ),
    Case(
        "prkn-checked-before-name",
        _append(
            "Certificates",
            lambda b, bld: {"Name": "bad name", "Format": "der", "Data": bld.pki.server_ca, "PrKN": "nokey"},
        ),
        34,
        "Item does not exist:nokey",
    ),
    Case(
        "prkn-checked-before-chain-name",
        _append(
            "CertificateChains",
            lambda b, bld: {
                "Name": "bad name",
                "Format": "der",
                "DataArray": [bld.pki.server_ca],
                "PrKN": "nokey",
            },
        ),
        34,
        "Item does not exist:nokey",
    ),
    # ---- item 13: CSR subjects are read by Mbed TLS's rules
    Case("subject-ok", _csr_bundle("C=GB,O=Acme,CN=dev-1"), 0, OK, sid="s", csrs=1),
    Case("subject-garbage-is-empty", _csr_bundle("garbage"), 0, OK, sid="s", csrs=1),
    Case("subject-empty", _csr_bundle(""), 0, OK, sid="s", csrs=1),
    Case("subject-trailing-comma", _csr_bundle("CN=a,"), 0, OK, sid="s", csrs=1),
    Case("subject-repeated-type", _csr_bundle("CN=a,O=x,CN=b"), 0, OK, sid="s", csrs=1),
    Case("subject-three-letter-country", _csr_bundle("C=GBR"), 0, OK, sid="s", csrs=1),
    Case("subject-escaped-comma", _csr_bundle("O=a\\,b,CN=c"), 0, OK, sid="s", csrs=1),
    Case("subject-spaces-after-comma", _csr_bundle("CN=a,  O=b"), 0, OK, sid="s", csrs=1),
    Case("subject-255-byte-value", _csr_bundle("CN=" + "a" * 255), 0, OK, sid="s", csrs=1),
    Case("subject-empty-value", _csr_bundle("CN="), 0, OK, sid="s", csrs=1),
    Case("subject-garbage-after", _csr_bundle("CN=a,garbage"), 0, OK, sid="s", csrs=1),
    Case("subject-email-names", _csr_bundle("R=a@b,emailAddress=c@d"), 0, OK, sid="s", csrs=1),
    Case("subject-printable-types", _csr_bundle("serialNumber=12,postalCode=99"), 0, OK, sid="s", csrs=1),
    Case("subject-unknown-type", _csr_bundle("XX=1,CN=a"), 18, "General error:", sid="s"),
    Case("subject-other-escape", _csr_bundle("O=a\\x"), 18, "General error:", sid="s"),
    Case("subject-space-before-type", _csr_bundle(" CN=a"), 18, "General error:", sid="s"),
    Case("subject-256-byte-value", _csr_bundle("CN=" + "a" * 256), 18, "General error:", sid="s"),
    Case("subject-lowercase-type", _csr_bundle("cn=a"), 18, "General error:", sid="s"),
    Case("subject-trailing-backslash", _csr_bundle("CN=a\\"), 18, "General error:", sid="s"),
    Case(
        "csr-md-2",
        lambda b, bld: {
            "SchemeVersion": "0.0.1",
            "SID": "s",
            "Verify": 0,
            "KpAlvSess": 1,
            "CsrReqs": [{"PrKN": "k", "Subj": "CN=a", "MD": 2}],
        },
        18,
        "General error:",
        sid="s",
    ),
    Case("csr-extensions", _csr_bundle("CN=a", Ext={"KU": 1, "EKU": 4}), 0, OK, sid="s", csrs=1),
    Case("csr-trust-skipped", _csr_bundle("CN=a", Ext={"Trust": 1, "KU": 9}), 0, OK, sid="s", csrs=1),
    Case(
        "csr-public-key-too",
        _csr_bundle("CN=a", SM={"Prv": "Device", "Pub": "Device"}),
        0,
        OK,
        sid="s",
        csrs=1,
    ),
]


CASES += [
    # ---- the envelope and the flags, as tinycbor and fcc_bundle_get_bool read them
    Case("trailing-byte", lambda b, bld: bld.encode(b) + b"\x00", 20, "General error:"),
    Case("two-items", lambda b, bld: bld.encode(b) + bld.encode(b), 20, "General error:"),
    Case("indefinite-top-map", lambda b, bld: b"\xbf" + bld.encode(b)[1:] + b"\xff", 20, "General error:"),
    Case("verify-minus-1", _set("Verify", -1), 20, "General error:Verify"),
    Case("verify-text", _set("Verify", "1"), 20, "General error:Verify"),
    Case("verify-cbor-true", _set("Verify", True), 20, "General error:Verify"),
    Case(
        "verify-2**32-is-0",
        lambda b, bld: (b.update(Verify=1 << 32), bld.drop_param(b, "mbed.EndpointName")),
        0,
        OK,
    ),
    Case(
        "keep-alive-2**32+1-is-1",
        _set("KpAlvSess", (1 << 32) + 1),
        0,
        OK,
        "CA identifier wasn't set properly:mbed.BootstrapServerCACert\n",
    ),
    Case("disable-text", _set("Disable", "1"), 20, "General error:Disable"),
    Case("sid-bytes", _set("SID", b"s"), 20, "General error:SID"),
    Case("entropy-49", _set("Entropy", bytes(49)), 3, "General error:entropy"),
    Case("rot-as-int", _set("ROT", 16), 20, "General error:rot"),
    Case("keys-not-an-array", _set("Keys", {"Name": "x"}), 20, "General error:"),
    Case("key-entry-not-a-map", _set("Keys", ["k"]), 20, "General error:"),
    Case("key-name-not-text", _field("Keys", "Name", 5), 20, "General error:"),
    Case("key-type-symmetric", _field("Keys", "Type", "Symmetric"), 37, "General error:"),
    Case("key-acl-field", _field("Keys", "ACL", "x"), 37, "General error:"),
    Case(
        "cert-prkn-not-text",
        _field("Certificates", "PrKN", 1),
        20,
        "General error:mbed.BootstrapServerCACert",
    ),
    Case(
        "param-data-before-name-bad",
        lambda b, bld: b["ConfigParams"].append({"Data": [1], "Name": "a"}),
        20,
        "General error:",
    ),
    Case("param-format-field", _field("ConfigParams", "Format", "x"), 37, "General error:"),
    # A second DataArray (here "D") carries on at FCC's running index: a chain of three.
    Case(
        "chain-data-array-twice",
        _field("CertificateChains", "D", [b"\x30"]),
        18,
        f"Certificate parse failed:{BS_CERT}",
    ),
    # ---- CSR requests as fcc_bundle_csr_utils.c parses them and KCM makes them
    Case("csr-ku-unknown-bits-only", _csr_bundle("CN=a", Ext={"KU": 16}), 15, "General error:", sid="s"),
    Case("csr-ku-unknown-and-known-bits", _csr_bundle("CN=a", Ext={"KU": 17}), 0, OK, sid="s", csrs=1),
    Case("csr-ku-zero", _csr_bundle("CN=a", Ext={"KU": 0}), 0, OK, sid="s", csrs=1),
    Case("csr-eku-unknown-bit", _csr_bundle("CN=a", Ext={"EKU": 32}), 15, "General error:", sid="s"),
    Case("csr-ext-k-is-ku", _csr_bundle("CN=a", Ext={"K": 1}), 0, OK, sid="s", csrs=1),
    Case("csr-ext-not-a-map", _csr_bundle("CN=a", Ext=[1]), 20, "General error:", sid="s"),
    Case(
        "csr-md-2**32+1-is-sha256",
        lambda b, bld: {
            "SchemeVersion": "0.0.1",
            "SID": "s",
            "Verify": 0,
            "KpAlvSess": 1,
            "CsrReqs": [{"PrKN": "k", "Subj": "CN=a", "MD": (1 << 32) + 1}],
        },
        0,
        OK,
        sid="s",
        csrs=1,
    ),
    Case("csr-sm-pub-alone", _csr_bundle("CN=a", SM={"Pub": "Device"}), 20, "General error:", sid="s"),
    Case("csr-sm-pub-twice", _csr_bundle("CN=a", SM={"Pub": "Device", "P": "D"}), 0, OK, sid="s", csrs=1),
    Case(
        "csr-sm-three-entries",
        _csr_bundle("CN=a", SM={"Prv": "Device", "Pub": "Device", "X": 1}),
        20,
        "General error:",
        sid="s",
    ),
    Case("csr-unknown-field", _csr_bundle("CN=a", Bogus=1), 37, "General error:", sid="s"),
    Case(
        "csr-name-invalid",
        lambda b, bld: {
            "SchemeVersion": "0.0.1",
            "SID": "s",
            "Verify": 0,
            "KpAlvSess": 1,
            "CsrReqs": [{"PrKN": "bad name", "Subj": "CN=a", "MD": 1}],
        },
        16,
        "File name invalid:",
        sid="s",
    ),
    Case(
        "csr-two-requests",
        lambda b, bld: {
            "SchemeVersion": "0.0.1",
            "SID": "s",
            "Verify": 0,
            "KpAlvSess": 1,
            "CsrReqs": [{"PrKN": "k1", "Subj": "CN=a", "MD": 1}, {"PrKN": "k2", "Subj": "CN=b", "MD": 1}],
        },
        0,
        OK,
        sid="s",
        csrs=2,
    ),
    Case(
        "csr-same-name-twice",
        lambda b, bld: {
            "SchemeVersion": "0.0.1",
            "SID": "s",
            "Verify": 0,
            "KpAlvSess": 1,
            "CsrReqs": [{"PrKN": "k1", "Subj": "CN=a", "MD": 1}, {"PrKN": "k1", "Subj": "CN=b", "MD": 1}],
        },
        17,
        "Desired generated key name already exists:",
        sid="s",
    ),
]


# ---------------------------------------------------------------- sessions (item 14 and the CSR round trip)

Step = Callable[[Any, list[Any]], "dict[str, Any] | bytes"]
"""One bundle of a session, built from the builder and the responses so far."""


@dataclass(frozen=True)
class Answer:
    """What the device answers one bundle of a session."""

    status: int
    info: str
    warnings: str = ""
    sid: str | None = None
    csrs: int = 0


@dataclass(frozen=True)
class Session:
    """Bundles sent on one connection, each with the real FCC's answer (``None``: the device closed)."""

    id: str
    steps: tuple[Step, ...]
    answers: tuple[Answer | None, ...]
    atomic: bool = False
    """Run the virtual device with ``atomic_bundles`` (provkit's option; the real FCC is never atomic)."""


def _open(bld: Any, responses: list[Any]) -> dict[str, Any]:
    """Open a keep-alive session and store nothing."""
    return {"SchemeVersion": "0.0.1", "KpAlvSess": 1, "Verify": 0}


def _failing_at_keys(bld: Any, responses: list[Any]) -> dict[str, Any]:
    """A whole bootstrap bundle whose private key does not parse: its ConfigParams came first."""
    bundle = bld.valid()
    bundle["Keys"][0]["Data"] = GARBAGE_KEY
    bundle["KpAlvSess"] = 1
    return dict(bundle)


def _valid(bld: Any, responses: list[Any]) -> dict[str, Any]:
    return dict(bld.valid())


def _valid_with_entropy(bld: Any, responses: list[Any]) -> dict[str, Any]:
    return dict(bld.valid(), Entropy=bytes(48))


def _failing_with_entropy(bld: Any, responses: list[Any]) -> dict[str, Any]:
    return dict(_failing_at_keys(bld, responses), Entropy=bytes(48))


def _certificates_second_bad(bld: Any, responses: list[Any]) -> dict[str, Any]:
    bundle = bld.valid()
    bundle["Certificates"][1]["Data"] = GARBAGE_KEY
    bundle["KpAlvSess"] = 1
    return dict(bundle)


def _server_ca_only(bld: Any, responses: list[Any]) -> dict[str, Any]:
    return {
        "SchemeVersion": "0.0.1",
        "Certificates": [bld.valid()["Certificates"][0]],
        "KpAlvSess": 1,
        "Verify": 0,
    }


def _csrs_second_bad(bld: Any, responses: list[Any]) -> dict[str, Any]:
    requests = [{"PrKN": "k1", "Subj": "CN=a", "MD": 1}, {"PrKN": "k2", "Subj": "XX=a", "MD": 1}]
    return {"SchemeVersion": "0.0.1", "SID": "s", "Verify": 0, "KpAlvSess": 1, "CsrReqs": requests}


def _csr_k1(bld: Any, responses: list[Any]) -> dict[str, Any]:
    requests = [{"PrKN": "k1", "Subj": "CN=a", "MD": 1}]
    return {"SchemeVersion": "0.0.1", "SID": "s", "Verify": 0, "KpAlvSess": 1, "CsrReqs": requests}


def _chain_broken(bld: Any, responses: list[Any]) -> dict[str, Any]:
    chains = bld.valid()["CertificateChains"]
    chains[0]["DataArray"][1] = bld.pki.server_ca
    return {"SchemeVersion": "0.0.1", "KpAlvSess": 1, "Verify": 0, "CertificateChains": chains}


def _chain_good(bld: Any, responses: list[Any]) -> dict[str, Any]:
    return {
        "SchemeVersion": "0.0.1",
        "KpAlvSess": 1,
        "Verify": 0,
        "CertificateChains": bld.valid()["CertificateChains"],
    }


def _without_endpoint(bld: Any, responses: list[Any]) -> dict[str, Any]:
    bundle = bld.valid()
    bld.drop_param(bundle, "mbed.EndpointName")
    bundle["KpAlvSess"] = 1
    return dict(bundle)


def _endpoint_only(bld: Any, responses: list[Any]) -> dict[str, Any]:
    return {"SchemeVersion": "0.0.1", "ConfigParams": [{"Name": "mbed.EndpointName", "Data": ENDPOINT}]}


def _by_device_request(mode: str) -> Step:
    def step(bld: Any, responses: list[Any]) -> dict[str, Any]:
        stem = "Bootstrap" if mode == "bootstrap" else "LwM2M"
        ou = f"OU={AID}," if mode == "lwm2m" else ""
        request = {
            "PrKN": f"mbed.{stem}DevicePrivateKey",
            "Subj": f"O=provkit tests,{ou}CN={ENDPOINT}",
            "MD": 1,
            "Ext": {"KU": 1, "EKU": 4},
        }
        return {
            "SchemeVersion": "0.0.1",
            "SID": "by-device",
            "KpAlvSess": 1,
            "Verify": 0,
            "CsrReqs": [request],
        }

    return step


def _by_device_certificate(mode: str) -> Step:
    """Sign the device's CSR (sent with Mbed TLS's NULL parameter) as the factory does, and send the rest."""

    def step(bld: Any, responses: list[Any]) -> dict[str, Any]:
        from cryptography import x509 as cx509
        from cryptography.hazmat.primitives import hashes
        from cryptography.x509.oid import ExtendedKeyUsageOID

        from provkit.crypto.csr import load_and_verify_csr
        from provkit.crypto.x509 import certificate_der

        csr = load_and_verify_csr(responses[-1].csrs[0].data)
        cert = (
            cx509.CertificateBuilder()
            .subject_name(csr.subject)
            .issuer_name(bld.pki.ca.subject)
            .public_key(csr.public_key())
            .serial_number(cx509.random_serial_number())
            .not_valid_before(NOW - dt.timedelta(days=1))
            .not_valid_after(NOW + dt.timedelta(days=20 * 365))
            .add_extension(cx509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(bld.pki.ca_key, hashes.SHA256())
        )
        bundle = bld.valid(mode)
        key_name = bundle.pop("Keys")[0]["Name"]
        bundle["CertificateChains"][0]["DataArray"][0] = certificate_der(cert)
        bundle["CertificateChains"][0]["PrKN"] = key_name
        bundle["SID"] = "by-device"
        return dict(bundle)

    return step


_KEY_FAILURE = Answer(18, f"Public key format invalid:{BS_KEY}")
_OPENED = Answer(0, OK)

SESSIONS = [
    # Item 14: a failed bundle keeps what it stored before failing; the retry meets it.
    Session(
        "retry-after-key-failure",
        (_open, _failing_at_keys, _valid),
        (_OPENED, _KEY_FAILURE, Answer(17, "Data already exists:mbed.UseBootstrap")),
    ),
    Session(
        "retry-after-key-failure-atomic",
        (_open, _failing_at_keys, _valid),
        (_OPENED, _KEY_FAILURE, Answer(0, OK)),
        atomic=True,
    ),
    Session(
        "retry-after-failure-meets-the-entropy",
        (_open, _failing_with_entropy, _valid_with_entropy),
        (_OPENED, _KEY_FAILURE, Answer(8, "Entropy error:entropy")),
    ),
    Session(
        "items-before-the-failing-one-stay",
        (_open, _certificates_second_bad, _server_ca_only),
        (
            _OPENED,
            Answer(18, "Certificate parse failed:mbed.UpdateAuthCert"),
            Answer(17, "Data already exists:mbed.BootstrapServerCACert"),
        ),
    ),
    Session(
        "csr-keys-before-the-failing-request-stay",
        (_open, _csrs_second_bad, _csr_k1),
        (
            _OPENED,
            Answer(18, "General error:", sid="s"),
            Answer(17, "Desired generated key name already exists:", sid="s"),
        ),
    ),
    Session(
        "failed-chain-leaves-nothing",
        (_open, _chain_broken, _chain_good),
        (_OPENED, Answer(18, f"Chain validation error:{BS_CERT}"), Answer(0, OK)),
    ),
    Session(
        "verification-failure-keeps-the-items",
        (_open, _without_endpoint, _endpoint_only),
        (_OPENED, Answer(25, "Item does not exist:mbed.EndpointName"), Answer(0, OK)),
    ),
    Session(
        "failure-before-kpalvsess-ends-a-fresh-session",
        (lambda bld, responses: _failing_at_keys(bld, responses), _valid),
        (_KEY_FAILURE, None),
    ),
    # Item 1: by_device, the device's CSR written by Mbed TLS 2.28.2 (NULL parameter), in both modes.
    Session(
        "by-device-bootstrap",
        (_by_device_request("bootstrap"), _by_device_certificate("bootstrap")),
        (Answer(0, OK, sid="by-device", csrs=1), Answer(0, OK, sid="by-device")),
    ),
    Session(
        "by-device-lwm2m",
        (_by_device_request("lwm2m"), _by_device_certificate("lwm2m")),
        (Answer(0, OK, sid="by-device", csrs=1), Answer(0, OK, LWM2M_WARNING, sid="by-device")),
    ),
]


def _build(case: Case, builder: Any) -> bytes:
    bundle = builder.valid(case.mode)
    result = case.mutate(bundle, builder)
    if isinstance(result, bytes):
        return result
    if isinstance(result, dict):
        return builder.encode(result)
    return builder.encode(bundle)


def build_session_step(step: Step, builder: Any, responses: list[Any]) -> bytes:
    """Encode one session step."""
    result = step(builder, responses)
    return result if isinstance(result, bytes) else bytes(builder.encode(result))
