"""The factory CA in a real SoftHSM2 token: setup, every kind of signature, the keystore, and errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography import x509 as cx509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec

from provkit.codes import FcuErrorCode
from provkit.crypto import keys, x509
from provkit.crypto.hsm.uri import Pkcs11Uri
from provkit.device.fcc import fcc_init
from provkit.device.handlers import fcc_handler
from provkit.errors import HsmError
from provkit.factory import FactoryToolApi
from provkit.factory.lwm2m.certs import CertInfo, generate_ca_signed
from provkit.transport.agent import DeviceAgent
from provkit.transport.links import TcpLink
from provkit.transport.servers import TcpAgentServer
from provkit.wire.bundle import decode_bundle
from provkit.wire.framing import FCC_TOKEN
from support.intermediate import sign_intermediate
from support.softhsm import SoftToken

from .conftest import HomeFactory, base_config, write_config

pytestmark = pytest.mark.integration


def _token_api(api: FactoryToolApi, token: SoftToken, **kw: object) -> FactoryToolApi:
    """The same home, with the CA key in ``token`` (PIN from the environment)."""
    return FactoryToolApi(home_dir=api.paths.home, ca_key=token.uri(), pkcs11_module=token.module, **kw)  # type: ignore[arg-type]


@pytest.fixture
def pin_env(soft_token: SoftToken, monkeypatch: pytest.MonkeyPatch) -> SoftToken:
    monkeypatch.setenv("PROVKIT_PKCS11_PIN", soft_token.pin)
    return soft_token


@pytest.fixture
def hsm_api(make_home: HomeFactory, pin_env: SoftToken) -> FactoryToolApi:
    """A home whose CA was set up in the test's token."""
    api = _token_api(make_home(setup=False), pin_env)
    status = api.setup_factory_configurator_utility()
    assert status.ok, status
    return api


def _token_public_key(api: FactoryToolApi) -> ec.EllipticCurvePublicKey:
    return api.factory_ca.signer.public_key()


def _device_certificate(config_data: bytes) -> cx509.Certificate:
    bundle = decode_bundle(config_data)
    (chain,) = [c for c in bundle.certificate_chains if c.name.endswith("DeviceCert")]
    return x509.load_certificate(chain.certificates[0])


def _verifies(cert: cx509.Certificate, public: ec.EllipticCurvePublicKey) -> bool:
    """Whether ``public`` (the token's key) verifies the certificate's signature."""
    algorithm = cert.signature_hash_algorithm
    assert algorithm is not None
    try:
        public.verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(algorithm))
    except InvalidSignature:
        return False
    return True


def test_setup_generates_the_key_in_the_token_and_the_keystore_holds_no_key(
    hsm_api: FactoryToolApi, pin_env: SoftToken
) -> None:
    paths = hsm_api.paths
    assert sorted(p.name for p in paths.keystore.iterdir()) == ["fcu.crt", "fcu_key.pkcs11"]
    reference = paths.ca_key_reference.read_text(encoding="utf-8").strip()
    assert pin_env.pin not in reference
    named = Pkcs11Uri.parse(reference)
    assert (named.token, named.object, named.module_path) == (pin_env.label, "provkit-ca", pin_env.module)
    assert named.id  # the generated key's id pins it down
    ca = x509.load_certificate(paths.ca_cert.read_bytes())
    assert x509.is_self_signed(ca) and x509.is_ca_certificate(ca)
    assert keys.keys_match(x509.certificate_public_key(ca), _token_public_key(hsm_api))
    # Later users find the key through the keystore alone: no --ca-key, no fcu.yml entry.
    plain = FactoryToolApi(home_dir=paths.home)
    assert plain.get_setup_status().ok
    assert Pkcs11Uri.parse(plain.factory_ca.key_id).object == "provkit-ca"


def test_by_tool_certificates_verify_under_the_token_key_and_the_device_agent_accepts_the_bundle(
    hsm_api: FactoryToolApi, tmp_path: Path
) -> None:
    public = _token_public_key(hsm_api)
    for n in range(3):  # each bundle to its own virtual device (FCC takes one factory bundle)
        device = fcc_init(tmp_path / f"device-{n}.sqlite")
        agent = DeviceAgent({FCC_TOKEN: fcc_handler(device)}, read_timeout_s=10)
        request = hsm_api.prepare_device_configuration(f"hsm-dev-{n}", f"SN-{n}")
        assert _verifies(_device_certificate(request.config_data), public)
        with (
            TcpAgentServer(agent, "127.0.0.1", 0) as server,
            TcpLink(*server.address, connect_timeout_s=5) as link,
        ):
            response = link.exchange(request.config_data, timeout_s=10)
        status = hsm_api.verify_device_response(f"hsm-dev-{n}", response)
        assert status.ok, status
        stored = device.kcm.cert_chain_get("mbed.BootstrapDeviceCert")[0]
        assert _verifies(x509.load_certificate(stored), public)


def test_by_device_csr_signing_goes_through_the_token(
    make_home: HomeFactory, pin_env: SoftToken, tmp_path: Path
) -> None:
    api = _token_api(make_home(setup=False, device_key_generation_mode="by_device"), pin_env)
    assert api.setup_factory_configurator_utility().ok
    device = fcc_init(tmp_path / "device.sqlite")
    agent = DeviceAgent({FCC_TOKEN: fcc_handler(device)}, read_timeout_s=10)
    with (
        TcpAgentServer(agent, "127.0.0.1", 0) as server,
        TcpLink(*server.address, connect_timeout_s=5) as link,
    ):
        request = api.prepare_device_configuration("csr-dev", "SN-csr")
        response = link.exchange(request.config_data, timeout_s=10)
        request = api.complete_device_configuration(request, response)
        status = api.verify_device_response("csr-dev", link.exchange(request.config_data, timeout_s=10))
    assert status.ok, status
    assert _verifies(_device_certificate(request.config_data), _token_public_key(api))


def test_lwm2m_factory_ca_certificates_are_signed_in_the_token(hsm_api: FactoryToolApi) -> None:
    credentials = generate_ca_signed(
        CertInfo(subject=(("organizationName", "ACME"),)), "lwm2m-ep", hsm_api.factory_ca
    )
    cert = x509.load_certificate(credentials.cert_der)
    assert x509.common_name(cert) == "lwm2m-ep" and _verifies(cert, _token_public_key(hsm_api))


def test_intermediate_ca_csr_is_signed_in_the_token_and_its_certificate_installs(
    make_home: HomeFactory, pin_env: SoftToken
) -> None:
    api = _token_api(make_home(setup=False, setup_ca_as_intermediate=True), pin_env)
    status = api.setup_factory_configurator_utility()
    assert not status.ok and status.csr
    assert sorted(p.name for p in api.paths.keystore.iterdir()) == ["fcu.csr", "fcu_key.pkcs11"]
    csr_pem = api.paths.ca_csr.read_bytes()
    request = cx509.load_pem_x509_csr(csr_pem)
    assert request.is_signature_valid
    signed = sign_intermediate(csr_pem)
    assert api.install_ca_certificate(signed.chain_pem).ok
    cert = _device_certificate(api.prepare_device_configuration("int-dev", "SN-int").config_data)
    assert x509.signed_by(cert, signed.certificate)
    assert keys.keys_match(signed.certificate.public_key(), _token_public_key(api))  # type: ignore[arg-type]


def test_fcu_yml_names_the_token_key_with_module_and_pin_file(
    make_home: HomeFactory, soft_token: SoftToken, tmp_path: Path
) -> None:
    pin_file = tmp_path / "factory.pin"
    pin_file.write_text(soft_token.pin + "\n", encoding="utf-8")
    api = make_home(setup=False)
    data = base_config()
    data["certificate-authority-key"] = {
        "uri": soft_token.uri(),
        "pkcs11-module": soft_token.module,
        "pin-file": str(pin_file),
    }
    write_config(api.paths.home, data)
    api = FactoryToolApi(home_dir=api.paths.home)
    assert api.setup_factory_configurator_utility().ok
    assert not api.paths.ca_key.exists()
    cert = _device_certificate(api.prepare_device_configuration("yml-dev", "SN-yml").config_data)
    assert _verifies(cert, _token_public_key(api))


@pytest.mark.parametrize(
    ("value", "field"),
    [
        ("pkcs11:token=a;tokn=b", "certificate-authority-key"),
        ({"uri": "pkcs11:object=k?pin-value=1234"}, "certificate-authority-key.uri"),
        ({"uri": "pkcs11:object=k", "pin": "1234"}, "certificate-authority-key.pin"),
        ({"pkcs11-module": "/x.so"}, "certificate-authority-key.uri"),
        (42, "certificate-authority-key"),
    ],
)
def test_a_bad_certificate_authority_key_in_fcu_yml_is_380(
    make_home: HomeFactory, value: object, field: str
) -> None:
    api = make_home(setup=False, certificate_authority_key=value)
    status = api.setup_factory_configurator_utility()
    assert status.status == FcuErrorCode.VALIDATION_ERROR
    assert f"field: {field}." in status.errors[0].message
    assert "1234" not in status.errors[0].message


def test_setup_over_an_existing_token_ca_is_290_and_f_replaces_the_key(
    hsm_api: FactoryToolApi, pin_env: SoftToken
) -> None:
    old = _token_public_key(hsm_api)
    again = _token_api(hsm_api, pin_env).setup_factory_configurator_utility()
    assert again.status == FcuErrorCode.FILE_ALREADY_EXISTS
    replaced = _token_api(hsm_api, pin_env).setup_factory_configurator_utility(override_existing_ca=True)
    assert replaced.ok
    assert not keys.keys_match(old, _token_public_key(hsm_api))
    # Back to a key file: the token reference goes, the key file comes.
    file_api = FactoryToolApi(home_dir=hsm_api.paths.home)
    file_api.paths.ca_key_reference.unlink()
    assert file_api.setup_factory_configurator_utility(override_existing_ca=True).ok
    assert file_api.paths.ca_key.exists()


def test_a_key_already_in_the_token_is_409_for_a_fresh_keystore(
    hsm_api: FactoryToolApi, make_home: HomeFactory, pin_env: SoftToken
) -> None:
    status = _token_api(make_home(setup=False), pin_env).setup_factory_configurator_utility()
    assert status.status == FcuErrorCode.HSM_KEY_EXISTS == 409
    assert "setup -f" in (status.errors[0].hint or "")


def test_token_errors_come_back_in_the_setup_status(
    make_home: HomeFactory, soft_token: SoftToken, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = make_home(setup=False)
    monkeypatch.delenv("PROVKIT_PKCS11_PIN", raising=False)
    assert _token_api(home, soft_token).setup_factory_configurator_utility().status == 408
    monkeypatch.setenv("PROVKIT_PKCS11_PIN", "0000-wrong")
    assert _token_api(home, soft_token).setup_factory_configurator_utility().status == 402
    monkeypatch.setenv("PROVKIT_PKCS11_PIN", soft_token.pin)
    bad_module = FactoryToolApi(
        home_dir=home.paths.home, ca_key=soft_token.uri(), pkcs11_module="/no/such.so"
    )
    assert bad_module.setup_factory_configurator_utility().status == 400
    absent = FactoryToolApi(
        home_dir=home.paths.home, ca_key="pkcs11:token=absent;object=k", pkcs11_module=soft_token.module
    )
    assert absent.setup_factory_configurator_utility().status == 401
    assert not any(home.paths.keystore.glob("*"))  # nothing was written by the failures


def test_a_keystore_reference_to_a_missing_key_is_404_on_load(
    hsm_api: FactoryToolApi, pin_env: SoftToken
) -> None:
    reference = hsm_api.paths.ca_key_reference
    text = reference.read_text(encoding="utf-8").replace("object=provkit-ca", "object=gone")
    reference.write_text(text, encoding="utf-8")
    api = FactoryToolApi(home_dir=hsm_api.paths.home)
    assert api.get_setup_status().status == FcuErrorCode.HSM_KEY_NOT_FOUND
    with pytest.raises(HsmError) as caught:
        api.prepare_device_configuration("dev", "SN")
    assert caught.value.code == 404


def test_the_token_removed_between_devices_stops_signing_with_406(
    hsm_api: FactoryToolApi, pin_env: SoftToken
) -> None:
    hsm_api.prepare_device_configuration("before", "SN-1")
    pin_env.remove()
    with pytest.raises(HsmError) as caught:
        hsm_api.prepare_device_configuration("after", "SN-2")
    assert caught.value.code == FcuErrorCode.HSM_TOKEN_FAILED
