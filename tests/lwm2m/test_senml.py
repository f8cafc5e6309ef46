from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from provkit.errors import SenmlError
from provkit.lwm2m import cbor
from provkit.lwm2m.paths import PathError, parse_path
from provkit.lwm2m.senml import Entry, Objlnk
from provkit.lwm2m.senml_cbor import decode_cbor, encode_cbor
from provkit.lwm2m.senml_json import decode_json, encode_json
from provkit.lwm2m.strict import decode_strict, decode_strict_json


def _expected(raw: list[list[object]]) -> list[Entry]:
    out = []
    for path, value in raw:
        if isinstance(value, dict):
            value = Objlnk.parse(value["vlo"])
        out.append(Entry(str(path), value))  # type: ignore[arg-type]
    return out


@pytest.mark.parametrize("name", ["V1", "V2", "V3", "V4", "V6"])
def test_anjay_vectors_decode_strictly(vectors, name):
    """Each verbatim Anjay vector decodes under the device rules to the documented entries."""
    vector = vectors[name]
    assert decode_strict(bytes.fromhex(vector["hex"])) == _expected(vector["entries"])


@pytest.mark.parametrize("name", ["V1", "V2", "V3", "V4"])
def test_anjay_vectors_reencode_byte_for_byte(vectors, name):
    """Vectors without base names re-encode to the same bytes."""
    data = bytes.fromhex(vectors[name]["hex"])
    assert encode_cbor(decode_strict(data)) == data


def test_permuted_keys_accepted():
    """V2 with the value label before the name still decodes (key order is irrelevant)."""
    assert decode_strict(bytes.fromhex("81a202182a00682f31332f32362f31")) == [Entry("/13/26/1", 42)]


def test_v9_base_names_equal_v8(vectors):
    """The bn form of the NoSec blob resolves to the same entries as the plain form."""
    assert decode_strict(bytes.fromhex(vectors["V9"]["hex"])) == decode_strict(
        bytes.fromhex(vectors["V8"]["hex"])
    )


@pytest.mark.parametrize("key", ["int100", "float100000", "double1.1", "bool", "bytes"])
def test_encoder_primitives(vectors, key):
    """Value encodings match Anjay's encoder test (shortest exact float width)."""
    expected = bytes.fromhex(vectors["V7"]["primitives"][key])
    (record,) = cbor.loads(expected)  # type: ignore[misc]
    value = dict(record.items)
    label, raw = next((k, v) for k, v in value.items())
    encoded = cbor.dumps([{label: raw}])
    assert encoded == expected


def test_valid_and_invalid_paths(vectors):
    """Anjay's path vectors: valid ones parse, invalid ones raise PathError."""
    for text in vectors["V5"]["valid"]:
        parse_path(text)
    for text in vectors["V5"]["invalid"]:
        with pytest.raises(PathError):
            parse_path(text)


def test_rfc8428_example_generic_accepts(vectors):
    """The RFC 8428 example resolves: bn+n names, bt+t times, units inherited."""
    records = decode_cbor(bytes.fromhex(vectors["V11"]["hex"]))
    assert len(records) == 7
    assert records[0].name == "urn:dev:ow:10e2073a0108006:voltage"
    assert records[0].unit == "V" and records[0].value == pytest.approx(120.1)
    assert records[1].name == "urn:dev:ow:10e2073a0108006:current"
    assert records[1].unit == "A" and records[1].time == pytest.approx(1276020076.001 - 5)
    assert dict(records[0].extra) == {"bver": 5}


def test_rfc8428_example_strict_rejects(vectors):
    """Strict mode refuses the RFC 8428 example because of a label the device does not accept."""
    with pytest.raises(SenmlError, match="not accepted by the device"):
        decode_strict(bytes.fromhex(vectors["V11"]["hex"]))


@pytest.mark.parametrize(
    ("blob", "reason"),
    [
        (cbor.dumps([{0: "/1/1/1", 2: 1, 1: "s"}]), "not accepted"),
        (cbor.dumps([{0: "/1/1/1", "x": 1}]), "not accepted"),
        (cbor.dumps([{0: "/1/1/1", 3: b"bytes"}]), "must be str"),
        (cbor.dumps([{0: "/1/1/1", 8: "text"}]), "must be bytes"),
        (cbor.dumps([{0: "/1/1/1", 2: True}]), "must be a number"),
        (cbor.dumps([{0: "/1/1/1", "vlo": "32:42foo"}]), "object link"),
        (cbor.dumps([{0: "/1/1/1", "vlo": "1:423444"}]), "object link"),
        (cbor.dumps([{0: "/1/1", 2: 1}]), "does not reach a resource"),
        (cbor.dumps([{0: "/1/1/1/1/1", 2: 1}]), "levels"),
        (cbor.dumps([{0: "/00001/00001/00001/000001", 2: 1}]), "longer than 24"),
        (cbor.dumps([{0: "/1/1/1", 2: 1}, {0: "/1/1/1", 2: 2}]), "written twice"),
        (cbor.dumps([{0: "/1/1/1", 2: None}]), "null"),
        (cbor.dumps([{0: "/1/1/1"}]), "no value"),
        (cbor.dumps({0: "/1/1/1"}), "must be a CBOR array"),
        (cbor.dumps([1]), "not a CBOR map"),
        (b"\x81\xa3\x00\x66/1/1/1\x02\x01\x02\x02", "appears twice"),
        (b"\x81\xa1\x00", "broken CBOR"),
        (b"\x9f\x9f" * 10, "broken CBOR"),
        (b"\x80\x00", "broken CBOR"),
        (b"", "broken CBOR"),
        (b"\x81\xa3\x00\x66/1/1/1\x02\x01\x06\x61x", "'t'|t\\) must be a number"),
        (b"\x81\xa3\x00\x66/1/1/1\x02\x01\x22\xf5", "bt\\) must be a number"),
        (b"\x81\xa2\x00\x66/1/1/7\x03\xc4\x82\x21\x01", "must be str"),
        (b"\x81\xa2\x00\x66/1/1/7\x03\xf7", "undefined"),
    ],
)
def test_strict_rejections(blob, reason):
    """Each forbidden form is rejected with a reason naming the problem."""
    with pytest.raises(SenmlError, match=reason):
        decode_strict(blob)


def test_indefinite_lengths_accepted():
    """Indefinite arrays and maps (which the device parses) decode like definite ones."""
    blob = b"\x9f\xbf\x00\x66/1/1/7\x03\x61U\xff\xff"
    assert decode_strict(blob) == [Entry("/1/1/7", "U")]


def test_other_tags_are_ignored_like_the_device(vectors):
    """Tags other than 4 are read through: a self-described blob (55799) and a tagged string decode."""
    v8 = bytes.fromhex(vectors["V8"]["hex"])
    assert decode_strict(b"\xd9\xd9\xf7" + v8) == decode_strict(v8)
    assert decode_strict(b"\x81\xa2\x00\x66/1/1/7\x03\xd8\x20\x61U") == [Entry("/1/1/7", "U")]
    assert decode_strict(b"\x81\xa3\x00\x66/1/1/1\x02\x01\x06\x01") == [Entry("/1/1/1", 1)]
    assert decode_cbor(b"\xd9\xd9\xf7" + v8)[0].name == "/0/1/0"


def test_tag4_decimal_fraction():
    """A tag-4 decimal fraction is a number for ``v``."""
    blob = b"\x81\xa2\x00\x66/1/1/1\x02\xc4\x82\x21\x19\x6a\xb3"
    (entry,) = decode_strict(blob)
    assert entry.value == pytest.approx(273.15)


def test_encoder_never_emits_base_or_time_labels():
    """Encoded maps carry the name label first and exactly one value label."""
    blob = encode_cbor([Entry("/0/1/0", "coap://x"), Entry("/0/1/17", Objlnk(1, 0)), Entry("/3/0/9", 1.5)])
    for record in cbor.loads(blob):  # type: ignore[union-attr]
        keys = [key for key, _ in record.items]
        assert keys[0] == 0 and len(keys) == 2 and keys[1] in (2, 3, 4, 8, "vlo")


def test_encoder_refuses_duplicates_and_empty():
    """Two entries on one path, or no entries at all, cannot be encoded."""
    with pytest.raises(SenmlError, match="twice"):
        encode_cbor([Entry("/1/1/1", 1), Entry("/1/1/1", 2)])
    with pytest.raises(SenmlError, match="nothing"):
        encode_cbor([])


def test_entry_rejects_bad_values():
    """Entries refuse non-finite floats, huge ints and unknown types."""
    for value in (float("nan"), 1 << 70, [1]):
        with pytest.raises(SenmlError):
            Entry("/1/1/1", value)  # type: ignore[arg-type]


def test_json_round_trip_and_base64url():
    """SenML JSON writes vd as unpadded base64url and reads it back, strict or generic."""
    entries = [Entry("/0/1/3", b"\xfb\xff"), Entry("/0/1/17", Objlnk(5, 6)), Entry("/1/1/6", False)]
    text = encode_json(entries)
    assert '"vd": "-_8"' in text
    assert decode_strict_json(text) == entries
    assert [r.name for r in decode_json(text)] == ["/0/1/3", "/0/1/17", "/1/1/6"]


def test_json_rejects_nan_and_duplicates():
    """JSON constants like NaN and duplicate labels are refused."""
    with pytest.raises(SenmlError):
        decode_json('[{"n": "/1/1/1", "v": NaN}]')
    with pytest.raises(SenmlError, match="twice"):
        decode_json('[{"n": "/1/1/1", "v": 1, "v": 2}]')


def test_generic_rejects_must_understand_label():
    """RFC 8428 labels ending in '_' must be understood; the decoder refuses them."""
    with pytest.raises(SenmlError, match="must-understand"):
        decode_json('[{"n": "x", "v": 1, "foo_": 1}]')


_ids = st.integers(0, 65534)
_paths = (
    st.tuples(_ids, _ids, _ids, st.none() | _ids)
    .map(lambda t: "/" + "/".join(str(p) for p in t if p is not None))
    .filter(lambda p: len(p) <= 24)
)
_values = (
    st.booleans()
    | st.integers(-(1 << 63), (1 << 64) - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
    | st.binary(max_size=40)
    | st.builds(Objlnk, st.integers(0, 65535), st.integers(0, 65535))
)


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(_paths, _values, min_size=1, max_size=8))
def test_round_trip_cbor_and_json(data):
    """Any entries survive CBOR (strict decode) and JSON round trips unchanged."""
    entries = [Entry(path, value) for path, value in data.items()]
    assert decode_strict(encode_cbor(entries)) == entries
    assert decode_strict_json(encode_json(entries)) == entries


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=64))
def test_strict_decoder_never_crashes(blob):
    """Arbitrary bytes either decode or raise SenmlError, nothing else."""
    with contextlib.suppress(SenmlError):
        decode_strict(blob)
