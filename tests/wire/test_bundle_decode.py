"""Device-side strict decoding reproduces FCC's status for every bundle defect (docs/wire-format.md)."""

from __future__ import annotations

from typing import Any

import cbor2
import pytest

from provkit.codes import FccStatus
from provkit.errors import BundleDecodeError
from provkit.wire.bundle import (
    BigNum,
    Bundle,
    ConfigParam,
    FlagGroup,
    KeyItem,
    KeysGroup,
    SidGroup,
    decode_bundle,
    decode_envelope,
    fcc_name_matches,
    iter_items,
    parse_group,
)

SV = {"SchemeVersion": "0.0.1"}
KEY = {"Name": "k1", "Type": "ECCPrivate", "Format": "der", "Data": b"\x30\x00"}
CERT = {"Name": "c1", "Format": "der", "Data": b"\x30\x00"}
CHAIN = {"Name": "ch", "Format": "der", "DataArray": [b"\x30\x00"]}
CSR = {"PrKN": "gk", "Subj": "CN=x", "MD": 1}
CSR_SESSION = {"SID": "s", "Verify": 0}


def bundle(**groups: Any) -> bytes:
    """Encode a top map with cbor2 (an encoder independent of provkit's)."""
    return cbor2.dumps({**SV, **groups})


def with_item(group: str, item: dict[str, Any], **extra: Any) -> bytes:
    """One-item group plus extra top-level pairs."""
    return bundle(**{group: [item]}, **extra)


DEEP: Any = 1
for _ in range(40):
    DEEP = [DEEP]

SV_HEX = "6d536368656d6556657273696f6e65302e302e31"  # "SchemeVersion": "0.0.1"
S = FccStatus

CASES: list[tuple[str, bytes, FccStatus, str]] = [
    # envelope
    ("empty input", b"", S.INVALID_PARAMETER, ""),
    ("truncated", bundle()[:-1], S.BUNDLE_ERROR, ""),
    ("trailing byte", bundle() + b"\x00", S.BUNDLE_ERROR, ""),
    ("two items", bundle() + bundle(), S.BUNDLE_ERROR, ""),
    ("top level array", cbor2.dumps(["SchemeVersion", "0.0.1"]), S.BUNDLE_ERROR, ""),
    ("indefinite top map", bytes.fromhex("bf" + SV_HEX + "ff"), S.BUNDLE_ERROR, ""),
    (
        "indefinite text chunk",
        bytes.fromhex("a16d536368656d6556657273696f6e7f65302e302e31ff"),
        S.BUNDLE_ERROR,
        "",
    ),
    ("indefinite Keys array", bytes.fromhex("a2" + SV_HEX + "644b6579739fff"), S.BUNDLE_ERROR, ""),
    ("reserved additional info", bytes.fromhex("a1" + SV_HEX[:-12] + "1c"), S.BUNDLE_ERROR, ""),
    # Text is read as bytes, as FCC's parser never checks UTF-8: an unknown group.
    ("invalid utf-8 key", bytes.fromhex("a2" + SV_HEX + "62ffff01"), S.BUNDLE_INVALID_GROUP, ""),
    ("thirteen keys", bundle(**{f"X{i}": 0 for i in range(12)}), S.BUNDLE_ERROR, ""),
    ("integer key", cbor2.dumps({**SV, 1: 2}), S.BUNDLE_ERROR, ""),
    ("integer key and no scheme", cbor2.dumps({1: 2}), S.BUNDLE_INVALID_SCHEME, ""),
    ("byte-string scheme key", cbor2.dumps({b"SchemeVersion": "0.0.1"}), S.BUNDLE_INVALID_SCHEME, ""),
    ("deep nesting", bundle(Keys=DEEP), S.BUNDLE_ERROR, ""),
    ("missing scheme", cbor2.dumps({"Verify": 1}), S.BUNDLE_INVALID_SCHEME, ""),
    ("wrong scheme", cbor2.dumps({"SchemeVersion": "0.0.2"}), S.BUNDLE_INVALID_SCHEME, ""),
    ("scheme with NUL", cbor2.dumps({"SchemeVersion": "0.0.1\x00"}), S.BUNDLE_INVALID_SCHEME, ""),
    ("integer scheme", cbor2.dumps({"SchemeVersion": 1}), S.BUNDLE_INVALID_SCHEME, ""),
    # groups
    ("unknown group", bundle(Foo=[]), S.BUNDLE_INVALID_GROUP, ""),
    ("lower-case group", bundle(certificates=[CERT]), S.BUNDLE_INVALID_GROUP, ""),
    ("longer than a group", bundle(KeysX=[KEY]), S.BUNDLE_INVALID_GROUP, ""),
    ("response group in request", bundle(Csrs=[]), S.BUNDLE_INVALID_GROUP, ""),
    ("prefix of CsrReqs without SID", bundle(CsrReq=[CSR], Verify=0), S.BUNDLE_ERROR, ""),
    ("Keys not an array", bundle(Keys=KEY), S.BUNDLE_ERROR, ""),
    ("key item not a map", bundle(Keys=["k1"]), S.BUNDLE_ERROR, ""),
    ("key without Name", with_item("Keys", {"Type": "ECCPrivate", "Data": b"0"}), S.BUNDLE_ERROR, ""),
    ("key Name not text", with_item("Keys", {**KEY, "Name": 5}), S.BUNDLE_ERROR, ""),
    (
        "key Field instead of Name",
        with_item("Keys", {"Field": "k", "Type": "ECCPublic"}),
        S.NOT_SUPPORTED,
        "",
    ),
    ("key ACL field", with_item("Keys", {**KEY, "ACL": "x"}), S.NOT_SUPPORTED, ""),
    ("key type RSA", with_item("Keys", {**KEY, "Type": "RSAPrivate"}), S.NOT_SUPPORTED, ""),
    ("key type Symmetric", with_item("Keys", {**KEY, "Type": "Symmetric"}), S.NOT_SUPPORTED, ""),
    ("key type unknown", with_item("Keys", {**KEY, "Type": "kuku"}), S.NOT_SUPPORTED, ""),
    ("key without Type", with_item("Keys", {"Name": "k", "Data": b"0"}), S.BUNDLE_ERROR, ""),
    ("key format pem", with_item("Keys", {**KEY, "Format": "pem"}), S.NOT_SUPPORTED, ""),
    ("key format kuku", with_item("Keys", {**KEY, "Format": "kuku"}), S.NOT_SUPPORTED, ""),
    ("key format not text", with_item("Keys", {**KEY, "Format": 1}), S.BUNDLE_ERROR, ""),
    ("key Data text", with_item("Keys", {**KEY, "Data": "30"}), S.BUNDLE_ERROR, ""),
    ("cert with DataArray", with_item("Certificates", {**CERT, "DataArray": [b"0"]}), S.NOT_SUPPORTED, ""),
    ("cert PrKN not text", with_item("Certificates", {**CERT, "PrKN": 1}), S.BUNDLE_ERROR, "c1"),
    ("cert Data before Name", with_item("Certificates", {"Data": 1, "Name": "c1"}), S.BUNDLE_ERROR, ""),
    ("cert without Data", with_item("Certificates", {"Name": "c1", "Format": "der"}), S.BUNDLE_ERROR, ""),
    ("cert format kuku", with_item("Certificates", {**CERT, "Format": "kuku"}), S.NOT_SUPPORTED, ""),
    ("cert unknown field first", with_item("Certificates", {"Zzz": 1, "Data": 1}), S.NOT_SUPPORTED, ""),
    ("chain of 0", with_item("CertificateChains", {**CHAIN, "DataArray": []}), S.BUNDLE_ERROR, ""),
    ("chain of 6", with_item("CertificateChains", {**CHAIN, "DataArray": [b"0"] * 6}), S.BUNDLE_ERROR, ""),
    ("chain without DataArray", with_item("CertificateChains", {"Name": "ch"}), S.BUNDLE_ERROR, ""),
    ("cert format pem", with_item("Certificates", {**CERT, "Format": "pem"}), S.NOT_SUPPORTED, ""),
    # In a chain "Data" is a prefix of "DataArray": not an array.
    ("chain with Data", with_item("CertificateChains", {**CHAIN, "Data": b"0"}), S.BUNDLE_ERROR, ""),
    (
        "chain DataArray not array",
        with_item("CertificateChains", {**CHAIN, "DataArray": b"0"}),
        S.BUNDLE_ERROR,
        "",
    ),
    (
        "chain entry not bytes",
        with_item("CertificateChains", {**CHAIN, "DataArray": ["x"]}),
        S.BUNDLE_ERROR,
        "ch",
    ),
    (
        "config with Format",
        with_item("ConfigParams", {"Name": "a", "Data": 1, "Format": "x"}),
        S.NOT_SUPPORTED,
        "",
    ),
    ("config Data float", with_item("ConfigParams", {"Name": "a", "Data": 1.5}), S.BUNDLE_ERROR, "a"),
    ("config Data bool", with_item("ConfigParams", {"Name": "a", "Data": True}), S.BUNDLE_ERROR, "a"),
    ("config Data null", with_item("ConfigParams", {"Name": "a", "Data": None}), S.BUNDLE_ERROR, "a"),
    ("config Data array", with_item("ConfigParams", {"Name": "a", "Data": [1]}), S.BUNDLE_ERROR, "a"),
    ("config Data before Name", with_item("ConfigParams", {"Data": [1], "Name": "a"}), S.BUNDLE_ERROR, ""),
    (
        "config Data tag 3",
        with_item("ConfigParams", {"Name": "a", "Data": cbor2.CBORTag(3, b"1")}),
        S.BUNDLE_ERROR,
        "a",
    ),
    (
        "config negative bignum",
        with_item("ConfigParams", {"Name": "a", "Data": -(2**70)}),
        S.BUNDLE_ERROR,
        "a",
    ),
    ("six CSR requests", bundle(CsrReqs=[CSR] * 6, **CSR_SESSION), S.TOO_MANY_CSR_REQUESTS, ""),
    ("CSR without PrKN", with_item("CsrReqs", {"Subj": "CN=x", "MD": 1}, **CSR_SESSION), S.BUNDLE_ERROR, ""),
    ("CSR without Subj", with_item("CsrReqs", {"PrKN": "k", "MD": 1}, **CSR_SESSION), S.BUNDLE_ERROR, ""),
    ("CSR MD zero", with_item("CsrReqs", {**CSR, "MD": 0}, **CSR_SESSION), S.BUNDLE_ERROR, ""),
    ("CSR MD text", with_item("CsrReqs", {**CSR, "MD": "1"}, **CSR_SESSION), S.BUNDLE_ERROR, ""),
    ("CSR old PbKN", with_item("CsrReqs", {**CSR, "PbKN": "p"}, **CSR_SESSION), S.NOT_SUPPORTED, ""),
    ("CSR Ext not map", with_item("CsrReqs", {**CSR, "Ext": [1]}, **CSR_SESSION), S.BUNDLE_ERROR, ""),
    ("CSR KU negative", with_item("CsrReqs", {**CSR, "Ext": {"KU": -1}}, **CSR_SESSION), S.BUNDLE_ERROR, ""),
    (
        "CSR SM bad medium",
        with_item("CsrReqs", {**CSR, "SM": {"Prv": "Flash"}}, **CSR_SESSION),
        S.BUNDLE_ERROR,
        "",
    ),
    (
        "CSR SM with Pub alone",
        with_item("CsrReqs", {**CSR, "SM": {"Pub": "Device"}}, **CSR_SESSION),
        S.BUNDLE_ERROR,
        "",
    ),
    (
        "CSR SM unknown key",
        with_item("CsrReqs", {**CSR, "SM": {"Prv": "Device", "X": 1}}, **CSR_SESSION),
        S.BUNDLE_ERROR,
        "",
    ),
    # No secure element: "SE" is refused as soon as it is read, before the next pair.
    (
        "CSR SM secure element",
        with_item("CsrReqs", {**CSR, "SM": {"Prv": "SE", "X": 1}}, **CSR_SESSION),
        S.NOT_SUPPORTED,
        "",
    ),
    ("entropy 47 bytes", bundle(Entropy=bytes(47)), S.INVALID_PARAMETER, "entropy"),
    ("entropy 49 bytes", bundle(Entropy=bytes(49)), S.INVALID_PARAMETER, "entropy"),
    ("entropy as text", bundle(Entropy="x" * 48), S.BUNDLE_ERROR, "entropy"),
    ("ROT 15 bytes", bundle(ROT=bytes(15)), S.INVALID_PARAMETER, "rot"),
    ("ROT as int", bundle(ROT=16), S.BUNDLE_ERROR, "rot"),
    ("Verify 2", bundle(Verify=2), S.BUNDLE_ERROR, "Verify"),
    ("Verify CBOR true", bundle(Verify=True), S.BUNDLE_ERROR, "Verify"),
    ("Disable text", bundle(Disable="1"), S.BUNDLE_ERROR, "Disable"),
    ("KpAlvSess 2", bundle(KpAlvSess=2), S.BUNDLE_INVALID_KEEP_ALIVE_SESSION_STATUS, "KpAlvSess"),
    (
        "KpAlvSess CBOR false",
        bundle(KpAlvSess=False),
        S.BUNDLE_INVALID_KEEP_ALIVE_SESSION_STATUS,
        "KpAlvSess",
    ),
    ("SID integer", bundle(SID=7), S.BUNDLE_ERROR, "SID"),
    # session rules
    (
        "Disable with keep-alive",
        bundle(Disable=1, KpAlvSess=1),
        S.BUNDLE_INVALID_KEEP_ALIVE_SESSION_STATUS,
        "",
    ),
    ("CSR without SID", bundle(CsrReqs=[CSR], Verify=0), S.BUNDLE_ERROR, ""),
    ("CSR with default Verify", bundle(CsrReqs=[CSR], SID="s"), S.BUNDLE_ERROR, ""),
    ("CSR with Verify 1", bundle(CsrReqs=[CSR], SID="s", Verify=1), S.BUNDLE_ERROR, ""),
    ("CSR with Disable 1", bundle(CsrReqs=[CSR], SID="s", Verify=0, Disable=1), S.BUNDLE_ERROR, ""),
]


@pytest.mark.parametrize(("data", "status", "item"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_defect_gets_fcc_status(data: bytes, status: FccStatus, item: str) -> None:
    """Each defective bundle is refused with FCC's ReturnStatus and item name."""
    with pytest.raises(BundleDecodeError) as info:
        decode_bundle(data)
    assert info.value.fcc_status == status, str(info.value)
    assert info.value.code == int(status)
    assert info.value.item == item


def test_scheme_version_as_bytes_is_accepted() -> None:
    """SchemeVersion may be a byte string, as FCC reads text or bytes."""
    assert decode_bundle(cbor2.dumps({"SchemeVersion": b"0.0.1"})) == Bundle()


def test_envelope_keeps_wire_order_and_duplicates() -> None:
    """decode_envelope returns the top-level pairs in wire order, duplicates included."""
    raw = b"\xa3" + cbor2.dumps("Verify") + b"\x01" + cbor2.dumps("SchemeVersion") + cbor2.dumps("0.0.1")
    raw += cbor2.dumps("Verify") + b"\x00"
    assert [k for k, _ in decode_envelope(raw)] == ["Verify", "SchemeVersion", "Verify"]
    assert decode_bundle(raw).verify is False  # the last flag read wins, as in FCC's loop


def test_parse_group_one_at_a_time() -> None:
    """A handler can parse groups one by one and stop at the failing one."""
    raw = bundle(SID="abc", Keys=[KEY], Foo=1, Verify=0)
    groups = []
    with pytest.raises(BundleDecodeError) as info:
        for key, value in decode_envelope(raw):
            groups.append(parse_group(key, value))
    assert info.value.fcc_status == FccStatus.BUNDLE_INVALID_GROUP
    assert groups[1:] == [SidGroup("abc"), KeysGroup((KeyItem("k1", "ECCPrivate", b"\x30\x00"),))]


def test_items_are_read_one_at_a_time() -> None:
    """iter_items yields each item before it reads the next, so a handler stores it first."""
    raw = bundle(Keys=[KEY, {"Name": "k2"}])
    envelope = decode_envelope(raw)
    (_, value) = next((k, v) for k, v in envelope if k == "Keys")
    items = iter_items("Keys", value, envelope.source)
    assert next(items) == KeyItem("k1", "ECCPrivate", b"\x30\x00")
    with pytest.raises(BundleDecodeError):
        next(items)


@pytest.mark.parametrize(
    ("known", "received", "taken"),
    [
        ("Keys", "Keys", True),
        ("Keys", "Key", True),
        ("Keys", "", True),
        ("Keys", "KeysX", False),
        ("Keys", "Keys\x00junk", True),  # strncmp stops at the NUL
        ("Keys", "Kez", False),
        ("der", "d", True),
    ],
)
def test_fcc_name_rule(known: str, received: str, taken: bool) -> None:
    """FCC compares strncmp(known, received, len(received)): any prefix of a known name is it."""
    assert fcc_name_matches(known, received) is taken


def test_four_byte_window_follows_the_string_in_the_bundle() -> None:
    """A text or byte string carries the four bytes at its start in the bundle (zeros past the end)."""
    raw = with_item("ConfigParams", {"Name": "a", "Data": b"\x01\x00"})
    param = decode_bundle(raw).config_params[0]
    assert param.wire_word is not None and param.wire_word[:2] == b"\x01\x00"
    assert param.wire_word[2:] == raw[raw.index(b"\x42\x01\x00") + 3 :][:2].ljust(2, b"\0")
    assert parse_group("Verify", 0) == FlagGroup("Verify", False)
    assert FlagGroup("Verify", False).key == "Verify"


def test_repeated_item_groups_add_up() -> None:
    """Two ConfigParams groups both count, as FCC processes each pair it meets."""
    raw = b"\xa3" + cbor2.dumps("SchemeVersion") + cbor2.dumps("0.0.1")
    for name in ("a", "b"):
        raw += cbor2.dumps("ConfigParams") + cbor2.dumps([{"Name": name, "Data": 1}])
    assert decode_bundle(raw).config_params == (ConfigParam("a", 1), ConfigParam("b", 1))


def test_config_param_without_data_is_empty() -> None:
    """A ConfigParams entry without Data decodes to data None (FCC stores an empty item)."""
    decoded = decode_bundle(with_item("ConfigParams", {"Name": "x"}))
    assert decoded.config_params == (ConfigParam("x", None),)


def test_csr_ext_trust_and_unknown_keys_are_skipped() -> None:
    """Ext's Trust and unknown extension keys are ignored, as FCC does."""
    item = {**CSR, "Ext": {"Trust": 1, "Zzz": "x", "KU": 8}}
    decoded = decode_bundle(with_item("CsrReqs", item, **CSR_SESSION))
    assert decoded.csr_requests[0].key_usage == 8
    assert decoded.csr_requests[0].ext_key_usage is None


def test_small_bignum_decodes_to_int() -> None:
    """A tag 2 bignum in ConfigParams Data decodes to the integer it encodes."""
    raw = with_item("ConfigParams", {"Name": "n", "Data": cbor2.CBORTag(2, b"\x00\x01\x00")})
    decoded = decode_bundle(raw).config_params
    assert decoded == (ConfigParam("n", 256),)
    assert isinstance(decoded[0].data, BigNum) and decoded[0].data.raw == b"\x00\x01\x00"


def test_format_may_be_absent() -> None:
    """FCC compares Format only when it is sent: keys and certificates without it decode."""
    key = {"Name": "k", "Type": "ECCPublic", "Data": b"0"}
    cert = {"Name": "c", "Data": b"0"}
    decoded = decode_bundle(bundle(Keys=[key], Certificates=[cert]))
    assert (decoded.keys[0].name, decoded.certificates[0].name) == ("k", "c")
