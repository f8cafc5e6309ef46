"""The CLI with the factory CA in a real SoftHSM2 token: setup --ca-key, inject, lwm2m, errors."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509 as cx509
from cryptography.hazmat.primitives.asymmetric import ec

from provkit.crypto.hsm.uri import Pkcs11Uri
from provkit.device.fcc import fcc_init
from provkit.device.handlers import fcc_handler
from provkit.factory import FactoryToolApi
from provkit.lwm2m.strict import decode_strict
from provkit.transport.agent import DeviceAgent
from provkit.transport.servers import TcpAgentServer
from provkit.wire.framing import FCC_TOKEN
from support.cli import json_status, make_fcu_home, run_cli
from support.softhsm import SoftToken

pytestmark = pytest.mark.integration


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """An FCU home made by 'provkit init' whose CA is not set up yet."""
    return make_fcu_home(tmp_path, setup=False)


@pytest.fixture
def pin_file(soft_token: SoftToken, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("PROVKIT_PKCS11_PIN", raising=False)
    path = tmp_path / "token.pin"
    path.write_text(soft_token.pin + "\n", encoding="utf-8")
    path.chmod(0o600)
    return path


@pytest.fixture
def token_home(home: Path, soft_token: SoftToken, pin_file: Path) -> Path:
    result = run_cli(
        "--home-dir", str(home), "setup",
        "--ca-key", soft_token.uri(), "--pkcs11-module", soft_token.module, "--pin-file", str(pin_file),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return home


@pytest.fixture
def agent_address(tmp_path: Path) -> Iterator[tuple[str, int]]:
    fcc = fcc_init(tmp_path / "dev.sqlite")
    with TcpAgentServer(
        DeviceAgent({FCC_TOKEN: fcc_handler(fcc)}, read_timeout_s=10), "127.0.0.1", 0
    ) as server:
        yield server.address


def _token_key(home: Path, pin_file: Path) -> ec.EllipticCurvePublicKey:
    return FactoryToolApi(home_dir=home, pin_file=pin_file).factory_ca.signer.public_key()


def test_setup_with_ca_key_writes_certificate_and_reference_only(
    token_home: Path, soft_token: SoftToken, pin_file: Path
) -> None:
    keystore = token_home / "keystore"
    assert sorted(p.name for p in keystore.iterdir()) == ["fcu.crt", "fcu_key.pkcs11"]
    reference = Pkcs11Uri.parse((keystore / "fcu_key.pkcs11").read_text(encoding="utf-8").strip())
    assert reference.module_path == soft_token.module and reference.token == soft_token.label
    ca = cx509.load_pem_x509_certificate((keystore / "fcu.crt").read_bytes())
    assert ca.public_key() == _token_key(token_home, pin_file)


def test_inject_signs_in_the_token_with_the_pin_from_the_global_option(
    token_home: Path, pin_file: Path, agent_address: tuple[str, int], tmp_path: Path, soft_token: SoftToken
) -> None:
    ip, port = agent_address
    log = tmp_path / "provkit.log"
    result = run_cli(
        "-vv", "--log-file", str(log), "--home-dir", str(token_home), "--pin-file", str(pin_file),
        "inject", "--endpoint-name", "hsm-cli-1", "--serial-number", "SN1",
        "tcp", "--ip", ip, "--port", str(port),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json_status(result.output)["deviceResponse"]["status"] == 0
    assert soft_token.pin not in result.output and soft_token.pin not in log.read_text(encoding="utf-8")


def test_lwm2m_factory_ca_signs_through_the_token(token_home: Path, pin_file: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "cert.yaml"
    cfg.write_text(
        "Security:\n"
        '  1: {ServerURI: "coaps://dm.example.com:5684", Bootstrap: false, Mode: cert, ShortServerID: 1}\n'
        "Server:\n  1: {ShortServerID: 1, Lifetime: 86400, NotificationStoring: false, Binding: U}\n",
        encoding="utf-8",
    )
    out = tmp_path / "b.cbor"
    result = run_cli(
        "--home-dir", str(token_home), "--pin-file", str(pin_file), "lwm2m", "build", "-c", str(cfg),
        "-e", "urn:dev:hsm", "--factory-ca", "--allow-unverified-server", "-o", str(out),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    der = next(e.value for e in decode_strict(out.read_bytes()) if e.path == "/0/1/3")
    assert isinstance(der, bytes)
    cert = cx509.load_der_x509_certificate(der)
    assert cert.signature_hash_algorithm is not None
    _token_key(token_home, pin_file).verify(
        cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(cert.signature_hash_algorithm)
    )


@pytest.mark.parametrize(
    ("extra", "status"),
    [
        (("--pkcs11-module", "/no/such/module.so", "--pin-file", "PIN"), 400),
        (("--pin-file", "/no/such/pin"), 408),
    ],
)
def test_setup_failures_print_the_fcu_code(
    home: Path, soft_token: SoftToken, pin_file: Path, extra: tuple[str, ...], status: int
) -> None:
    args = [
        "--home-dir",
        str(home),
        "setup",
        "--ca-key",
        soft_token.uri(),
        "--pkcs11-module",
        soft_token.module,
    ]
    result = run_cli(*args, *(str(pin_file) if arg == "PIN" else arg for arg in extra))
    assert result.exit_code == 1
    assert json_status(result.output)["status"] == status
    assert "Hint:" in result.output


def test_a_wrong_pin_file_is_402_and_the_pin_is_never_printed(
    home: Path, soft_token: SoftToken, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PROVKIT_PKCS11_PIN", raising=False)
    wrong = tmp_path / "wrong.pin"
    wrong.write_text("9999-not-it\n", encoding="utf-8")
    result = run_cli(
        "--home-dir", str(home), "setup", "--ca-key", soft_token.uri(module=True), "--pin-file", str(wrong)
    )  # fmt: skip
    assert result.exit_code == 1 and json_status(result.output)["status"] == 402
    assert "9999-not-it" not in result.output


def test_a_uri_with_a_pin_value_is_refused_without_echoing_the_pin(home: Path) -> None:
    result = run_cli(
        "--home-dir", str(home), "setup", "--ca-key", "pkcs11:token=t;object=k?pin-value=7777-secret"
    )
    assert result.exit_code == 1 and json_status(result.output)["status"] == 407
    assert "7777-secret" not in result.output
