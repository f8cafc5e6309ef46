"""The factory-side encoder emits FCC's format and refuses what FCC would refuse."""

from __future__ import annotations

import cbor2
import pytest

from provkit.errors import BundleEncodeError
from provkit.wire.bundle import (
    Bundle,
    CertificateChainItem,
    CertificateItem,
    ConfigParam,
    CsrRequest,
    KeyItem,
    StorageMedium,
    encode_bundle,
)

CSR = CsrRequest("gen.key", "CN=dev")


def test_flags_are_integers_and_keys_are_text() -> None:
    """Flags go out as CBOR integers 0/1 in a definite top map with text keys."""
    data = encode_bundle(Bundle(verify=False, disable=True, keep_alive=False))
    assert data[0] == 0xA4  # definite map of 4
    decoded = cbor2.loads(data)
    assert decoded == {"SchemeVersion": "0.0.1", "KpAlvSess": 0, "Verify": 0, "Disable": 1}
    assert all(type(v) is int for k, v in decoded.items() if k != "SchemeVersion")


def test_items_carry_der_format_but_config_params_do_not() -> None:
    """Keys and certificates say Format der; ConfigParams carry only Name and Data; never ACL."""
    bundle = Bundle(
        keys=(KeyItem("k", "ECCPublic", b"\x30\x01"),),
        certificates=(CertificateItem("c", b"\x30\x02", prkn="gen.key"),),
        certificate_chains=(CertificateChainItem("ch", (b"\x30\x03", b"\x30\x04")),),
        config_params=(ConfigParam("mbed.EndpointName", "ep"), ConfigParam("empty", None)),
    )
    decoded = cbor2.loads(encode_bundle(bundle))
    assert decoded["Keys"] == [{"Name": "k", "Type": "ECCPublic", "Format": "der", "Data": b"\x30\x01"}]
    assert decoded["Certificates"] == [{"Name": "c", "Format": "der", "Data": b"\x30\x02", "PrKN": "gen.key"}]
    assert decoded["CertificateChains"][0]["DataArray"] == [b"\x30\x03", b"\x30\x04"]
    assert decoded["ConfigParams"] == [{"Name": "mbed.EndpointName", "Data": "ep"}, {"Name": "empty"}]
    assert b"ACL" not in encode_bundle(bundle) and b"pem" not in encode_bundle(bundle)


def test_big_integer_is_tag_2_bignum() -> None:
    """An integer of 2**64 or more is sent as a tag 2 positive bignum."""
    data = encode_bundle(Bundle(config_params=(ConfigParam("n", 2**64),)))
    assert bytes.fromhex("c249010000000000000000") in data


def test_csr_request_layout() -> None:
    """A CSR request carries PrKN, Subj, MD and the Ext / SM maps only when set."""
    bundle = Bundle(csr_requests=(CSR,), sid="s", verify=False)
    assert cbor2.loads(encode_bundle(bundle))["CsrReqs"] == [{"PrKN": "gen.key", "Subj": "CN=dev", "MD": 1}]


REFUSED = [
    ("wrong scheme", Bundle(scheme_version="0.0.2")),
    ("short entropy", Bundle(entropy=bytes(47))),
    ("long ROT", Bundle(rot=bytes(17))),
    ("flag 2", Bundle(verify=2)),  # type: ignore[arg-type]
    ("disable with keep-alive", Bundle(disable=True, keep_alive=True)),
    ("RSA key", Bundle(keys=(KeyItem("k", "RSAPrivate", b"0"),))),
    ("pem key", Bundle(keys=(KeyItem("k", "ECCPrivate", b"0", format="pem"),))),
    ("empty key data", Bundle(keys=(KeyItem("k", "ECCPrivate", b""),))),
    ("bad name char", Bundle(keys=(KeyItem("k/1", "ECCPrivate", b"0"),))),
    ("name too long", Bundle(config_params=(ConfigParam("x" * 101, 1),))),
    ("empty name", Bundle(config_params=(ConfigParam("", 1),))),
    ("duplicate config", Bundle(config_params=(ConfigParam("a", 1), ConfigParam("a", 2)))),
    ("duplicate cert names", Bundle(certificates=(CertificateItem("c", b"0"),),
                                    certificate_chains=(CertificateChainItem("c", (b"0",)),))),
    ("empty chain", Bundle(certificate_chains=(CertificateChainItem("c", ()),))),
    ("six-cert chain", Bundle(certificate_chains=(CertificateChainItem("c", (b"0",) * 6),))),
    ("use-bootstrap as text", Bundle(config_params=(ConfigParam("mbed.UseBootstrap", "1"),))),
    ("memory over 32 bits", Bundle(config_params=(ConfigParam("mbed.MemoryTotalKB", 2**32),))),
    ("negative time", Bundle(config_params=(ConfigParam("mbed.CurrentTime", -1),))),
    ("float data", Bundle(config_params=(ConfigParam("a", 1.5),))),  # type: ignore[arg-type]
    ("bool data", Bundle(config_params=(ConfigParam("a", True),))),
    ("huge negative", Bundle(config_params=(ConfigParam("a", -(2**63) - 1),))),
    ("six CSRs", Bundle(csr_requests=tuple(CsrRequest(f"k{i}", "CN=x") for i in range(6)),
                        sid="s", verify=False)),
    ("CSR without SID", Bundle(csr_requests=(CSR,), verify=False)),
    ("CSR with default verify", Bundle(csr_requests=(CSR,), sid="s")),
    ("CSR with disable", Bundle(csr_requests=(CSR,), sid="s", verify=False, disable=True)),
    ("CSR md 0", Bundle(csr_requests=(CsrRequest("k", "CN=x", md=0),), sid="s", verify=False)),
    ("CSR empty subject", Bundle(csr_requests=(CsrRequest("k", ""),), sid="s", verify=False)),
    ("CSR bad medium", Bundle(csr_requests=(CsrRequest("k", "CN=x", storage=StorageMedium("Flash")),),
                              sid="s", verify=False)),
    ("CSR key name clash", Bundle(keys=(KeyItem("k", "ECCPrivate", b"0"),),
                                  csr_requests=(CsrRequest("k", "CN=x"),), sid="s", verify=False)),
]  # fmt: skip


@pytest.mark.parametrize("bundle", [b for _, b in REFUSED], ids=[n for n, _ in REFUSED])
def test_refused_bundles(bundle: Bundle) -> None:
    """Bundles FCC or KCM would refuse raise BundleEncodeError instead of being encoded."""
    with pytest.raises(BundleEncodeError):
        encode_bundle(bundle)


def test_public_and_private_key_may_share_a_name() -> None:
    """KCM keeps one namespace per type, so a key pair may use one name."""
    keys = (KeyItem("k", "ECCPrivate", b"0"), KeyItem("k", "ECCPublic", b"1"))
    assert cbor2.loads(encode_bundle(Bundle(keys=keys)))["Keys"][1]["Type"] == "ECCPublic"
