from __future__ import annotations

from pathlib import Path

import pytest

from provkit.errors import EndpointConfigError
from provkit.lwm2m.config import load_config_text
from provkit.lwm2m.objects import DEVICE, SECURITY, SERVER, find_object
from provkit.lwm2m.senml_cbor import encode_cbor

VECTORS_DIR = Path(__file__).resolve().parents[1] / "vectors" / "lwm2m"

_GOOD = """
Security:
  0: {ServerURI: "coaps://bs.example.com:5684", Bootstrap: true, Mode: psk,
      PKOrIdentity: bs-id, SecretKey: {hex: "00112233"}}
  1: {ServerURI: "coap://dm.example.com:5683", Bootstrap: false, Mode: nosec, ShortServerID: 1}
  2: {ServerURI: "coaps://dm2.example.com", Bootstrap: false, "Security Mode": 0,
      PKOrIdentity: id2, SecretKey: {base64: "AAEC"}, SSID: 2}
Server:
  1: {ShortServerID: 1, Lifetime: 86400, NotificationStoring: false, Binding: U}
  2: {0: 2, 1: 60, 6: true, 7: UQ, APNLink: "11:0"}
"""


def test_registry_tables():
    """The registry knows ids, names, types, multiplicity and versions of /0, /1, /3."""
    assert SECURITY.resource("ServerURI").rid == 0
    assert SECURITY.resource("Bootstrap-Server").type.value == "Boolean"
    assert SECURITY.resources[16].multiple and SECURITY.resources[16].since == "1.1"
    assert SERVER.resources[24].since == "1.2"
    assert DEVICE.resource("serial number").rid == 2 and not DEVICE.multiple
    assert find_object("LwM2M Server") is SERVER and find_object("0") is SECURITY
    assert find_object("Firmware") is None


def test_sample_yaml_reproduces_v10(vectors):
    """The reference tool's sample config, in YAML, serializes to vector V10 byte for byte."""
    config = load_config_text((VECTORS_DIR / "sample_psk.yaml").read_text())
    assert encode_cbor(config.entries()).hex() == vectors["V10"]["hex"]


def test_numeric_json_reproduces_v8(vectors):
    """A JSON config by numbers serializes to vector V8."""
    config = load_config_text((VECTORS_DIR / "sample_nosec.json").read_text())
    assert encode_cbor(config.entries()).hex() == vectors["V8"]["hex"]


def test_several_instances_names_and_numbers():
    """Bootstrap plus two management servers, names and numbers mixed, all decoded."""
    config = load_config_text(_GOOD)
    assert config.instance_ids(0) == [0, 1, 2] and config.instance_ids(1) == [1, 2]
    assert config.get(0, 0, 5) == bytes.fromhex("00112233")
    assert config.get(0, 2, 5) == b"\x00\x01\x02"
    assert config.security_mode(1) == 3
    assert str(config.get(1, 2, 10)) == "11:0"
    # The reference tool's Objlnk bug (factory_prov.py serializes the str() of its dict, and
    # Objlink has no __repr__): the link must reach the blob as {0: path, "vlo": "oid:iid"}.
    from provkit.lwm2m import cbor

    records = [dict(r.items) for r in cbor.loads(encode_cbor(config.entries()))]  # type: ignore[union-attr]
    assert {0: "/1/2/10", "vlo": "11:0"} in records


@pytest.mark.parametrize(
    ("text", "path", "reason"),
    [
        ("Security: {1: {Mode: bogus}}", "Security/1/Mode", "unknown security mode"),
        ("Security: {1: {Nope: 1}}", "Security/1/Nope", "unknown resource"),
        ("Firmware: {0: {1: 1}}", "Firmware", "unknown object"),
        ("Server: {1: {Lifetime: abc}}", "Server/1/Lifetime", "needs an integer"),
        ("Server: {1: {Binding: 5}}", "Server/1/Binding", "String"),
        ("Server: {1: {NotificationStoring: 1}}", "Server/1/NotificationStoring", "Boolean"),
        ("Server: {1: {Disable: 1}}", "Server/1/Disable", "executable"),
        ("Server: {x: {Lifetime: 1}}", "Server/x", "not a number"),
        ("Server: {70000: {Lifetime: 1}}", "Server/70000", "outside"),
        ("Security: {1: {SecretKey: {hex: zz}}}", "Security/1/SecretKey", "invalid hex"),
        ("Security: {1: {ShortServerID: 0}}", "Security/1/ShortServerID", "1..65534"),
        ("Device: {0: {Manufacturer: a}, 1: {Manufacturer: b}}", "Device", "single-instance"),
        ("Server: {1: {APNLink: '1-2'}}", "Server/1/APNLink", "object link"),
        ("Server: {1: [1, 2]}", "Server/1", "non-empty mapping"),
        ("Device: {1: {Manufacturer: a}}", "Device/1", "its id is 0"),
        ("Server: {1: {Lifetime: 1, Lifetime: 2}}", "Server/1/Lifetime", "given twice"),
        ("Server: {1: {Lifetime: 1}, 1: {Lifetime: 2}}", "Server/1", "given twice"),
        ("Security: {1: {Ciphersuite: {0: 1, 0: 2}}}", "Security/1/Ciphersuite/0", "given twice"),
        ('{"Server": {"1": {"Lifetime": 1, "Lifetime": 2}}}', "Server/1/Lifetime", "given twice"),
        ('{"Server": {}, "Server": {}}', "Server", "given twice"),
    ],
)
def test_errors_name_the_path(text, path, reason):
    """Malformed values, unknown names and wrong types name the exact path."""
    with pytest.raises(EndpointConfigError, match=reason) as info:
        load_config_text(text)
    assert info.value.path == path
    assert str(info.value).startswith(path)


@pytest.mark.parametrize(
    ("change", "path", "reason"),
    [
        ({"ServerURI": "coap://x"}, "/0/1/0", "unsecured"),
        ({"Mode": "rpk"}, "/0/1/2", "RPK"),
        ({"PKOrIdentity": ""}, "/0/1", "Public Key or Identity"),
        ({"ShortServerID": None}, "/0/1", "Short Server ID"),
        ({"MatchingType": 2}, "/0/1/13", "Matching Type"),
    ],
)
def test_security_rules(change, path, reason):
    """Security object rules (Anjay's) are checked with the LwM2M path of the problem."""
    res = {
        "ServerURI": "coaps://x",
        "Bootstrap": False,
        "Mode": "psk",
        "PKOrIdentity": "i",
        "SecretKey": "k",
        "ShortServerID": 1,
    }
    res.update(change)
    res = {k: v for k, v in res.items() if v is not None}
    from provkit.lwm2m.config import config_from_mapping

    with pytest.raises(EndpointConfigError, match=reason) as info:
        config_from_mapping({"Security": {1: res}})
    assert info.value.path == path


def test_server_and_cross_instance_rules():
    """Bad bindings, two bootstrap servers and duplicate SSIDs are refused."""
    base = "Server: {1: {ShortServerID: 1, Lifetime: 1, NotificationStoring: false, Binding: %s}}"
    with pytest.raises(EndpointConfigError, match="Binding"):
        load_config_text(base % "UU")
    load_config_text(base % "UST")
    two_bs = """Security:
  0: {ServerURI: "coap://a", Bootstrap: true, Mode: nosec}
  1: {ServerURI: "coap://b", Bootstrap: true, Mode: nosec}"""
    with pytest.raises(EndpointConfigError, match="second bootstrap"):
        load_config_text(two_bs)
    dup = """Security:
  0: {ServerURI: "coap://a", Bootstrap: false, Mode: nosec, SSID: 1}
  1: {ServerURI: "coap://b", Bootstrap: false, Mode: nosec, SSID: 1}"""
    with pytest.raises(EndpointConfigError, match="already used"):
        load_config_text(dup)


@pytest.mark.parametrize("text", ["[1, 2", "{", "- a\n- b", "", "!!python/object/apply:os.system ['true']"])
def test_malformed_documents(text):
    """Broken YAML/JSON, non-mappings and code-executing tags are clear errors."""
    with pytest.raises(EndpointConfigError):
        load_config_text(text)


def test_yaml_merge_keys_may_be_overridden():
    """A key merged in with ``<<`` and set again is an override, not a duplicate."""
    text = """Server:
  1:
    <<: {ShortServerID: 1, Lifetime: 60, NotificationStoring: false, Binding: U}
    Lifetime: 86400
"""
    assert load_config_text(text).get(1, 1, 1) == 86400


def test_registry_matches_oma_registry_tables():
    """Every resource of /0, /1 and /3 has the registry's id, name, type, multiplicity, M/O and version."""
    import json

    from provkit.lwm2m.objects import OBJECTS

    tables = json.loads((VECTORS_DIR / "objects.json").read_text())["objects"]
    assert sorted(OBJECTS) == sorted(int(oid) for oid in tables)
    for oid, table in tables.items():
        obj = OBJECTS[int(oid)]
        assert (obj.name, obj.multiple) == (table["name"], table["multiple"])
        got = [
            [r.rid, r.name, r.type.value, r.multiple, r.mandatory, r.since]
            for r in sorted(obj.resources.values(), key=lambda r: r.rid)
        ]
        assert got == table["resources"]


def test_alias_expansion_is_capped():
    """A few lines of YAML aliases cannot expand into millions of resources."""
    riids = ", ".join(f"{i}: {i}" for i in range(1000))
    lines = ["Security:", f"  0: {{Ciphersuite: &a {{{riids}}}}}"]
    lines += [f"  {i}: {{Ciphersuite: *a}}" for i in range(1, 100)]
    with pytest.raises(EndpointConfigError, match="more than 8192 resources") as info:
        load_config_text("\n".join(lines))
    assert info.value.path == "Security/8/Ciphersuite"
