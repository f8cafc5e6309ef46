"""The CA key in a real SoftHSM2 token: generated unreadable, signing certificates and CSRs; clear errors."""

from __future__ import annotations

import datetime as dt
import multiprocessing
import threading
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor

import pkcs11
import pytest
from cryptography import x509 as cx509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from pkcs11 import Attribute, KeyType, ObjectClass

from provkit.codes import FcuErrorCode
from provkit.crypto import csr, issue, keys, x509
from provkit.crypto.hsm.signer import TokenSigner, generate_token_key
from provkit.crypto.hsm.token import TokenKeyRef, read_pin, rescan
from provkit.crypto.hsm.uri import Pkcs11Uri
from provkit.crypto.signer import DelegatedKey, FileSigner
from provkit.errors import HsmError
from support.softhsm import SoftToken

NOW = dt.datetime.now(dt.UTC)


def _ref(
    token: SoftToken, obj: str = "provkit-ca", *, pin: str | None = None, module: str | None = None
) -> TokenKeyRef:
    return TokenKeyRef(Pkcs11Uri.parse(token.uri(obj)), module or token.module, pin or token.pin)


def _raw_session(token: SoftToken, *, rw: bool = False) -> pkcs11.Session:
    """A session opened by the test itself, to look at the token as any PKCS#11 user would.

    This process has already logged in through provkit (logins are per process), so the
    session is opened without the PIN; a test that did not log in yet logs in here.
    """
    rescan(token.module)  # this test's token is new to a module an earlier test may have loaded
    found = pkcs11.lib(token.module).get_token(token_label=token.label)
    try:
        return found.open(rw=rw, user_pin=token.pin)
    except pkcs11.exceptions.UserAlreadyLoggedIn:
        return found.open(rw=rw)


def _verifies(cert: cx509.Certificate, public: ec.EllipticCurvePublicKey) -> None:
    assert cert.signature_hash_algorithm is not None
    public.verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(cert.signature_hash_algorithm))


def _code(call: Callable[[], object]) -> int | None:
    with pytest.raises(HsmError) as caught:
        call()
    assert caught.value.hint
    return caught.value.code


def test_generated_key_cannot_be_read_out(soft_token: SoftToken) -> None:
    signer = generate_token_key(_ref(soft_token))
    with _raw_session(soft_token) as session:
        (key,) = session.get_objects(
            {Attribute.CLASS: ObjectClass.PRIVATE_KEY, Attribute.LABEL: "provkit-ca"}
        )
        with pytest.raises(pkcs11.exceptions.AttributeSensitive):
            key[Attribute.VALUE]
        assert key[Attribute.SENSITIVE] and key[Attribute.ALWAYS_SENSITIVE]
        assert not key[Attribute.EXTRACTABLE] and key[Attribute.NEVER_EXTRACTABLE]
        assert key[Attribute.TOKEN] and key[Attribute.PRIVATE]
        (public,) = session.get_objects(
            {Attribute.CLASS: ObjectClass.PUBLIC_KEY, Attribute.LABEL: "provkit-ca"}
        )
        assert public[Attribute.ID] == key[Attribute.ID] == signer.ref.uri.id
    with pytest.raises(TypeError):
        signer.signing_key().private_numbers()
    assert keys.is_p256(signer.public_key())


def test_ca_certificate_csr_and_device_certificates_verify_under_the_token_key(soft_token: SoftToken) -> None:
    signer = generate_token_key(_ref(soft_token))
    public = signer.public_key()
    ca = issue.create_ca(signer, {"common-name": "HSM CA"}, now=NOW)
    assert x509.is_self_signed(ca) and keys.keys_match(x509.certificate_public_key(ca), public)
    _verifies(ca, public)
    request = cx509.load_pem_x509_csr(csr.create_ca_csr(signer, {"common-name": "HSM intermediate"}))
    assert request.is_signature_valid and keys.keys_match(request.public_key(), public)  # type: ignore[arg-type]
    issuer = issue.DeviceCertificateIssuer(signer, ca, {"organization-name": "ACME"}, validity_years=20)
    for n in range(20):
        device = keys.generate_p256()
        cert = issuer.issue(device.public_key(), f"dev-{n}", NOW)
        _verifies(cert, public)
        assert x509.signed_by(cert, ca) and x509.common_name(cert) == f"dev-{n}"


def test_a_second_signer_finds_the_key_by_its_uri_and_records_token_and_object(soft_token: SoftToken) -> None:
    made = generate_token_key(_ref(soft_token))
    found = TokenSigner(_ref(soft_token))
    assert keys.keys_match(found.public_key(), made.public_key())
    named = Pkcs11Uri.parse(found.key_id)
    assert (named.token, named.object, named.type, named.id) == (
        soft_token.label,
        "provkit-ca",
        "private",
        made.ref.uri.id,
    )
    assert named.serial and named.module_path is None
    assert FileSigner(keys.generate_p256()).key_id.startswith("sha256:")


def test_concurrent_threads_sign_through_a_session_pool(soft_token: SoftToken) -> None:
    signer = generate_token_key(_ref(soft_token))
    ca = issue.create_ca(signer, {"common-name": "HSM CA"}, now=NOW)
    issuer = issue.DeviceCertificateIssuer(signer, ca, {}, validity_years=1)
    issued: list[cx509.Certificate] = []
    lock = threading.Lock()

    def work(n: int) -> None:
        for i in range(15):
            cert = issuer.issue(keys.generate_p256().public_key(), f"t{n}-{i}", NOW)
            with lock:
                issued.append(cert)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(issued) == 90
    for cert in issued:
        _verifies(cert, signer.public_key())


def _sign_in_child(ref: TokenKeyRef) -> bytes:
    signer = TokenSigner(ref)
    return signer.sign_digest(bytes(range(32)))


def test_forked_workers_initialise_the_module_again_and_sign(soft_token: SoftToken) -> None:
    signer = generate_token_key(_ref(soft_token))
    signer.sign_digest(bytes(32))  # the parent has the module loaded and a session open
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("fork")) as pool:
        signatures = list(pool.map(_sign_in_child, [signer.ref] * 4))
    for signature in signatures:
        signer.public_key().verify(signature, bytes(range(32)), ec.ECDSA(_prehashed()))
    signer.sign_digest(bytes(32))  # the children did not disturb the parent's sessions


def _prehashed() -> ec.utils.Prehashed:  # type: ignore[name-defined]
    from cryptography.hazmat.primitives.asymmetric import utils

    return utils.Prehashed(hashes.SHA256())


def test_delegated_key_signs_only_ecdsa_sha256(soft_token: SoftToken) -> None:
    key = generate_token_key(_ref(soft_token)).signing_key()
    assert isinstance(key, DelegatedKey) and key.key_size == 256
    with pytest.raises(TypeError):
        key.sign(b"data", ec.ECDSA(hashes.SHA384()))
    with pytest.raises(TypeError):
        key.exchange(ec.ECDH(), keys.generate_p256().public_key())


# ---------------------------------------------------------------- failures


def test_a_module_that_is_no_pkcs11_library_is_400(soft_token: SoftToken) -> None:
    assert _code(lambda: TokenSigner(_ref(soft_token, module="/nonexistent/libnothing.so"))) == 400
    assert _code(lambda: TokenSigner(_ref(soft_token, module="/etc/hostname"))) == 400


def test_an_absent_token_is_401(soft_token: SoftToken) -> None:
    ref = TokenKeyRef(
        Pkcs11Uri.parse("pkcs11:token=no-such-token;object=k"), soft_token.module, soft_token.pin
    )
    assert _code(lambda: TokenSigner(ref)) == FcuErrorCode.HSM_TOKEN_NOT_FOUND == 401


def test_a_wrong_pin_is_402_and_is_not_in_the_message(soft_token: SoftToken) -> None:
    generate_token_key(_ref(soft_token))
    with pytest.raises(HsmError) as caught:
        TokenSigner(_ref(soft_token, pin="0000-wrong"))
    assert caught.value.code == 402 and "0000-wrong" not in str(caught.value)
    assert TokenSigner(_ref(soft_token)).public_key()  # the right PIN still works


def test_a_locked_pin_is_403_without_trying_to_log_in(soft_token: SoftToken) -> None:
    soft_token.lock_user_pin()
    assert _code(lambda: TokenSigner(_ref(soft_token))) == 403


def test_a_missing_key_is_404(soft_token: SoftToken) -> None:
    generate_token_key(_ref(soft_token))
    assert _code(lambda: TokenSigner(_ref(soft_token, "other-key"))) == 404


def test_keys_of_the_wrong_kind_are_405(soft_token: SoftToken) -> None:
    with _raw_session(soft_token, rw=True) as session_rw:
        session_rw.generate_keypair(KeyType.RSA, 2048, label="rsa-key", store=True)
        params = session_rw.create_domain_parameters(
            KeyType.EC,
            {Attribute.EC_PARAMS: pkcs11.util.ec.encode_named_curve_parameters("secp384r1")},
            local=True,
        )
        params.generate_keypair(store=True, label="p384-key")
        params = session_rw.create_domain_parameters(
            KeyType.EC,
            {Attribute.EC_PARAMS: pkcs11.util.ec.encode_named_curve_parameters("secp256r1")},
            local=True,
        )
        params.generate_keypair(store=True, label="open-key", private_template={Attribute.SENSITIVE: False})
        params.generate_keypair(store=True, label="twice", id=b"\x01")
        params.generate_keypair(store=True, label="twice", id=b"\x02")
    for label, why in [
        ("rsa-key", "RSA key"),
        ("p384-key", "not P-256"),
        ("open-key", "CKA_SENSITIVE false"),
        ("twice", "2 private keys match"),
    ]:
        with pytest.raises(HsmError) as caught:
            TokenSigner(_ref(soft_token, label))
        assert caught.value.code == 405 and why in str(caught.value), label


def test_a_uri_naming_no_private_key_is_407(soft_token: SoftToken) -> None:
    token_only = TokenKeyRef(
        Pkcs11Uri.parse(f"pkcs11:token={soft_token.label}"), soft_token.module, soft_token.pin
    )
    assert _code(lambda: TokenSigner(token_only)) == 407
    cert = TokenKeyRef(Pkcs11Uri.parse(soft_token.uri() + ";type=cert"), soft_token.module, soft_token.pin)
    assert _code(lambda: TokenSigner(cert)) == 407


def test_no_pin_is_408_and_pin_files_and_the_environment_are_read(tmp_path: object) -> None:
    uri = Pkcs11Uri.parse("pkcs11:token=t;object=k")
    with pytest.raises(HsmError) as caught:
        read_pin(None, uri, environ={})
    assert caught.value.code == 408 and "PROVKIT_PKCS11_PIN" in (caught.value.hint or "")
    assert read_pin(None, uri, environ={"PROVKIT_PKCS11_PIN": "1234"}) == "1234"
    from pathlib import Path

    pin_file = Path(str(tmp_path)) / "pin"
    pin_file.write_text("9876\n", encoding="utf-8")
    assert read_pin(pin_file, uri, environ={"PROVKIT_PKCS11_PIN": "1234"}) == "9876"
    sourced = uri.replace(pin_source=f"file:{pin_file}")
    assert read_pin(None, sourced, environ={}) == "9876"
    assert read_pin(None, sourced, environ={"PROVKIT_PKCS11_PIN": "1234"}) == "1234"
    pin_file.write_text("", encoding="utf-8")
    assert _code(lambda: read_pin(pin_file, uri, environ={})) == 408


def test_generating_over_an_existing_key_is_409_unless_replacing(soft_token: SoftToken) -> None:
    first = generate_token_key(_ref(soft_token))
    assert _code(lambda: generate_token_key(_ref(soft_token))) == 409
    second = generate_token_key(_ref(soft_token), replace=True)
    assert not keys.keys_match(first.public_key(), second.public_key())
    assert keys.keys_match(TokenSigner(_ref(soft_token)).public_key(), second.public_key())


def test_a_token_removed_while_in_use_is_406(soft_token: SoftToken) -> None:
    signer = generate_token_key(_ref(soft_token))
    ca = issue.create_ca(signer, {"common-name": "HSM CA"}, now=NOW)
    issuer = issue.DeviceCertificateIssuer(signer, ca, {}, validity_years=1)
    issuer.issue(keys.generate_p256().public_key(), "before", NOW)
    aside = soft_token.remove()
    with pytest.raises(HsmError) as caught:
        issuer.issue(keys.generate_p256().public_key(), "after", NOW)
    assert caught.value.code == FcuErrorCode.HSM_TOKEN_FAILED == 406
    assert "nothing was signed" in (caught.value.hint or "")
    with pytest.raises(HsmError) as absent:  # while it is away, the token is reported absent
        issuer.issue(keys.generate_p256().public_key(), "away", NOW)
    assert absent.value.code == FcuErrorCode.HSM_TOKEN_NOT_FOUND
    aside.rename(soft_token.tokendir / aside.name.removeprefix("removed-"))  # plugged in again
    cert = issuer.issue(keys.generate_p256().public_key(), "back", NOW)
    _verifies(cert, signer.public_key())
