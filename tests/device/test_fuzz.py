"""Hypothesis fuzzing of the bundle handler with random and mutated bundles."""

from __future__ import annotations

from typing import Any

import cbor2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from provkit.device.fcc import FactoryConfiguratorClient
from provkit.device.kcm import Kcm
from provkit.device.storage import MemoryStorage
from provkit.wire.response import decode_response

_VALID: dict[str, bytes] = {}


def _valid_bytes(builder: Any) -> bytes:
    if "b" not in _VALID:
        _VALID["b"] = builder.encode(builder.valid())
    return _VALID["b"]


def _snapshot(fcc: FactoryConfiguratorClient) -> dict[tuple[str, str], bytes]:
    backend = fcc.kcm.backend
    assert isinstance(backend, MemoryStorage)
    return {k: v for k, v in backend._data.items() if k[0] != "meta"}


def _check(fcc: FactoryConfiguratorClient, data: bytes) -> None:
    before = _snapshot(fcc)
    result = fcc.bundle_handler(data)
    if result.response is not None:
        response = decode_response(result.response)
        assert response.return_status == int(result.status)
    if result.status != 0:
        assert _snapshot(fcc) == before


cbor_values = st.recursive(
    st.none() | st.integers(-(2**64), 2**64) | st.text(max_size=12) | st.binary(max_size=40),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=200))
def test_random_bytes(data: bytes) -> None:
    """Random bytes never raise and never change storage."""
    fcc = FactoryConfiguratorClient(Kcm(MemoryStorage()))
    _check(fcc, data)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    groups=st.dictionaries(
        st.sampled_from(
            [
                "SchemeVersion",
                "Keys",
                "Certificates",
                "CertificateChains",
                "ConfigParams",
                "CsrReqs",
                "Entropy",
                "ROT",
                "Verify",
                "Disable",
                "KpAlvSess",
                "SID",
                "Other",
            ]
        ),
        cbor_values,
        max_size=6,
    )
)
def test_random_group_structures(groups: dict[str, Any]) -> None:
    """Structurally random bundles with real group names get an answer and leave storage intact on failure."""
    groups.setdefault("SchemeVersion", "0.0.1")
    fcc = FactoryConfiguratorClient(Kcm(MemoryStorage()))
    _check(fcc, cbor2.dumps(groups))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(position=st.integers(0, 10_000), value=st.integers(0, 255), cut=st.booleans())
def test_mutated_valid_bundle(builder: Any, position: int, value: int, cut: bool) -> None:
    """A valid bundle with one byte changed (or cut short) is answered and is all-or-nothing."""
    data = bytearray(_valid_bytes(builder))
    index = position % len(data)
    if cut:
        del data[index:]
    else:
        data[index] = value
    fcc = FactoryConfiguratorClient(Kcm(MemoryStorage()))
    _check(fcc, bytes(data))
