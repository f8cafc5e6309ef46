"""Batch provisioning end to end over loopback TCP against virtual FCC devices."""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import update

from provkit.codes import FtErrorCode
from provkit.errors import PatternConflictError
from provkit.line.batch import Batch, BatchOptions
from provkit.line.farm import DeviceFarm
from provkit.registry import Attempt, AttemptState, IdentityPattern, Registry
from provkit.registry.schema import attempts
from provkit.transport.link import LINE_LINK_SETTINGS
from provkit.wire.bundle import decode_bundle
from provkit.wire.response import BundleResponse, encode_response
from support.archive import settled_bundle

pytestmark = pytest.mark.integration


def _options(home: Path, **kw: object) -> BatchOptions:
    settings = replace(LINE_LINK_SETTINGS, timeout_s=10, connect_timeout_s=2, retries=0, retry_delay_s=0.01)
    base: dict[str, object] = {"home_dir": home, "workers": 1, "concurrency": 8, "inject": settings}
    base.update(kw)
    return BatchOptions(**base)  # type: ignore[arg-type]


def test_run_provisions_every_device_and_writes_report(
    fcu_home: Path,
    farm_factory: Callable[..., DeviceFarm],
    devices_csv: Callable[..., Path],
    registry_url: str,
    tmp_path: Path,
) -> None:
    """A batch run provisions all devices, records them and writes the JSON report."""
    farm = farm_factory(12)
    csv_path = devices_csv(tmp_path / "devices.csv", farm.addresses())
    with Registry.open(registry_url, station_id="st-1") as registry:
        report = Batch.open(tmp_path / "out", registry, csv_path, _options(fcu_home)).run()
        stats = registry.stats()
        verified = registry.find(state=AttemptState.VERIFIED)
    assert report.ok and report.counts() == {"provisioned": 12}
    assert stats.provisioned == 12 and stats.by_station == {"st-1": 12}
    for attempt in verified:
        _assert_every_field_recorded(attempt, fcu_home, tmp_path / "out", "st-1")
    document = json.loads((tmp_path / "out" / "report.json").read_text())
    assert document["counts"] == {"provisioned": 12}
    assert {d["endpoint_name"] for d in document["devices"]} == {f"ep-{n:04d}" for n in range(12)}
    assert farm.messages_served == 12


def _assert_every_field_recorded(attempt: Attempt, home: Path, out: Path, station: str) -> None:
    """The attempt holds what the issue lists, checked against the bundle and the CA file."""
    import hashlib

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    bundle = decode_bundle(settled_bundle(out, home, attempt.id, attempt.endpoint_name))
    # The demo home bootstraps: the device certificate is the leaf of its chain.
    (der,) = [c.certificates[0] for c in bundle.certificate_chains if c.name == "mbed.BootstrapDeviceCert"]
    cert = x509.load_der_x509_certificate(der)
    ca = x509.load_pem_x509_certificate((home / "keystore" / "fcu.crt").read_bytes())
    fingerprint = cert.fingerprint(hashes.SHA256()).hex()
    assert attempt.device_cert_sha256 == fingerprint
    assert attempt.device_cert_serial == format(cert.serial_number, "x")
    assert attempt.ca_sha256 == ca.fingerprint(hashes.SHA256()).hex()
    spki = ca.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    assert attempt.ca_key == "sha256:" + hashlib.sha256(spki).hexdigest()  # the key file signed it
    assert attempt.enrollment_id == "A-" + ":".join(
        fingerprint[i : i + 2].upper() for i in range(0, len(fingerprint), 2)
    )
    assert attempt.station_id == station and attempt.key_mode == "by_tool"
    assert attempt.return_status == 0 and attempt.info_message == "The Factory process succeeded"
    assert attempt.warnings is not None and attempt.warnings.strip()
    assert attempt.endpoint_name.startswith("ep-") and attempt.serial_number.startswith("sn-")
    assert attempt.created_at.tzinfo is not None and attempt.provisioned_at is not None
    assert attempt.created_at <= attempt.updated_at and attempt.provisioned_at.tzinfo is not None


def test_substeps_prepare_inject_verify(
    fcu_home: Path, farm_factory: Callable[..., DeviceFarm], devices_csv: Callable[..., Path], tmp_path: Path
) -> None:
    """Prepare, inject and verify run as separate steps over the same batch directory."""
    farm = farm_factory(5)
    csv_path = devices_csv(tmp_path / "devices.csv", farm.addresses())
    out = tmp_path / "out"
    with Registry.open(tmp_path / "r.sqlite", station_id="s") as registry:
        prepared = Batch.open(out, registry, csv_path, _options(fcu_home)).prepare()
        assert prepared.counts() == {"prepared": 5} and prepared.ok
        assert len(list((out / "bundles").glob("*.cbor"))) == 5
        assert farm.messages_served == 0
        injected = Batch.open(out, registry, None, _options(fcu_home)).inject()
        assert injected.counts() == {"injected": 5}
        assert registry.stats().provisioned == 0
        verified = Batch.open(out, registry, None, _options(fcu_home)).verify()
        assert verified.counts() == {"provisioned": 5}
        assert registry.stats().provisioned == 5


def test_prepare_over_two_worker_processes(
    fcu_home: Path, farm_factory: Callable[..., DeviceFarm], devices_csv: Callable[..., Path], tmp_path: Path
) -> None:
    """With two workers the bundles are prepared (and written) by a process pool, one FCU per
    worker; every bundle is distinct, recorded with its digest, and provisions its device."""
    import hashlib
    import os

    from provkit.line.prepare import PreparePool

    with PreparePool(2, fcu_home) as pool:
        pool.warm_up()
        workers = set(pool._pool._processes)  # the executor spawns one process per worker
    assert len(workers) == 2 and os.getpid() not in workers
    farm = farm_factory(6)
    csv_path = devices_csv(tmp_path / "devices.csv", farm.addresses())
    with Registry.open(tmp_path / "r.sqlite", station_id="s") as registry:
        batch = Batch.open(tmp_path / "out", registry, csv_path, _options(fcu_home, workers=2))
        assert batch.prepare().counts() == {"prepared": 6}
        attempts = list(registry.batch_attempts(batch.batch_id).values())
        digests = {a.bundle_sha256 for a in attempts}
        for a in attempts:
            data = batch.layout.bundle(a.id, a.endpoint_name).read_bytes()
            assert hashlib.sha256(data).hexdigest() == a.bundle_sha256
        assert len(digests) == 6 and len({a.device_cert_sha256 for a in attempts}) == 6
        assert Batch.open(tmp_path / "out", registry, None, _options(fcu_home)).run().ok


@pytest.mark.parametrize("separate_steps", [False, True])
def test_by_device_keys_get_their_certificate_before_counting_as_provisioned(
    by_device_home: Path,
    farm_factory: Callable[..., DeviceFarm],
    devices_csv: Callable[..., Path],
    tmp_path: Path,
    separate_steps: bool,
) -> None:
    """by_device: each device answers the CSR request with its CSR, gets its signed
    certificate in a second message on the same connection, and only that answer is
    verified; the registry records the certificate the device received."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    from provkit.device.kcm import ItemType, Kcm
    from provkit.device.storage import open_storage

    farm = farm_factory(3, storage=tmp_path / "store")
    csv_path = devices_csv(tmp_path / "devices.csv", farm.addresses())
    options = _options(by_device_home)
    with Registry.open(tmp_path / "r.sqlite", station_id="s") as registry:
        if separate_steps:
            assert Batch.open(tmp_path / "out", registry, csv_path, options).prepare().ok
            assert Batch.open(tmp_path / "out", registry, None, options).inject().ok
            report = Batch.open(tmp_path / "out", registry, None, options).verify()
        else:
            report = Batch.open(tmp_path / "out", registry, csv_path, options).run()
        verified = registry.find(state=AttemptState.VERIFIED)
    assert report.ok and farm.messages_served == 6  # CSR request, then the certificate message
    for index, attempt in enumerate(sorted(verified, key=lambda a: a.endpoint_name)):
        assert attempt.key_mode == "by_device" and attempt.enrollment_id and attempt.device_cert_serial
        kcm = Kcm(open_storage(tmp_path / "store" / f"device-{index:05d}.sqlite"))
        (stored,) = [i for i in kcm.list_items() if i.name == "mbed.BootstrapDeviceCert"]
        leaf = x509.load_der_x509_certificate(kcm.item_get(stored.name, ItemType(stored.type)))
        assert attempt.device_cert_sha256 == leaf.fingerprint(hashes.SHA256()).hex()


def test_the_line_reads_no_bundle_back(
    by_device_home: Path,
    farm_factory: Callable[..., DeviceFarm],
    devices_csv: Callable[..., Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Prepare records the session id and certificate the FCU built; inject and verify decode no bundle.

    A by_device bundle prepared without its session id (an older provkit) is prepared again.
    """
    import provkit.wire.bundle

    decoded: list[bytes] = []
    real = provkit.wire.bundle.decode_bundle
    monkeypatch.setattr(provkit.wire.bundle, "decode_bundle", lambda data: decoded.append(data) or real(data))
    farm = farm_factory(2, storage=tmp_path / "store")
    csv_path = devices_csv(tmp_path / "devices.csv", farm.addresses())
    options = _options(by_device_home)
    with Registry.open(tmp_path / "r.sqlite", station_id="s") as registry:
        assert Batch.open(tmp_path / "out", registry, csv_path, options).prepare().ok
        prepared = registry.find(state=AttemptState.PREPARED)
        assert len(prepared) == 2 and all(a.session_id and len(a.session_id) == 32 for a in prepared)
        with registry.engine.begin() as conn:  # as an older provkit left it
            conn.execute(update(attempts).where(attempts.c.id == prepared[0].id).values(session_id=None))
        report = Batch.open(tmp_path / "out", registry, None, options).run()
        verified = registry.find(state=AttemptState.VERIFIED)
    assert report.ok and len(verified) == 2 and decoded == []
    by_id = {a.id: a for a in verified}
    assert set(by_id) == {a.id for a in prepared}
    # The bundle left without a session id was prepared again: a new session, a new bundle.
    again = by_id[prepared[0].id]
    assert again.session_id and again.session_id != prepared[0].session_id
    assert again.bundle_sha256 != prepared[0].bundle_sha256
    assert by_id[prepared[1].id].session_id == prepared[1].session_id


def test_by_device_refusal_of_the_csr_message_is_reported_per_device(
    by_device_home: Path,
    farm_factory: Callable[..., DeviceFarm],
    devices_csv: Callable[..., Path],
    tmp_path: Path,
) -> None:
    """A device failing the CSR message gets no certificate message: 1004 with its status."""
    from provkit.line.farm import fcc_device

    refusal = encode_response(BundleResponse(21, "Failed to generate key\n"))

    def factory(index: int) -> Callable[[bytes, bool], bytes | None]:
        return (lambda message, first: refusal) if index == 0 else fcc_device(":memory:")

    farm = farm_factory(2, factory)
    csv_path = devices_csv(tmp_path / "devices.csv", farm.addresses())
    with Registry.open(tmp_path / "r.sqlite", station_id="s") as registry:
        report = Batch.open(tmp_path / "out", registry, csv_path, _options(by_device_home)).run()
    first, second = report.devices
    assert second.status == "provisioned" and farm.messages_served == 3
    assert first.status == "failed" and first.code == int(FtErrorCode.DEVICE_EXECUTION_FAILED)
    assert first.return_status == 21 and first.reason.startswith("Execution failed on device with error #21")


def test_externally_supplied_keys_come_from_each_rows_folder(
    supplied_home: Path, farm_factory: Callable[..., DeviceFarm], tmp_path: Path
) -> None:
    """externally_supplied: each row names its device's key folder; the bundle carries that
    key and certificate, the registry records that certificate; a row without one fails
    with the FCU's code (104) and the others go on."""
    import datetime as dt

    from cryptography.hazmat.primitives import hashes

    from provkit.crypto import issue, keys, x509

    now = dt.datetime.now(dt.UTC)
    ca_key = keys.generate_p256()
    ca = issue.create_ca(ca_key, {"common-name": "Supplier CA"}, now=now - dt.timedelta(days=3))
    farm = farm_factory(3)
    rows, expected = [], {}
    for n, (h, p) in enumerate(farm.addresses()[:2]):
        key = keys.generate_p256()
        start = now - dt.timedelta(hours=1)
        cert = issue.issue_device_certificate(
            ca_key,
            ca,
            key.public_key(),
            common_name=f"ep-{n}",
            subject={},
            not_before=start,
            validity_years=20,
        )
        folder = tmp_path / f"keys-{n}"
        folder.mkdir()
        (folder / "BootstrapDevicePrivateKey.der").write_bytes(keys.private_key_der(key))
        (folder / "BootstrapDeviceCert.der").write_bytes(x509.certificate_der(cert))
        rows.append(f"{h}:{p},ep-{n},sn-{n},{folder}")
        expected[f"ep-{n}"] = cert.fingerprint(hashes.SHA256()).hex()
    h, p = farm.addresses()[2]
    rows.append(f"{h}:{p},ep-2,sn-2,")
    csv_path = tmp_path / "devices.csv"
    csv_path.write_text("address,endpoint_name,serial_number,device_keys_location\n" + "\n".join(rows) + "\n")
    with Registry.open(tmp_path / "r.sqlite", station_id="s") as registry:
        report = Batch.open(tmp_path / "out", registry, csv_path, _options(supplied_home)).run()
        recorded = {a.endpoint_name: a for a in registry.find()}
    by_endpoint = {d.endpoint_name: d for d in report.devices}
    for name, fingerprint in expected.items():
        assert by_endpoint[name].status == "provisioned", by_endpoint[name]
        assert recorded[name].device_cert_sha256 == fingerprint
        assert recorded[name].key_mode == "externally_supplied"
    assert by_endpoint["ep-2"].status == "failed" and by_endpoint["ep-2"].code == 104
    assert farm.messages_served == 2


def test_allocated_identities_from_pattern(
    fcu_home: Path, farm_factory: Callable[..., DeviceFarm], devices_csv: Callable[..., Path], tmp_path: Path
) -> None:
    """Rows without identities get endpoint names and serials from the pattern."""
    farm = farm_factory(3)
    csv_path = devices_csv(tmp_path / "devices.csv", farm.addresses(), identities=False)
    pattern = IdentityPattern("{prefix}-{seq:06d}", "SN{seq:08d}", prefix="lot")
    with Registry.open(tmp_path / "r.sqlite", station_id="s") as registry:
        report = Batch.open(tmp_path / "out", registry, csv_path, _options(fcu_home, pattern=pattern)).run()
    assert sorted(d.endpoint_name or "" for d in report.devices) == ["lot-000001", "lot-000002", "lot-000003"]
    assert report.ok


def test_pattern_skips_identities_given_in_the_batch_or_used_before(
    fcu_home: Path, farm_factory: Callable[..., DeviceFarm], tmp_path: Path
) -> None:
    """Allocation never hands out an endpoint name or serial number given explicitly, in this
    batch or an earlier one, so no device is provisioned only to be refused as a duplicate."""
    farm = farm_factory(4)
    (h, p0), (_, p1), (_, p2), (_, p3) = farm.addresses()
    pattern = IdentityPattern("{prefix}-{seq:06d}", "SN{seq:08d}", prefix="lot")
    with Registry.open(tmp_path / "r.sqlite", station_id="s") as registry:
        first = tmp_path / "a.csv"
        first.write_text(f"address,endpoint_name,serial_number\n{h}:{p0},lot-000001,SN-A\n")
        assert Batch.open(tmp_path / "a", registry, first, _options(fcu_home)).run().ok
        second = tmp_path / "b.csv"
        second.write_text(
            f"address,endpoint_name,serial_number\n{h}:{p1},,\n{h}:{p2},lot-x,SN00000002\n{h}:{p3},,\n"
        )
        report = Batch.open(tmp_path / "b", registry, second, _options(fcu_home, pattern=pattern)).run()
    assert report.ok, report.devices
    assert [(d.endpoint_name, d.serial_number) for d in report.devices] == [
        ("lot-000003", "SN00000003"),
        ("lot-x", "SN00000002"),
        ("lot-000004", "SN00000004"),
    ]


def test_serial_pattern_without_prefix_stops_a_new_line_up_front(
    fcu_home: Path, farm_factory: Callable[..., DeviceFarm], devices_csv: Callable[..., Path], tmp_path: Path
) -> None:
    """A second line reusing 'SN{seq:08d}' with a new prefix stops with 4003 before any row fails;
    rerun with {prefix} in the serial pattern, the same batch directory provisions every device."""
    farm = farm_factory(2)
    csv_path = devices_csv(tmp_path / "devices.csv", farm.addresses(), identities=False)
    line1 = IdentityPattern("{prefix}-{seq:06d}", "SN{seq:08d}", prefix="line1")
    line2 = IdentityPattern("{prefix}-{seq:06d}", "SN{seq:08d}", prefix="line2")
    with Registry.open(tmp_path / "r.sqlite", station_id="s") as registry:
        registry.allocate(line1, 20)
        with pytest.raises(PatternConflictError, match=re.escape("serial pattern 'SN{seq:08d}'")):
            Batch.open(tmp_path / "out", registry, csv_path, _options(fcu_home, pattern=line2)).run()
        assert registry.find() == []  # nothing recorded, no row dead-ended with 4002
        fixed = IdentityPattern("{prefix}-{seq:06d}", "{prefix}-SN{seq:08d}", prefix="line2")
        report = Batch.open(tmp_path / "out", registry, csv_path, _options(fcu_home, pattern=fixed)).run()
    assert report.ok and sorted(d.serial_number or "" for d in report.devices) == [
        "line2-SN00000001",
        "line2-SN00000002",
    ]


def test_rows_without_identity_and_no_pattern_fail_clearly(
    fcu_home: Path, farm_factory: Callable[..., DeviceFarm], devices_csv: Callable[..., Path], tmp_path: Path
) -> None:
    """Without a pattern or pool, rows lacking identities are reported and nothing is sent."""
    farm = farm_factory(2)
    csv_path = devices_csv(tmp_path / "devices.csv", farm.addresses(), identities=False)
    with Registry.open(tmp_path / "r.sqlite", station_id="s") as registry:
        report = Batch.open(tmp_path / "out", registry, csv_path, _options(fcu_home)).run()
    assert report.counts() == {"failed": 2}
    assert all("no identity pattern" in d.reason for d in report.devices)
    assert farm.messages_served == 0


def _closed_port() -> int:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


def test_bad_devices_fail_individually_and_the_rest_succeed(
    fcu_home: Path, farm_factory: Callable[..., DeviceFarm], tmp_path: Path
) -> None:
    """Bad rows, unreachable, garbage and error-answering devices are reported; others provision."""
    from provkit.line.farm import fcc_device

    error_body = encode_response(BundleResponse(25, "Item does not exist:mbed.EndpointName\n"))

    def factory(index: int) -> Callable[[bytes, bool], bytes | None]:
        if index == 1:
            return lambda message, first: b"\xa1\x63abc"  # valid CBOR, not a response
        if index == 2:
            return lambda message, first: error_body
        return fcc_device(":memory:")

    farm = farm_factory(4, factory)
    rows = [f"{h}:{p},ep-{n},sn-{n}" for n, (h, p) in enumerate(farm.addresses())]
    rows += [f"127.0.0.1:{_closed_port()},ep-unreachable,sn-unreachable", "nonsense,ep-x,sn-x", rows[0]]
    csv_path = tmp_path / "devices.csv"
    csv_path.write_text("address,endpoint_name,serial_number\n" + "\n".join(rows) + "\n")
    with Registry.open(tmp_path / "r.sqlite", station_id="s") as registry:
        report = Batch.open(tmp_path / "out", registry, csv_path, _options(fcu_home)).run()
        provisioned = {a.endpoint_name for a in registry.find(provisioned_only=True)}
    by_endpoint = {d.endpoint_name: d for d in report.devices}
    assert provisioned == {"ep-0", "ep-3"}
    assert by_endpoint["ep-1"].status == "failed" and "garbage" in by_endpoint["ep-1"].reason
    refused = by_endpoint["ep-2"]
    assert refused.status == "failed" and refused.code == int(FtErrorCode.DEVICE_EXECUTION_FAILED)
    expected = "Execution failed on device with error #25: Item does not exist:mbed.EndpointName"
    assert refused.reason == expected
    assert refused.return_status == 25
    unreachable = by_endpoint["ep-unreachable"]
    assert unreachable.status == "failed" and unreachable.code == int(FtErrorCode.TCP_CONNECT_FAILED)
    rejected = [d for d in report.devices if d.status == "rejected"]
    assert len(rejected) == 2 and any("duplicate address" in d.reason for d in rejected)
    assert not report.ok


def test_already_provisioned_identity_is_refused_unless_reprovision(
    fcu_home: Path, farm_factory: Callable[..., DeviceFarm], devices_csv: Callable[..., Path], tmp_path: Path
) -> None:
    """A second batch for provisioned identities is refused; --reprovision supersedes."""
    farm = farm_factory(2)
    registry_path = tmp_path / "r.sqlite"
    with Registry.open(registry_path, station_id="s") as registry:
        first = Batch.open(
            tmp_path / "a", registry, devices_csv(tmp_path / "a.csv", farm.addresses()), _options(fcu_home)
        ).run()
        assert first.ok
        second = Batch.open(
            tmp_path / "b", registry, devices_csv(tmp_path / "b.csv", farm.addresses()), _options(fcu_home)
        ).run()
        assert second.counts() == {"failed": 2}
        assert all(d.code == 4001 and "--reprovision" in d.reason for d in second.devices)
        served = farm.messages_served
        third = Batch.open(
            tmp_path / "c",
            registry,
            devices_csv(tmp_path / "c.csv", farm.addresses()),
            _options(fcu_home, reprovision=True),
        ).run()
        assert third.ok and farm.messages_served == served + 2
        stats = registry.stats()
    assert stats.provisioned == 2
    assert stats.by_state["superseded"] == 2


def test_prepared_bundle_is_not_sent_once_another_batch_provisioned_its_identity(
    fcu_home: Path, farm_factory: Callable[..., DeviceFarm], devices_csv: Callable[..., Path], tmp_path: Path
) -> None:
    """Prepared now, injected later: if the identity was provisioned meanwhile (another
    batch or station), inject refuses it with 4001 before sending anything."""
    farm = farm_factory(2)
    with Registry.open(tmp_path / "r.sqlite", station_id="s") as registry:
        early = devices_csv(tmp_path / "a.csv", farm.addresses())
        assert Batch.open(tmp_path / "a", registry, early, _options(fcu_home)).prepare().ok
        other = devices_csv(tmp_path / "b.csv", farm.addresses()[:1])
        assert Batch.open(tmp_path / "b", registry, other, _options(fcu_home)).run().ok
        served = farm.messages_served
        report = Batch.open(tmp_path / "a", registry, None, _options(fcu_home)).inject()
        assert farm.messages_served == served + 1  # only the device whose identity is free
    by_endpoint = {d.endpoint_name: d for d in report.devices}
    assert by_endpoint["ep-0000"].status == "failed" and by_endpoint["ep-0000"].code == 4001
    assert by_endpoint["ep-0001"].status == "injected"


def test_rerun_of_finished_batch_sends_nothing(
    fcu_home: Path, farm_factory: Callable[..., DeviceFarm], devices_csv: Callable[..., Path], tmp_path: Path
) -> None:
    """Running a completed batch again re-sends nothing and keeps every record."""
    farm = farm_factory(3)
    csv_path = devices_csv(tmp_path / "devices.csv", farm.addresses())
    with Registry.open(tmp_path / "r.sqlite", station_id="s") as registry:
        Batch.open(tmp_path / "out", registry, csv_path, _options(fcu_home)).run()
        again = Batch.open(tmp_path / "out", registry, csv_path, _options(fcu_home)).run()
        assert again.ok and farm.messages_served == 3
        assert registry.stats().attempts == 3


def test_changed_devices_file_is_refused_for_existing_batch(
    fcu_home: Path, devices_csv: Callable[..., Path], tmp_path: Path
) -> None:
    """Reusing a batch directory with a different device list is a BatchError."""
    from provkit.errors import BatchError

    with Registry.open(tmp_path / "r.sqlite", station_id="s") as registry:
        Batch.open(
            tmp_path / "out",
            registry,
            devices_csv(tmp_path / "a.csv", [("127.0.0.1", 1)]),
            _options(fcu_home),
        )
        with pytest.raises(BatchError, match="different devices file"):
            Batch.open(
                tmp_path / "out",
                registry,
                devices_csv(tmp_path / "b.csv", [("127.0.0.1", 2)]),
                _options(fcu_home),
            )
        with pytest.raises(BatchError, match="holds no batch"):
            Batch.open(tmp_path / "empty", registry, None, _options(fcu_home))


def test_the_report_is_written_device_by_device_as_one_json_document(tmp_path: Path) -> None:
    """The streamed report is byte for byte ``json.dumps(to_json(), indent=2)``, with or without devices."""
    import json
    from dataclasses import asdict
    from datetime import UTC, datetime

    from provkit.line.outcome import BatchReport, DeviceOutcome

    started = datetime(2026, 12, 3, tzinfo=UTC)
    devices = [
        DeviceOutcome("2", 2, "127.0.0.1:1", "ep-1", "sn-1", "provisioned", warnings=["Item not set:x"]),
        DeviceOutcome("3", 3, "127.0.0.1:2", None, None, "failed", code=1021, reason='quote " and \\n'),
    ]
    for listed in (devices, []):
        report = BatchReport("b1", "run", listed, started, finished_at=started)
        path = tmp_path / "report.json"
        report.write(path)
        assert path.read_text() == json.dumps(report.to_json(), indent=2)
        assert json.loads(path.read_text())["devices"] == [asdict(d) for d in listed]
