"""Hypothesis fuzzing of the bundle handler with random and mutated bundles.

The device runs with atomic bundles here, so every refused bundle must leave storage as
it was; a real device keeps what a bundle stored before failing, which the conformance
sessions cover.
"""

from __future__ import annotations

import logging
from typing import Any

import cbor2
import pytest
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


def _device() -> FactoryConfiguratorClient:
    return FactoryConfiguratorClient(Kcm(MemoryStorage()), atomic_bundles=True)


def _check(fcc: FactoryConfiguratorClient, data: bytes, caplog: pytest.LogCaptureFixture) -> None:
    before = _snapshot(fcc)
    caplog.clear()
    result = fcc.bundle_handler(data)
    # The handler logs an unexpected exception (a bug it caught) before answering status 1.
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
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
def test_random_bytes(data: bytes, caplog: pytest.LogCaptureFixture) -> None:
    """Random bytes never raise and never change storage."""
    fcc = _device()
    _check(fcc, data, caplog)


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
def test_random_group_structures(groups: dict[str, Any], caplog: pytest.LogCaptureFixture) -> None:
    """Structurally random bundles with real group names get an answer and leave storage intact on failure."""
    groups.setdefault("SchemeVersion", "0.0.1")
    fcc = _device()
    _check(fcc, cbor2.dumps(groups), caplog)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(position=st.integers(0, 10_000), value=st.integers(0, 255), cut=st.booleans())
def test_mutated_valid_bundle(
    builder: Any, position: int, value: int, cut: bool, caplog: pytest.LogCaptureFixture
) -> None:
    """A valid bundle with one byte changed (or cut short) is answered and is all-or-nothing."""
    data = bytearray(_valid_bytes(builder))
    index = position % len(data)
    if cut:
        del data[index:]
    else:
        data[index] = value
    fcc = _device()
    _check(fcc, bytes(data), caplog)


_DER_SLOTS = ("key", "server-ca", "update-cert", "leaf", "issuer")


def _der_slot(bundle: dict[str, Any], slot: str) -> tuple[Any, Any]:
    """The container and index of one DER blob of a valid bundle."""
    if slot == "key":
        return bundle["Keys"][0], "Data"
    if slot == "server-ca":
        return bundle["Certificates"][0], "Data"
    if slot == "update-cert":
        return bundle["Certificates"][1], "Data"
    return bundle["CertificateChains"][0]["DataArray"], 0 if slot == "leaf" else 1


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    slot=st.sampled_from(_DER_SLOTS),
    edits=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), min_size=1, max_size=3),
    mode=st.sampled_from(["bootstrap", "lwm2m"]),
)
def test_mutated_der_inside_valid_bundle(
    builder: Any, slot: str, edits: list[tuple[int, int]], mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A key or certificate with bytes changed is refused with a KCM/verification status, never a crash."""
    bundle = builder.valid(mode)
    container, index = _der_slot(bundle, slot)
    der = bytearray(container[index])
    for position, value in edits:
        der[position % len(der)] = value
    container[index] = bytes(der)
    fcc = _device()
    _check(fcc, builder.encode(bundle), caplog)
