"""RFC 7512 PKCS#11 URIs: parsing, percent-encoding, refusals and the canonical form."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from provkit.codes import FcuErrorCode
from provkit.crypto.hsm.uri import Pkcs11Uri, Pkcs11UriError


def test_the_example_of_the_issue_names_token_and_object() -> None:
    uri = Pkcs11Uri.parse("pkcs11:token=factory;object=provkit-ca")
    assert (uri.token, uri.object, uri.id, uri.type, uri.module_path) == (
        "factory",
        "provkit-ca",
        None,
        None,
        None,
    )
    assert uri.names_object


def test_every_rfc_7512_attribute_is_read() -> None:
    uri = Pkcs11Uri.parse(
        "pkcs11:token=The%20Token;manufacturer=SoftHSM%20project;serial=b4218d83bfc5e88f;model=SoftHSM%20v2;"
        "library-manufacturer=SoftHSM;library-description=Implementation%20of%20PKCS11;library-version=2.6;"
        "object=my%20key;type=private;id=%01%a2%FF;slot-description=SoftHSM%20slot;slot-manufacturer=S;slot-id=17"
        "?pin-source=file:/etc/pin&module-name=softhsm2&module-path=/usr/lib/softhsm/libsofthsm2.so"
    )
    assert uri.token == "The Token"
    assert uri.manufacturer == "SoftHSM project"
    assert uri.serial == "b4218d83bfc5e88f"
    assert uri.model == "SoftHSM v2"
    assert uri.library_manufacturer == "SoftHSM"
    assert uri.library_description == "Implementation of PKCS11"
    assert uri.library_version == "2.6"
    assert uri.object == "my key"
    assert uri.type == "private"
    assert uri.id == b"\x01\xa2\xff"
    assert uri.slot_description == "SoftHSM slot"
    assert uri.slot_manufacturer == "S"
    assert uri.slot_id == 17
    assert uri.pin_source == "file:/etc/pin"
    assert uri.module_name == "softhsm2"
    assert uri.module_path == "/usr/lib/softhsm/libsofthsm2.so"


def test_values_are_percent_decoded_utf8_and_may_hold_the_other_parts_separators() -> None:
    uri = Pkcs11Uri.parse("pkcs11:object=caf%C3%A9%3B%3F&x;token=a=b?module-path=/opt/a%3Bb%26c/lib.so")
    assert uri.object == "café;?&x"
    assert uri.token == "a=b"
    assert uri.module_path == "/opt/a;b&c/lib.so"


def test_the_scheme_is_case_insensitive_and_an_empty_path_is_allowed() -> None:
    assert Pkcs11Uri.parse("PKCS11:") == Pkcs11Uri()
    assert not Pkcs11Uri.parse("pkcs11:token=t").names_object


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("token=factory", "starts with 'pkcs11:'"),
        ("pkcs11:token=a;token=b", "given twice"),
        ("pkcs11:tokn=a", "unknown path attribute 'tokn'"),
        ("pkcs11:token=a?color=red", "unknown query attribute 'color'"),
        ("pkcs11:module-path=/x", "belongs in the query part"),
        ("pkcs11:token=a?object=b", "belongs in the path part"),
        ("pkcs11:token=my token", "' ' must be percent-encoded"),
        ("pkcs11:object=a/b", "'/' must be percent-encoded"),
        ("pkcs11:token=a?module-path=/x;y", "';' must be percent-encoded"),
        ("pkcs11:token=100%", "a bare '%' must be percent-encoded"),
        ("pkcs11:token=%zz", "a bare '%'"),
        ("pkcs11:token", "has no '=value'"),
        ("pkcs11:token=a;;object=b", "has no '=value'"),
        ("pkcs11:type=secret", "is not one of public, private, cert, secret-key, data"),
        ("pkcs11:slot-id=0x10", "is not a decimal number"),
        ("pkcs11:library-version=2.6.1", "is not 'major' or 'major.minor'"),
        ("pkcs11:object=%ff%fe", "not UTF-8"),
        ("pkcs11:token=a#frag", "no fragment"),
        ("pkcs11:x-vendor=1", "vendor attribute 'x-vendor' is not supported"),
    ],
)
def test_malformed_uris_are_refused_with_407_saying_why(text: str, reason: str) -> None:
    with pytest.raises(Pkcs11UriError) as caught:
        Pkcs11Uri.parse(text)
    assert caught.value.code == FcuErrorCode.HSM_URI_INVALID == 407
    assert reason in str(caught.value)
    assert caught.value.hint


def test_a_pin_in_the_uri_is_refused_and_never_echoed() -> None:
    with pytest.raises(Pkcs11UriError) as caught:
        Pkcs11Uri.parse("pkcs11:token=f;object=k?pin-value=s3cr3t-4242&module-path=/x")
    assert "s3cr3t-4242" not in str(caught.value)
    assert "PROVKIT_PKCS11_PIN" in str(caught.value)


def test_canonical_form_orders_attributes_and_encodes_what_must_be() -> None:
    uri = Pkcs11Uri.parse("pkcs11:id=%01;object=my%20key;token=t?module-path=/usr/lib/x.so")
    assert str(uri) == "pkcs11:token=t;object=my%20key;id=%01?module-path=/usr/lib/x.so"
    assert str(uri.without_query()) == "pkcs11:token=t;object=my%20key;id=%01"


_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)


@given(
    token=st.none() | _TEXT,
    obj=st.none() | _TEXT,
    ident=st.none() | st.binary(max_size=8),
    slot=st.none() | st.integers(0, 2**32),
    module=st.none() | _TEXT,
)
def test_every_uri_survives_a_round_trip_through_its_text(
    token: str | None, obj: str | None, ident: bytes | None, slot: int | None, module: str | None
) -> None:
    uri = Pkcs11Uri(token=token, object=obj, id=ident, slot_id=slot, module_path=module, type="private")
    assert Pkcs11Uri.parse(str(uri)) == uri
