"""The virtual device answers the conformance table exactly as the real FCC does.

The table (:mod:`support.conformance`) holds bundles and sessions with the answers of a
real Factory Configurator Client; each answer is checked to the byte: the response is
rebuilt here with ``cbor2`` as FCC lays it out (indefinite map, keys in FCC's order) and
compared with the virtual device's whole response.
"""

from __future__ import annotations

from typing import Any

import cbor2
import pytest

from provkit.device.clock import DeviceClock
from provkit.device.fcc import FactoryConfiguratorClient
from provkit.device.kcm import Kcm
from provkit.device.storage import MemoryStorage
from provkit.wire.response import BundleResponse, decode_response
from support.conformance import CASES, SESSIONS, Answer, Case, Session, build_session_step
from support.conformance import _build as build_case

NULL_AFTER_ECDSA_SHA256 = bytes.fromhex("300c06082a8648ce3d0403020500")


def fcc_response(answer: Case | Answer) -> bytes:
    """The response FCC writes for an answer without CSRs: an indefinite map in FCC's key order."""
    pairs: list[tuple[str, object]] = [("SchemeVersion", "0.0.1")]
    if answer.sid is not None:
        pairs.append(("SID", answer.sid))
    pairs += [("ReturnStatus", answer.status), ("InfoMessage", answer.info)]
    if answer.warnings:
        pairs.append(("WarningInfo", answer.warnings))

    return b"\xbf" + b"".join(_item(k) + _item(v) for k, v in pairs) + b"\xff"


def _item(value: object) -> bytes:
    if not isinstance(value, str):
        return cbor2.dumps(value)
    # A text string of the bytes a device echoes (names may hold bytes that are not UTF-8).
    as_bytes = cbor2.dumps(value.encode("utf-8", "surrogateescape"))
    return bytes([as_bytes[0] | 0x20]) + as_bytes[1:]


def check_answer(response: bytes | None, answer: Case | Answer) -> BundleResponse:
    """The response is the answer: exactly its bytes, or, with CSRs, all but the CSRs' keys."""
    assert response is not None
    decoded = decode_response(response)
    assert (decoded.return_status, decoded.info_message, decoded.warning_info, decoded.sid) == (
        answer.status,
        answer.info,
        answer.warnings,
        answer.sid,
    )
    assert len(decoded.csrs) == answer.csrs
    if answer.csrs:
        for csr in decoded.csrs:
            # Mbed TLS 2.28.2 writes ecdsa-with-SHA256 with an explicit NULL parameter.
            assert NULL_AFTER_ECDSA_SHA256 in csr.data
        assert response.endswith(fcc_response(answer)[1:])
    else:
        assert response == fcc_response(answer)
    return decoded


def test_table_is_large_enough() -> None:
    """The table covers many distinct bundles and sessions, each with its own id."""
    ids = [c.id for c in CASES] + [s.id for s in SESSIONS]
    assert len(CASES) >= 300
    assert len(set(ids)) == len(ids)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_conformance(case: Case, builder: Any, memory_fcc: FactoryConfiguratorClient) -> None:
    """The device answers each bundle with FCC's exact status, InfoMessage, WarningInfo and bytes."""
    result = memory_fcc.bundle_handler(build_case(case, builder))
    check_answer(result.response, case)
    assert int(result.status) == case.status


def _device(atomic: bool) -> FactoryConfiguratorClient:
    kcm = Kcm(MemoryStorage())
    return FactoryConfiguratorClient(kcm, clock=DeviceClock(kcm), atomic_bundles=atomic)


@pytest.mark.parametrize("session", SESSIONS, ids=[s.id for s in SESSIONS])
def test_conformance_sessions(session: Session, builder: Any) -> None:
    """Bundles on one connection get FCC's answers; after a bundle that ends the session there is none."""
    fcc = _device(session.atomic)
    responses: list[BundleResponse] = []
    finished = False
    for step, answer in zip(session.steps, session.answers, strict=True):
        if answer is None:
            assert finished  # the real device closed the connection after the previous bundle
            continue
        result = fcc.bundle_handler(build_session_step(step, builder, responses))
        responses.append(check_answer(result.response, answer))
        finished = result.session_finished


@pytest.mark.parametrize("case", [c for c in CASES if c.status != 0][:40], ids=lambda c: c.id)
def test_atomic_bundles_leave_storage_untouched(case: Case, builder: Any) -> None:
    """With atomic bundles a refused bundle stores nothing, and the answer stays FCC's."""
    fcc = _device(atomic=True)
    result = fcc.bundle_handler(build_case(case, builder))
    check_answer(result.response, case)
    assert fcc.kcm.list_items() == []
    assert fcc.clock.now() == 0


def test_sid_echoed_when_parsed_before_failure(builder: Any, memory_fcc: FactoryConfiguratorClient) -> None:
    """A SID that precedes the failing group is echoed in the error response."""
    bundle = {"SchemeVersion": "0.0.1", "SID": "sess-1", "Bogus": []}
    result = memory_fcc.bundle_handler(builder.encode(bundle))
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
