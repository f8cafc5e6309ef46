"""Target profiles: what Anjay lets a factory bootstrap write, and the server-certificate rule."""

from __future__ import annotations

import pytest

from provkit.errors import Lwm2mError, TargetRefused, UnverifiedServer
from provkit.lwm2m.objects import OBJECTS, ResourceType
from provkit.lwm2m.profile import ANJAY, GENERIC, check_server_certificates, get_profile
from provkit.lwm2m.senml import Entry

SECURITY_OK = {*range(0, 6), *range(10, 17)}
SERVER_OK = {0, 1, 2, 3, 5, 6, 7, 11, 12, 14, 16, 17, 18, 19, 20, 22, 23}
DEVICE_OK = {13, 14, 15}


def _valued(oid: int) -> list[int]:
    return [rid for rid, spec in OBJECTS[oid].resources.items() if spec.type is not ResourceType.NONE]


@pytest.mark.parametrize(("oid", "allowed"), [(0, SECURITY_OK), (1, SERVER_OK), (3, DEVICE_OK)])
def test_anjay_allows_exactly_its_bootstrap_writable_resources(oid, allowed):
    """Every registry resource of /0, /1, /3 is allowed by the anjay profile iff the issue's list has it."""
    for rid in OBJECTS[oid].resources:
        assert (ANJAY.refusal(oid, rid) is None) == (rid in allowed), (oid, rid)


def test_generic_allows_every_resource_that_holds_a_value():
    for oid in OBJECTS:
        for rid in OBJECTS[oid].resources:
            expected = OBJECTS[oid].resources[rid].type is not ResourceType.NONE
            assert (GENERIC.refusal(oid, rid) is None) == expected, (oid, rid)


@pytest.mark.parametrize(
    ("path", "value", "words"),
    [
        ("/0/1/6", 1, ["SMS Security Mode is not implemented", "Security object", "0–5, 10–16"]),
        ("/0/1/17", "1:0", ["OSCORE Security Mode is not implemented"]),
        ("/1/1/10", "1:0", ["APN Link is not implemented", "0–3, 5–7, 11, 12, 14, 16–20, 22, 23"]),
        ("/1/1/21", True, ["Trigger is not implemented"]),
        ("/3/0/0", "ACME", ["Manufacturer is read-only", "writes only 13–15", "demo/objects/device.c"]),
        ("/3/0/6/0", 1, ["Available Power Sources is read-only"]),
        ("/1/1/4", 1, ["Disable is executable"]),
    ],
)
def test_anjay_refusal_names_resource_and_reason(path, value, words):
    from provkit.lwm2m.senml import Objlnk

    if isinstance(value, str) and ":" in value:
        value = Objlnk.parse(value)
    with pytest.raises(TargetRefused) as info:
        ANJAY.check([Entry("/1/1/1", 86400), Entry(path, value)])
    error = info.value
    assert error.code == 5006 and error.path == path and error.target == "anjay"
    assert str(error).startswith(f"{path}: refused for target 'anjay': ")
    for word in words:
        assert word in str(error)


def test_anjay_accepts_device_time_resources():
    ANJAY.check([Entry("/3/0/13", 1700000000), Entry("/3/0/14", "UTC+01:00"), Entry("/3/0/15", "UTC")])


def test_get_profile():
    assert get_profile("anjay") is ANJAY and get_profile(GENERIC) is GENERIC
    with pytest.raises(Lwm2mError, match="unknown target 'leshan'"):
        get_profile("leshan")


def _security(iid: int, mode: int, *, server_key: bytes | None) -> list[Entry]:
    entries = [Entry(f"/0/{iid}/0", "coaps://x:5684"), Entry(f"/0/{iid}/2", mode)]
    if server_key is not None:
        entries.append(Entry(f"/0/{iid}/4", server_key))
    return entries


@pytest.mark.parametrize("mode", [2, 4])
def test_certificate_mode_needs_a_server_certificate(mode):
    with pytest.raises(UnverifiedServer) as info:
        check_server_certificates(_security(0, 0, server_key=None) + _security(3, mode, server_key=None))
    assert info.value.code == 5007 and info.value.path == "/0/3"
    assert "trust any server" in str(info.value) and info.value.hint


@pytest.mark.parametrize(("mode", "key"), [(2, b"\x30\x82"), (4, b"\x30"), (0, None), (3, None)])
def test_server_certificate_rule_passes(mode, key):
    check_server_certificates(_security(1, mode, server_key=key))


def test_empty_server_key_counts_as_missing():
    with pytest.raises(UnverifiedServer):
        check_server_certificates(_security(1, 2, server_key=b""))
