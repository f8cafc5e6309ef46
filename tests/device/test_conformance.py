"""Conformance table: bundle mutations with the exact ReturnStatus, InfoMessage and WarningInfo."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import cbor2
import pytest

from provkit.codes import SUCCESS_INFO_MESSAGE as OK
from provkit.device.fcc import FactoryConfiguratorClient
from provkit.wire.response import decode_response

B = Builder = Any  # the conftest Builder (fixtures cannot be imported as a type)

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
    Case("csrs-group-in-request", _set("Csrs", []), 22, "General error:"),
    Case("key-field-instead-of-name", _rename_key_field, 37, "General error:"),
    Case("key-format-kuku", _key_field("Format", "kuku"), 37, "General error:"),
    Case("key-format-pem", _key_field("Format", "pem"), 37, "General error:"),
    Case("key-type-rsa", _key_field("Type", "RSAPrivate"), 37, "General error:"),
    Case(
        "key-data-garbage",
        _key_field("Data", b"\x30\x03\x02\x01\x00"),
        18,
        f"Private key parse failed:{BS_KEY}",
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
    Case(
        "use-bootstrap-2-bytes",
        _param("mbed.UseBootstrap", b"\x01\x00"),
        27,
        "Item size is wrong:mbed.UseBootstrap",
    ),
    Case(
        "use-bootstrap-8-bytes",
        _param("mbed.UseBootstrap", bytes(8)),
        25,
        "Item does not exist:mbed.UseBootstrap",
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
    Case("no-client-auth", _device_cert(client_auth=False), 10, f"Certificate invalid:{BS_CERT}"),
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
    # FCC reads FirstToClaim inside the URI check: failures carry the URI name, before the scheme.
    Case(
        "first-to-claim-2-bytes",
        lambda b, bld: (
            bld.set_param(b, "mbed.FirstToClaim", b"\x01\x00"),
            bld.set_param(b, BS_URI, "soap://x?aid=1"),
        ),
        27,
        f"Item size is wrong:{BS_URI}",
    ),
    Case("first-to-claim-8-bytes", _param("mbed.FirstToClaim", bytes(8)), 15, f"General error:{BS_URI}"),
    Case(
        "first-to-claim-lwm2m",
        _param("mbed.FirstToClaim", 1),
        29,
        "first to claim not allowed:mbed.FirstToClaim",
        "Bootstrap mode not activated:mbed.UseBootstrap\n",
        mode="lwm2m",
    ),
    Case(
        "lwm2m-wrong-ou",
        lambda b, bld: bld.set_param(b, "mbed.LwM2MServerURI", "coaps://lwm2m.example.com?aid=ffff"),
        14,
        "Certificate CN attribute invalid:mbed.LwM2MDeviceCert",
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
        f"Certificate parse failed:{BS_CERT}",
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
    # More recipes from the early FCC test generator (pelion-fcc.md §7).
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
    # CsrReqs is parsed after the session rules and after every other group (§1.8).
    Case("six-csrs-without-sid", _csrs(6, Verify=0), 20, "General error:"),
    Case("bad-csr-before-bad-key", _bad_csr_then_bad_key, 18, f"Private key parse failed:{BS_KEY}"),
    Case("csr-with-verify", _csrs(1, SID="s", Verify=1), 20, "General error:"),
    Case(
        "six-csrs",
        _csrs(6, SID="s", Verify=0),
        36,
        "Too many CSR requests. Maximum CSR requests supported is 5",
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
    Case("current-time-text", _param("mbed.CurrentTime", "now"), 20, "General error:"),
]


def _build(case: Case, builder: Any) -> bytes:
    bundle = builder.valid(case.mode)
    result = case.mutate(bundle, builder)
    if isinstance(result, bytes):
        return result
    if isinstance(result, dict):
        return builder.encode(result)
    return builder.encode(bundle)


def test_table_is_large_enough() -> None:
    """The conformance table covers at least 40 distinct bundle cases."""
    assert len(CASES) >= 40
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_conformance(case: Case, builder: Any, memory_fcc: FactoryConfiguratorClient) -> None:
    """The device answers each case with FCC's exact status, InfoMessage and WarningInfo."""
    result = memory_fcc.bundle_handler(_build(case, builder))
    assert result.response is not None
    response = decode_response(result.response)
    assert (response.return_status, response.info_message, response.warning_info) == (
        case.status,
        case.info,
        case.warnings,
    )
    assert int(result.status) == case.status
    if case.status != 0:
        assert memory_fcc.kcm.list_items() == []


def test_sid_echoed_when_parsed_before_failure(builder: Any, memory_fcc: FactoryConfiguratorClient) -> None:
    """A SID that precedes the failing group is echoed in the error response."""
    result = memory_fcc.bundle_handler(builder.encode(_sid_then_bad_group({}, builder)))
    assert result.response is not None
    response = decode_response(result.response)
    assert (response.return_status, response.sid) == (23, "sess-1")


def test_golden_success_response(builder: Any, memory_fcc: FactoryConfiguratorClient) -> None:
    """A successful bundle without warnings answers FCC's exact 80-byte success response."""
    result = memory_fcc.bundle_handler(builder.encode(builder.valid()))
    expected = bytes.fromhex(
        "bf6d536368656d6556657273696f6e65302e302e31"
        "6c52657475726e53746174757300"
        "6b496e666f4d6573736167657"
        "81e54686520466163746f72792070726f636573732073756363656564656"
        "40aff"
    )
    assert result.response == expected
    assert len(expected) == 80
