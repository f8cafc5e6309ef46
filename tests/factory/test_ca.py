"""Factory CA setup and loading: files, certificate profile, overwrite refusal, errors 210–222, 290."""

from __future__ import annotations

import datetime as dt
import os
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from provkit.codes import FcuErrorCode
from provkit.crypto import issue
from provkit.crypto.keys import load_private_key
from provkit.crypto.x509 import certificate_pem
from provkit.errors import CaError
from provkit.factory import FactoryCa, FactoryToolApi
from support.intermediate import sign_intermediate

from .conftest import HomeFactory


def test_setup_creates_key_and_ca_certificate(api: FactoryToolApi) -> None:
    """Setup writes fcu_key.pem (0600) and a P-256/SHA-256 35-year CA certificate with the subject."""
    paths = api.paths
    assert stat.S_IMODE(paths.ca_key.stat().st_mode) == 0o600
    cert = x509.load_pem_x509_certificate(paths.ca_cert.read_bytes())
    key = serialization.load_pem_private_key(paths.ca_key.read_bytes(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, ec.SECP256R1)
    assert cert.public_key() == key.public_key()
    assert isinstance(cert.signature_hash_algorithm, hashes.SHA256)
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and usage.key_cert_sign and usage.crl_sign
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert lifetime == dt.timedelta(days=35 * 365)
    assert cert.not_valid_before_utc < dt.datetime.now(dt.UTC)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "provkit factory CA"
    assert cert.subject.get_attributes_for_oid(NameOID.COUNTRY_NAME)[0].value == "GB"
    assert api.get_setup_status().ok


def test_setup_refuses_to_overwrite_with_290(api: FactoryToolApi) -> None:
    """A second setup without override returns status 290 (as FCU does, no exception); the CA is untouched."""
    before = api.paths.ca_cert.read_bytes(), api.paths.ca_key.read_bytes()
    status = api.setup_factory_configurator_utility()
    assert status.status == FcuErrorCode.FILE_ALREADY_EXISTS and not status.ok
    assert [(e.code, e.message) for e in status.errors] == [
        (290, FcuErrorCode.FILE_ALREADY_EXISTS.format(api.paths.ca_key))
    ]
    assert status.errors[0].hint and "override_existing_ca" in status.errors[0].hint
    assert (api.paths.ca_cert.read_bytes(), api.paths.ca_key.read_bytes()) == before


def test_setup_override_replaces_ca(api: FactoryToolApi) -> None:
    """Setup with override_existing_ca=True creates a new key pair."""
    before = api.paths.ca_key.read_bytes()
    status = api.setup_factory_configurator_utility(override_existing_ca=True)
    assert status.ok and api.paths.ca_key.read_bytes() != before
    assert not list(api.paths.keystore.glob(".*tmp*"))


def test_passphrase_encrypts_ca_key(make_home: HomeFactory) -> None:
    """With a passphrase the key file is encrypted and loads only with the passphrase."""
    plain = make_home(setup=False)
    api = FactoryToolApi(home_dir=plain.paths.home, ca_passphrase="s3cret")
    api.setup_factory_configurator_utility()
    assert b"ENCRYPTED" in api.paths.ca_key.read_bytes()
    assert api.get_setup_status().ok
    status = FactoryToolApi(home_dir=plain.paths.home, ca_passphrase="wrong").get_setup_status()
    assert status.status == FcuErrorCode.CA_KEY_LOAD_FAILED


def test_missing_files_are_210_and_220(make_home: HomeFactory) -> None:
    """Without setup, the status reports 210 (no certificate); without the key, 220."""
    api = make_home(setup=False)
    assert api.get_setup_status().status == FcuErrorCode.CA_CERT_NOT_FOUND
    api.setup_factory_configurator_utility()
    api.paths.ca_key.unlink()
    with pytest.raises(CaError) as info:
        FactoryCa.load(api.paths)
    assert info.value.code == FcuErrorCode.CA_KEY_NOT_FOUND
    assert info.value.message == FcuErrorCode.CA_KEY_NOT_FOUND.format(api.paths.ca_key)


def test_corrupt_files_are_211_and_221(api: FactoryToolApi) -> None:
    """A garbage certificate gives 211 and a garbage key 221."""
    key_bytes = api.paths.ca_key.read_bytes()
    api.paths.ca_cert.write_bytes(b"not a certificate")
    assert api.get_setup_status().status == FcuErrorCode.CA_CERT_LOAD_FAILED
    api.setup_factory_configurator_utility(override_existing_ca=True)
    api.paths.ca_key.write_bytes(key_bytes[:40])
    assert api.get_setup_status().status == FcuErrorCode.CA_KEY_LOAD_FAILED


def test_mismatched_pair_is_222(make_home: HomeFactory) -> None:
    """A CA certificate from one setup with the key of another gives 222."""
    first, second = make_home(), make_home()
    second.paths.ca_key.write_bytes(first.paths.ca_key.read_bytes())
    with pytest.raises(CaError) as info:
        FactoryCa.load(second.paths)
    assert info.value.code == FcuErrorCode.CA_CERT_KEY_MISMATCH
    assert info.value.hint


def test_non_ca_certificate_is_211(api: FactoryToolApi) -> None:
    """A certificate without BasicConstraints CA in fcu.crt is refused with 211."""
    ca = FactoryCa.load(api.paths)
    leaf = ca.issue(load_private_key(api.paths.ca_key.read_bytes()).public_key(), common_name="x")
    api.paths.ca_cert.write_bytes(certificate_pem([leaf]))
    assert api.get_setup_status().status == FcuErrorCode.CA_CERT_LOAD_FAILED


def test_intermediate_mode_csr_then_install(make_home: HomeFactory) -> None:
    """Intermediate mode writes a CSR; the signed certificate plus chain is installed and used."""
    api = make_home(setup_ca_as_intermediate=True)
    assert api.paths.ca_csr.exists() and not api.paths.ca_cert.exists()
    status = api.get_setup_status()
    assert status.status == FcuErrorCode.CA_CERT_NOT_FOUND and status.csr
    signed = sign_intermediate(api.paths.ca_csr.read_bytes(), serial=7)
    root = signed.root
    assert api.install_ca_certificate(signed.chain_pem.decode()).ok  # PEM text works as well as bytes
    ca = FactoryCa.load(api.paths)
    assert ca.chain == (root,) and ca.max_chain_depth == 3


def test_setup_mode_switch_removes_the_other_modes_file(make_home: HomeFactory) -> None:
    """Re-running setup -f in the other mode leaves no CSR or certificate of the replaced key behind."""
    api = make_home(setup_ca_as_intermediate=True)
    assert api.paths.ca_csr.exists()
    self_signed = make_home(setup=False)
    api.paths.config_file.write_text(self_signed.paths.config_file.read_text())
    api.reload()
    assert api.setup_factory_configurator_utility(override_existing_ca=True).ok
    assert api.paths.ca_cert.exists() and not api.paths.ca_csr.exists()


def test_install_foreign_certificate_is_222(make_home: HomeFactory) -> None:
    """Installing a CA certificate for another key fails with 222 and keeps the keystore as it was."""
    api = make_home(setup_ca_as_intermediate=True)
    other = issue.create_ca(
        ec.generate_private_key(ec.SECP256R1()), {"common-name": "X"}, now=dt.datetime.now(dt.UTC)
    )
    status = api.install_ca_certificate(certificate_pem([other]))
    assert status.status == FcuErrorCode.CA_CERT_KEY_MISMATCH
    assert not api.paths.ca_cert.exists()


def _signed_by_root(api: FactoryToolApi, **changes: object) -> bytes:
    """The setup CSR's key in a CA certificate from a fresh root, with ``changes`` to the profile."""
    root_key = ec.generate_private_key(ec.SECP256R1())
    csr = x509.load_pem_x509_csr(api.paths.ca_csr.read_bytes())
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(csr.subject)
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "root")]))
        .public_key(csr.public_key())
        .serial_number(5)
        .not_valid_before(changes.get("not_before", now - dt.timedelta(days=1)))  # type: ignore[arg-type]
        .not_valid_after(changes.get("not_after", now + dt.timedelta(days=7000)))  # type: ignore[arg-type]
        .add_extension(
            x509.BasicConstraints(ca=bool(changes.get("ca", True)), path_length=None), critical=True
        )
    )
    algorithm = changes.get("hash", hashes.SHA256())
    return builder.sign(root_key, algorithm).public_bytes(serialization.Encoding.PEM)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "changes",
    [
        {"ca": False},
        {"hash": hashes.SHA384()},
        {
            "not_before": dt.datetime.now(dt.UTC) - dt.timedelta(days=9),
            "not_after": dt.datetime.now(dt.UTC) - dt.timedelta(days=1),
        },
        {"not_before": dt.datetime.now(dt.UTC) + dt.timedelta(days=2)},
    ],
    ids=["not-a-ca", "ecdsa-with-sha384", "expired", "not-yet-valid"],
)
def test_install_unusable_ca_certificate_is_211(make_home: HomeFactory, changes: dict[str, object]) -> None:
    """A signed intermediate that is no CA, not ecdsa-with-SHA256 or not valid now is refused with 211."""
    api = make_home(setup_ca_as_intermediate=True)
    assert api.install_ca_certificate(_signed_by_root(api)).ok  # the control: the same profile, unchanged
    api.paths.ca_cert.unlink()
    status = api.install_ca_certificate(_signed_by_root(api, **changes))
    assert status.status == FcuErrorCode.CA_CERT_LOAD_FAILED, status
    assert status.errors[0].hint
    assert not api.paths.ca_cert.exists()


def test_install_problems_are_reported_in_the_status(make_home: HomeFactory, tmp_path: Path) -> None:
    """An unreadable certificate file is 360; a CA key the passphrase does not open is 221."""
    api = make_home(setup=False, setup_ca_as_intermediate=True)
    locked = FactoryToolApi(home_dir=api.paths.home, ca_passphrase="right")
    assert locked.setup_factory_configurator_utility().csr
    missing = locked.install_ca_certificate(tmp_path / "no-such.pem")
    assert (
        missing.status == FcuErrorCode.FILE_LOAD_FAILED
        and str(tmp_path / "no-such.pem") in missing.errors[0].message
    )
    signed = _signed_by_root(locked)
    wrong = FactoryToolApi(home_dir=api.paths.home, ca_passphrase="wrong").install_ca_certificate(signed)
    assert wrong.status == FcuErrorCode.CA_KEY_LOAD_FAILED
    assert FactoryToolApi(home_dir=api.paths.home).install_ca_certificate(signed).status == 221
    assert locked.install_ca_certificate(signed).ok


def test_unwritable_keystore_is_320(make_home: HomeFactory) -> None:
    """A keystore path that cannot be created fails with 320 and writes nothing."""
    api = make_home(setup=False)
    api.paths.keystore.parent.mkdir(parents=True, exist_ok=True)
    api.paths.keystore.write_text("a file where the keystore directory should be")
    status = api.setup_factory_configurator_utility()
    assert status.status == FcuErrorCode.CERTIFICATE_CREATE_FAILED
    assert str(api.paths.keystore) in (status.errors[0].hint or "")


def test_keystore_entries_that_are_not_files_are_211_and_221(api: FactoryToolApi) -> None:
    """A FIFO as fcu.crt (211) or a directory as fcu_key.pem (221) is reported at once, not read."""
    api.paths.ca_cert.unlink()
    os.mkfifo(api.paths.ca_cert)
    assert api.get_setup_status().status == FcuErrorCode.CA_CERT_LOAD_FAILED
    api.paths.ca_cert.unlink()
    assert api.setup_factory_configurator_utility(override_existing_ca=True).ok
    api.paths.ca_key.unlink()
    api.paths.ca_key.mkdir()
    status = api.get_setup_status()
    assert status.status == FcuErrorCode.CA_KEY_LOAD_FAILED and "regular file" in (
        status.errors[0].hint or ""
    )


def test_expired_ca_certificate_is_211(api: FactoryToolApi) -> None:
    """An expired fcu.crt (for the right key) is 211 naming the date, and prepare refuses to sign with it."""
    key = load_private_key(api.paths.ca_key.read_bytes())
    start = dt.datetime.now(dt.UTC) - dt.timedelta(days=400)
    expired = issue.create_ca(key, {"common-name": "old CA"}, now=start, validity_years=1)
    api.paths.ca_cert.write_bytes(certificate_pem([expired]))
    status = api.get_setup_status()
    assert status.status == FcuErrorCode.CA_CERT_LOAD_FAILED
    assert "expired on" in (status.errors[0].hint or "")
    api.reload()
    with pytest.raises(CaError) as info:
        api.prepare_device_configuration("d", "s")
    assert info.value.code == FcuErrorCode.CA_CERT_LOAD_FAILED
