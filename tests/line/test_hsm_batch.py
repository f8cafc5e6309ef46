"""Batches with the CA key in a real SoftHSM2 token: worker processes, the registry, a token pulled out."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography import x509 as cx509
from cryptography.hazmat.primitives.asymmetric import ec

from provkit.codes import FcuErrorCode
from provkit.crypto.hsm.uri import Pkcs11Uri
from provkit.errors import HsmError
from provkit.factory import FactoryToolApi
from provkit.factory.home import make_demo_home
from provkit.line.batch import Batch, BatchOptions
from provkit.line.farm import DeviceFarm
from provkit.line.outcome import DeviceOutcome
from provkit.registry import AttemptState, Registry
from provkit.transport.link import LinkSettings
from provkit.wire.bundle import decode_bundle
from support.archive import settled_bundle
from support.softhsm import SoftToken

pytestmark = pytest.mark.integration


@pytest.fixture
def token_home(tmp_path: Path, soft_token: SoftToken, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A demo FCU home whose CA key was generated in the test's token (PIN in the environment)."""
    monkeypatch.setenv("PROVKIT_PKCS11_PIN", soft_token.pin)
    paths = make_demo_home(tmp_path / "home")
    api = FactoryToolApi(home_dir=paths.home, ca_key=soft_token.uri(), pkcs11_module=soft_token.module)
    assert api.setup_factory_configurator_utility().ok
    return paths.home


def _options(home: Path, workers: int) -> BatchOptions:
    settings = LinkSettings(timeout_s=10, connect_timeout_s=2, retries=0, retry_delay_s=0.01)
    return BatchOptions(home_dir=home, workers=workers, concurrency=4, inject=settings)


def _device_certificate(out: Path, home: Path, attempt_id: int, endpoint: str) -> cx509.Certificate:
    bundle = decode_bundle(settled_bundle(out, home, attempt_id, endpoint))
    (der,) = [c.certificates[0] for c in bundle.certificate_chains if c.name == "mbed.BootstrapDeviceCert"]
    return cx509.load_der_x509_certificate(der)


def _verifies(cert: cx509.Certificate, public: ec.EllipticCurvePublicKey) -> None:
    assert cert.signature_hash_algorithm is not None
    public.verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(cert.signature_hash_algorithm))


def test_a_run_over_two_workers_signs_every_device_in_the_token_and_records_the_key(
    token_home: Path,
    soft_token: SoftToken,
    farm_factory: Callable[..., DeviceFarm],
    devices_csv: Callable[..., Path],
    tmp_path: Path,
) -> None:
    farm = farm_factory(70)  # over 64 devices: the preparation runs in two worker processes
    csv_path = devices_csv(tmp_path / "devices.csv", farm.addresses())
    out = tmp_path / "out"
    with Registry.open(tmp_path / "r.sqlite", station_id="hsm") as registry:
        report = Batch.open(out, registry, csv_path, _options(token_home, workers=2)).run()
        verified = registry.find(state=AttemptState.VERIFIED)
    assert report.ok and report.counts() == {"provisioned": 70}
    api = FactoryToolApi(home_dir=token_home)
    public, key_id = api.factory_ca.signer.public_key(), api.factory_ca.key_id
    named = Pkcs11Uri.parse(key_id)
    assert (named.token, named.object, named.type) == (soft_token.label, "provkit-ca", "private")
    assert len(verified) == 70
    for attempt in verified:
        assert attempt.ca_key == key_id
        _verifies(_device_certificate(out, token_home, attempt.id, attempt.endpoint_name), public)


class _PullTokenAfter:
    """A progress sink that takes the token away once ``count`` bundles are prepared."""

    def __init__(self, token: SoftToken, count: int) -> None:
        self.token, self.count, self.prepared = token, count, 0
        self.aside: Path | None = None

    def start(self, step: str, total: int) -> None:
        """Nothing to do at a step's start."""

    def advance(self, step: str, outcome: DeviceOutcome | None = None) -> None:
        """Count prepared bundles; pull the token out after the chosen one."""
        if step == "prepare":
            self.prepared += 1
            if self.prepared == self.count:
                self.aside = self.token.remove()


def test_a_token_removed_mid_batch_stops_it_and_nothing_unsigned_is_recorded(
    token_home: Path,
    soft_token: SoftToken,
    farm_factory: Callable[..., DeviceFarm],
    devices_csv: Callable[..., Path],
    tmp_path: Path,
) -> None:
    farm = farm_factory(12)
    csv_path = devices_csv(tmp_path / "devices.csv", farm.addresses())
    out = tmp_path / "out"
    puller = _PullTokenAfter(soft_token, 5)
    with Registry.open(tmp_path / "r.sqlite", station_id="hsm") as registry:
        batch = Batch.open(out, registry, csv_path, _options(token_home, workers=1), puller)
        with pytest.raises(HsmError) as caught:
            batch.run()
        assert caught.value.code == FcuErrorCode.HSM_TOKEN_FAILED
        assert "run the same batch command again" in (caught.value.hint or "")
        latest = batch.ctx.latest()
        states = sorted(a.state for a in latest.values())
        # The five signed before the removal are recorded as prepared; the rest wait, unsigned;
        # nothing was sent after the token failed, nothing failed, nothing is provisioned.
        assert states.count(AttemptState.PREPARED) == 5
        assert states.count(AttemptState.ALLOCATED) == 7
        assert len(states) == 12
        assert registry.stats().provisioned == 0
        assert farm.messages_served == 0
        assert (out / "report.json").is_file()
        signed = {a.id: a.bundle_sha256 for a in latest.values() if a.state is AttemptState.PREPARED}
        # The token is back: the same command carries on and completes the batch.
        assert puller.aside is not None
        puller.aside.rename(soft_token.tokendir / puller.aside.name.removeprefix("removed-"))
        report = Batch.open(out, registry, None, _options(token_home, workers=1)).run()
        assert report.ok and report.counts() == {"provisioned": 12}
        assert registry.stats().provisioned == 12
        # The bundles signed before the failure were sent as they were, not signed again.
        assert {i: registry.get_attempt(i).bundle_sha256 for i in signed} == signed


def test_the_cli_exits_with_the_token_error_when_the_token_is_gone(
    token_home: Path,
    soft_token: SoftToken,
    farm_factory: Callable[..., DeviceFarm],
    devices_csv: Callable[..., Path],
    tmp_path: Path,
) -> None:
    from support.cli import run_cli

    farm = farm_factory(3)
    csv_path = devices_csv(tmp_path / "devices.csv", farm.addresses())
    soft_token.remove()
    result = run_cli(
        "--home-dir", str(token_home), "batch", "run", "--devices", str(csv_path),
        "--out", str(tmp_path / "out"), "--registry", str(tmp_path / "r.sqlite"),
        "--workers", "1", "--no-progress",
    )  # fmt: skip
    assert result.exit_code == 1
    assert "Error FCU-401" in result.output or "Error FCU-406" in result.output
    assert farm.messages_served == 0
