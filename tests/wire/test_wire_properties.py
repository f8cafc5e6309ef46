"""Property tests: round trips, agreement with cbor2, and no crash on hostile input."""

from __future__ import annotations

import contextlib

import cbor2
from hypothesis import example, given
from hypothesis import strategies as st

from provkit.errors import BundleDecodeError, ResponseDecodeError
from provkit.wire import cbor_strict
from provkit.wire.bundle import (
    Bundle,
    CertificateChainItem,
    CertificateItem,
    ConfigParam,
    CsrRequest,
    KeyItem,
    StorageMedium,
    decode_bundle,
    encode_bundle,
)
from provkit.wire.response import BundleResponse, CsrResult, decode_response, encode_response

names = st.from_regex(r"[A-Za-z0-9._-]{1,20}", fullmatch=True)
der = st.binary(min_size=1, max_size=40)
flags = st.none() | st.booleans()
texts = st.text(max_size=30).filter(lambda s: not s.endswith("\x00"))

config_data = (
    st.none()
    | st.integers(min_value=-(2**63), max_value=2**80)
    | st.text(max_size=20)
    | st.binary(max_size=20)
)
csr = st.builds(
    CsrRequest,
    prkn=names,
    subject=st.text(min_size=1, max_size=20),
    md=st.integers(1, 2**32 - 1),  # FCC casts MD, KU and EKU to 32 bits
    key_usage=st.none() | st.integers(0, 2**16),
    ext_key_usage=st.none() | st.integers(0, 2**16),
    # The decoder is a device without a secure element: "SE" is refused (37) as it is read.
    storage=st.none() | st.builds(StorageMedium, st.just("Device"), st.sampled_from([None, "Device"])),
)  # fmt: skip


def unique_by(items: st.SearchStrategy[object], key: str) -> st.SearchStrategy[tuple[object, ...]]:
    """Lists of items with distinct ``key`` attributes, as tuples."""
    return st.lists(items, max_size=3, unique_by=lambda i: getattr(i, key)).map(tuple)


@st.composite
def bundles(draw: st.DrawFn) -> Bundle:
    """Valid bundles of every shape the encoder accepts."""
    csrs = draw(st.lists(csr, max_size=5, unique_by=lambda r: r.prkn).map(tuple))
    keys = draw(
        unique_by(st.builds(KeyItem, names, st.sampled_from(["ECCPrivate", "ECCPublic"]), der), "name")
    )
    keys = tuple(k for k in keys if k.name not in {r.prkn for r in csrs})  # type: ignore[attr-defined]
    certs = draw(unique_by(st.builds(CertificateItem, names, der, st.none() | names), "name"))
    chains = draw(
        unique_by(st.builds(CertificateChainItem, names, st.lists(der, min_size=1, max_size=5).map(tuple),
                            st.none() | names), "name")
    )  # fmt: skip
    cert_names = {c.name for c in certs}  # type: ignore[attr-defined]
    chains = tuple(c for c in chains if c.name not in cert_names)  # type: ignore[attr-defined]
    params = draw(unique_by(st.builds(ConfigParam, names.filter(lambda n: not n.startswith("mbed")),
                                      config_data), "name"))  # fmt: skip
    disable, keep_alive, verify = draw(flags), draw(flags), draw(flags)
    sid = draw(st.none() | st.text(max_size=10))
    if csrs:
        sid, verify = sid or "sid", False
        disable = draw(st.none() | st.just(False))
    if disable and keep_alive:
        keep_alive = False
    return Bundle(
        keys=keys,  # type: ignore[arg-type]
        certificates=certs,  # type: ignore[arg-type]
        certificate_chains=chains,  # type: ignore[arg-type]
        config_params=params,  # type: ignore[arg-type]
        csr_requests=csrs,
        entropy=draw(st.none() | st.binary(min_size=48, max_size=48)),
        rot=draw(st.none() | st.binary(min_size=16, max_size=16)),
        verify=verify,
        disable=disable,
        keep_alive=keep_alive,
        sid=sid,
    )


responses = st.builds(
    BundleResponse,
    return_status=st.integers(0, 40),
    info_message=texts,
    warning_info=texts,
    sid=st.none() | texts,
    csrs=st.lists(st.builds(CsrResult, texts, st.binary(max_size=50)), max_size=3).map(tuple),
)


@given(bundles())
def test_bundle_round_trip(bundle: Bundle) -> None:
    """decode_bundle(encode_bundle(b)) == b for every valid bundle."""
    assert decode_bundle(encode_bundle(bundle)) == bundle


@given(bundles())
def test_encoded_bundle_is_standard_cbor(bundle: Bundle) -> None:
    """An independent decoder (cbor2) reads provkit's bundle bytes as a definite map of text keys."""
    data = encode_bundle(bundle)
    decoded = cbor2.loads(data)
    assert data[0] >> 5 == 5 and data[0] & 0x1F < 24
    assert all(isinstance(k, str) for k in decoded) and len(decoded) <= 12


@given(responses)
def test_response_round_trip(resp: BundleResponse) -> None:
    """decode_response(encode_response(r)) == r, and cbor2 reads the same fields."""
    data = encode_response(resp)
    assert decode_response(data) == resp
    assert cbor2.loads(data)["ReturnStatus"] == resp.return_status


@given(st.binary(max_size=200))
@example(b"\x9f" * 5000)
@example(b"\xa1\x61a" + b"\x81" * 10000)
@example(b"\x5b\xff\xff\xff\xff\xff\xff\xff\xff")
@example(b"\x9b\xff\xff\xff\xff\xff\xff\xff\xff")
def test_random_bytes_only_raise_bundle_decode_error(data: bytes) -> None:
    """Random bytes are accepted or refused with BundleDecodeError, never anything else."""
    with contextlib.suppress(BundleDecodeError):
        decode_bundle(data)


@given(bundles(), st.data())
def test_mutated_bundles_only_raise_bundle_decode_error(bundle: Bundle, data: st.DataObject) -> None:
    """Flipped, inserted or removed bytes in a valid bundle only ever raise BundleDecodeError."""
    raw = bytearray(encode_bundle(bundle))
    for _ in range(data.draw(st.integers(1, 4))):
        pos = data.draw(st.integers(0, len(raw) - 1))
        action = data.draw(st.sampled_from(["flip", "insert", "delete"]))
        if action == "flip":
            raw[pos] ^= data.draw(st.integers(1, 255))
        elif action == "insert":
            raw.insert(pos, data.draw(st.integers(0, 255)))
        elif len(raw) > 1:
            del raw[pos]
    with contextlib.suppress(BundleDecodeError):
        decode_bundle(bytes(raw))


@given(st.binary(max_size=200))
def test_random_bytes_only_raise_response_decode_error(data: bytes) -> None:
    """decode_response never raises anything but ResponseDecodeError."""
    with contextlib.suppress(ResponseDecodeError):
        decode_response(data)


cbor_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**64), 2**64 - 1)
    | st.binary(max_size=10)
    | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=20,
)


@given(cbor_values)
def test_reader_agrees_with_cbor2(value: object) -> None:
    """cbor_strict reads what cbor2 writes, and cbor2 reads what cbor_strict writes."""
    assert cbor2.loads(cbor_strict.dumps(value)) == value
    decoded = cbor_strict.loads(cbor2.dumps(value))
    assert _plain(decoded) == value


def _plain(value: object) -> object:
    """Turn CborMap results into dicts for comparison."""
    if isinstance(value, cbor_strict.CborMap):
        return {k: _plain(v) for k, v in value.pairs}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value
