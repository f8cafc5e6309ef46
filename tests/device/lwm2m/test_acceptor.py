from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from provkit.codes import KcmStatus
from provkit.device.kcm import ItemType, Kcm
from provkit.device.lwm2m import AcceptStatus, Lwm2mAcceptor, make_lwm2m_handler
from provkit.device.storage import MemoryStorage, SqliteStorage
from provkit.errors import StorageError
from provkit.lwm2m import cbor
from provkit.lwm2m.config import EndpointConfig
from provkit.lwm2m.response import AcceptResult
from provkit.lwm2m.senml import Objlnk
from provkit.lwm2m.senml_cbor import encode_cbor
from provkit.lwm2m.strict import decode_strict

VECTORS = json.loads((Path(__file__).resolve().parents[2] / "vectors" / "lwm2m" / "vectors.json").read_text())
V8 = bytes.fromhex(VECTORS["V8"]["hex"])
V10 = bytes.fromhex(VECTORS["V10"]["hex"])


@pytest.fixture
def kcm(tmp_path: Path) -> Kcm:
    """A KCM on a real SQLite file."""
    return Kcm(SqliteStorage(tmp_path / "device.db"))


def test_accepts_v10_and_seals_the_psk(kcm, tmp_path):
    """The sample PSK blob is stored; the key lives encrypted in the symmetric namespace."""
    result = Lwm2mAcceptor(kcm).accept(V10)
    assert result.ok and result.written == 10
    types = {info.name: info.type for info in kcm.list_items()}
    assert types["lwm2m.0.1.5"] is ItemType.SYMMETRIC_KEY
    assert types["lwm2m.1.1.7"] is ItemType.CONFIG
    assert b"3x@mpl3P5K53cr3tK3y" not in (tmp_path / "device.db").read_bytes()
    assert kcm.item_get("lwm2m.0.1.5", ItemType.SYMMETRIC_KEY) == b"3x@mpl3P5K53cr3tK3y"


def test_new_blob_replaces_old_configuration(kcm):
    """Accepting V8 after V10 wipes V10's PSK items: only V8's resources remain."""
    acceptor = Lwm2mAcceptor(kcm)
    assert acceptor.accept(V10).ok
    assert acceptor.accept(V8).ok
    stored = acceptor.configuration()
    assert [e.path for e in stored] == [
        "/0/1/0",
        "/0/1/1",
        "/0/1/2",
        "/0/1/10",
        "/1/1/0",
        "/1/1/1",
        "/1/1/6",
        "/1/1/7",
    ]
    assert stored[0].value == "coap://127.0.0.1:5683"


@pytest.mark.parametrize(
    ("blob", "status"),
    [
        (b"\x81\xa1\x00", AcceptStatus.MALFORMED),
        (b"\x80", AcceptStatus.MALFORMED),
        (b"\x9f\xff", AcceptStatus.MALFORMED),
        (cbor.dumps([{0: "/0/1/0", 2: 1, 1: "unit"}]), AcceptStatus.MALFORMED),
        (cbor.dumps([{0: "/0/1", 2: 1}]), AcceptStatus.BAD_PATH),
        (cbor.dumps([{0: "/0/1/16", 2: 1}]), AcceptStatus.BAD_PATH),
        (bytes.fromhex(VECTORS["V1"]["hex"]), AcceptStatus.NOT_FOUND),
        (cbor.dumps([{0: "/3/1/0", 3: "x"}]), AcceptStatus.NOT_FOUND),
        (cbor.dumps([{0: "/0/1/99", 2: 1}]), AcceptStatus.NOT_FOUND),
        (cbor.dumps([{0: "/1/1/7", 2: 1}]), AcceptStatus.BAD_VALUE),
        (cbor.dumps([{0: "/1/1/0", 2: 0}]), AcceptStatus.BAD_VALUE),
        (cbor.dumps([{0: "/1/1/0", 2: 1}]), AcceptStatus.VALIDATION_FAILED),
        (
            cbor.dumps([{0: "/0/1/0", 3: "coap://x"}, {0: "/0/1/1", 4: False}, {0: "/0/1/2", 2: 0}]),
            AcceptStatus.VALIDATION_FAILED,
        ),
    ],
)
def test_refusals_roll_back(kcm, blob, status):
    """Every refusal answers its code and a reason, and leaves the previous configuration intact."""
    acceptor = Lwm2mAcceptor(kcm)
    assert acceptor.accept(V10).ok
    before = acceptor.configuration()
    result = acceptor.accept(blob)
    assert result.status is status and result.reason
    assert acceptor.configuration() == before


class _FailingStorage(MemoryStorage):
    """A memory backend that fails the write of one named item, like a full flash."""

    def put(self, namespace: str, name: str, data: bytes) -> None:
        if name == "lwm2m.1.1.7":
            raise StorageError("flash full", kcm_status=KcmStatus.STORAGE_ERROR, item=name)
        super().put(namespace, name, data)


def test_storage_failure_rolls_back():
    """A storage failure mid-write undoes the wipe and the earlier writes."""
    kcm = Kcm(_FailingStorage())
    acceptor = Lwm2mAcceptor(kcm)
    kcm.item_store("lwm2m.1.1.1", ItemType.CONFIG, cbor.dumps({2: 5}))
    result = acceptor.accept(V8)
    assert result.status is AcceptStatus.STORAGE_ERROR and "flash full" in result.reason
    assert [info.name for info in kcm.list_items()] == ["lwm2m.1.1.1"]


def test_oversize_blob_refused(kcm):
    """A blob above the size limit is refused unread."""
    assert Lwm2mAcceptor(kcm, max_blob_bytes=10).accept(V10).status is AcceptStatus.MALFORMED


def test_handler_encodes_result(kcm):
    """The agent handler answers the documented CBOR map."""
    body = make_lwm2m_handler(kcm)(V8)
    assert AcceptResult.decode(body).ok
    assert dict(cbor.loads(body).items) == {"Result": 0, "Reason": "", "Written": 8}  # type: ignore[union-attr]


_text = st.text(max_size=20)
_device = st.fixed_dictionaries(
    {},
    optional={
        0: _text,
        2: _text,
        9: st.integers(0, 100),
        13: st.integers(-(1 << 63), (1 << 63) - 1),
        11: st.dictionaries(st.integers(0, 65534), st.integers(0, 32), min_size=1, max_size=4),
        22: st.dictionaries(
            st.integers(0, 65534), st.builds(Objlnk, st.integers(0, 65535), st.integers(0, 65535)), max_size=3
        ),
    },
)


@settings(max_examples=60, deadline=None)
@given(_device, st.binary(min_size=1, max_size=48), st.text(min_size=1, max_size=30))
def test_stored_configuration_round_trips(device, psk, identity):
    """Whatever valid configuration is accepted reads back from secure storage unchanged, types included."""
    config = EndpointConfig.from_entries(decode_strict(V10))
    config.set(0, 1, 5, psk)
    config.set(0, 1, 3, identity.encode())
    for rid, value in device.items():
        if isinstance(value, dict):
            for riid, item in value.items():
                config.instances.setdefault((3, 0), {}).setdefault(rid, {})[riid] = item  # type: ignore[index]
        else:
            config.set(3, 0, rid, value)
    blob = encode_cbor(config.entries())
    acceptor = Lwm2mAcceptor(Kcm(MemoryStorage()))
    result = acceptor.accept(blob)
    assert result.ok, result.reason
    assert acceptor.configuration() == config.entries()


def test_anjay_profile_refuses_what_anjay_cannot_write(kcm):
    """A device modelling Anjay refuses /3/0/0 (read-only there), storing nothing; a generic one takes it."""
    from provkit.lwm2m.profile import ANJAY
    from provkit.lwm2m.senml import Entry
    from provkit.lwm2m.senml_cbor import decode_cbor

    entries = [Entry(r.name or "", r.value) for r in decode_cbor(V10)]  # type: ignore[arg-type]
    blob = encode_cbor([*entries, Entry("/3/0/0", "ACME")])
    refused = Lwm2mAcceptor(kcm, profile=ANJAY).accept(blob)
    assert refused.status is AcceptStatus.NOT_FOUND
    assert refused.reason.startswith("/3/0/0: Manufacturer is read-only")
    assert kcm.list_items() == []
    assert Lwm2mAcceptor(kcm, profile=ANJAY).accept(encode_cbor([*entries, Entry("/3/0/15", "UTC")])).ok
    assert Lwm2mAcceptor(kcm).accept(blob).ok
