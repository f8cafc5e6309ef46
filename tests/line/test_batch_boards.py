"""Batches with Zephyr boards (smp-serial:/smp-udp: rows) next to FCC device agents (TCP)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner

from provkit.line.batch import Batch, BatchOptions
from provkit.line.boards import KEY_MODE, BoardOptions
from provkit.line.devices import parse_devices
from provkit.line.farm import DeviceFarm
from provkit.line.smp_farm import SmpDeviceFarm
from provkit.registry import AttemptState, Registry
from provkit.transport.link import LINE_LINK_SETTINGS
from provkit.transport.smp_link import SmpSettings
from provkit.transport.spec import SmpSerialTarget, SmpUdpTarget

pytestmark = pytest.mark.integration

SAMPLE = Path(__file__).resolve().parents[1] / "vectors" / "lwm2m" / "sample_psk.yaml"
CERT_YAML = """\
Security:
  1: {ServerURI: "coaps://dm.example.com:5684", Bootstrap: false, Mode: cert, ShortServerID: 1}
Server:
  1: {ShortServerID: 1, Lifetime: 86400, NotificationStoring: false, Binding: U}
"""


def _options(home: Path, boards: BoardOptions | None) -> BatchOptions:
    settings = replace(LINE_LINK_SETTINGS, timeout_s=10, connect_timeout_s=2, retries=0, retry_delay_s=0.01)
    return BatchOptions(home_dir=home, workers=1, concurrency=4, inject=settings, boards=boards)


def _csv(path: Path, tcp: list[tuple[str, int]], boards: list[str]) -> Path:
    lines = ["address,endpoint_name,serial_number"]
    lines += [f"{host}:{port},ep-{n},sn-{n}" for n, (host, port) in enumerate(tcp)]
    lines += [f"{address},," for address in boards]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_devices_csv_takes_smp_boards():
    parsed = parse_devices(
        "address,endpoint_name,serial_number,device_keys_location\n"
        "10.0.0.1:7777,e1,s1,\n"
        "smp-serial:/dev/ttyACM0@230400,,,\n"
        "smp-udp:10.0.0.9,board-9,,\n"
        "smp-udp:10.0.0.9:1337,,,\n"
        "smp-udp:,,,\n"
        "smp-serial:/dev/ttyACM1,,,keys/\n"
        "smp-serial:/dev/ttyACM2,,sn-only,\n"
    )
    assert [row.address for row in parsed.rows] == ["10.0.0.1:7777"]
    assert [b.target for b in parsed.boards] == [
        SmpSerialTarget("/dev/ttyACM0", 230400),
        SmpUdpTarget("10.0.0.9", 1337),
    ]
    assert parsed.boards[1].endpoint_name == "board-9"
    reasons = [p.reason for p in parsed.problems]
    assert "duplicate address smp-udp:10.0.0.9:1337 (line 4)" in reasons[0]
    assert "has no host" in reasons[1]
    assert "device_keys_location does not apply" in reasons[2]
    assert "needs its endpoint_name too" in reasons[3]


def test_run_provisions_boards_next_to_tcp_devices(
    fcu_home: Path, farm_factory: Callable[..., DeviceFarm], tmp_path: Path
) -> None:
    """Two TCP agents (FCC bundles), two boards on UDP and one on a pty: all provisioned and recorded
    with the endpoint each board named; certificates carry it as CN."""
    from cryptography import x509

    from provkit.device.lwm2m import Lwm2mAcceptor
    from provkit.factory.lwm2m import FactoryProvisioning

    cfg = tmp_path / "cert.yaml"
    cfg.write_text(CERT_YAML)
    server = FactoryProvisioning(cfg, "srv", None, None, None, allow_unverified_server=True)
    (tmp_path / "server.der").write_bytes(server.generate_self_signed_cert().cert_der)
    (tmp_path / "info.json").write_text(json.dumps({"organizationName": "line"}))
    boards = BoardOptions(
        cfg,
        cert_info=tmp_path / "info.json",
        server_cert=tmp_path / "server.der",
        smp=SmpSettings(timeout_s=2),
    )
    tcp = farm_factory(2)
    with SmpDeviceFarm(2, link="udp") as udp, SmpDeviceFarm(1, link="serial") as serial:
        csv_path = _csv(tmp_path / "devices.csv", tcp.addresses(), [*udp.addresses, *serial.addresses])
        with Registry.open(tmp_path / "registry.sqlite", station_id="st") as registry:
            report = Batch.open(tmp_path / "out", registry, csv_path, _options(fcu_home, boards)).run()
            verified = registry.find(state=AttemptState.VERIFIED)
            again = Batch.open(tmp_path / "out", registry, None, _options(fcu_home, boards)).run()
        names = [board.endpoint_name for board in [*udp.boards, *serial.boards]]
        configs = [Lwm2mAcceptor(b.acceptor.kcm).configuration() for b in [*udp.boards, *serial.boards]]
    assert report.ok and report.counts() == {"provisioned": 5}, report.devices
    on_boards = {a.endpoint_name: a for a in verified if a.key_mode == KEY_MODE}
    assert sorted(on_boards) == sorted(names)  # the registry holds the names the boards gave
    assert all(a.serial_number == a.endpoint_name and a.bundle_sha256 for a in on_boards.values())
    assert {a.address for a in on_boards.values()} == {*udp.addresses, *serial.addresses}
    for name, config in zip(names, configs, strict=True):
        cert = x509.load_der_x509_certificate(next(e.value for e in config if e.path == "/0/1/3"))  # type: ignore[arg-type]
        assert cert.subject.rfc4514_string() == f"CN={name},O=line"
    assert again.ok and again.counts() == {"provisioned": 5}  # nothing is sent twice


def test_board_failures_are_recorded_with_their_codes(
    fcu_home: Path, farm_factory: Callable[..., DeviceFarm], tmp_path: Path
) -> None:
    """No LwM2M configuration: boards fail with 4100; a blob the board refuses: 7005; an unreachable
    port: 7001. The TCP device is provisioned all the same."""
    refused_cfg = tmp_path / "dev.yaml"
    refused_cfg.write_text(SAMPLE.read_text() + "Device:\n  0: {Manufacturer: ACME}\n")
    tcp = farm_factory(1)
    with SmpDeviceFarm(1, link="udp") as udp:
        missing_port = f"smp-serial:{tmp_path / 'ttyGONE'}"
        csv_path = _csv(tmp_path / "devices.csv", tcp.addresses(), [*udp.addresses, missing_port])
        with Registry.open(tmp_path / "registry.sqlite", station_id="st") as registry:
            without = Batch.open(tmp_path / "out", registry, csv_path, _options(fcu_home, None)).run()
            generic = BoardOptions(refused_cfg, target="generic", smp=SmpSettings(timeout_s=2))
            refused = Batch.open(tmp_path / "out", registry, None, _options(fcu_home, generic)).run()
            failed = registry.find(state=AttemptState.FAILED)
    by_address = {d.address: d for d in without.devices}
    assert by_address[udp.addresses[0]].code == 4100 and "LwM2M" in (
        by_address[udp.addresses[0]].reason or ""
    )
    assert by_address[tcp.addresses()[0][0] + f":{tcp.addresses()[0][1]}"].status == "provisioned"
    after = {d.address: d for d in refused.devices}
    assert after[udp.addresses[0]].status == "failed" and after[udp.addresses[0]].code == 7005
    assert after[missing_port].code == 7001 and "ttyGONE" in (after[missing_port].reason or "")
    assert [a.error_code for a in failed if a.key_mode == KEY_MODE] == [7005]


def test_batch_command_with_boards(fcu_home: Path, tmp_path: Path) -> None:
    from provkit.cli.main import cli

    with SmpDeviceFarm(2, link="udp") as udp:
        csv_path = _csv(tmp_path / "devices.csv", [], udp.addresses)
        result = CliRunner().invoke(
            cli,
            ["--home-dir", str(fcu_home), "batch", "run", "--out", str(tmp_path / "out"), "--devices",
             str(csv_path), "--registry", str(tmp_path / "r.sqlite"), "--lwm2m-config", str(SAMPLE),
             "--no-progress"],
        )  # fmt: skip
        names = {board.endpoint_name for board in udp.boards}
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert {d["endpoint_name"] for d in report["devices"]} == names


def test_resume_reads_the_board_result_of_an_interrupted_attempt(
    fcu_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed after the blob went out: on resume the board's result.txt (0) settles that attempt."""
    import provkit.line.boards as line_boards

    class Killed(BaseException):
        """The station dying right after the upload."""

    real = line_boards.deliver_blob

    def upload_then_die(link, blob, endpoint, **kw):  # type: ignore[no-untyped-def]
        link.upload("/factory/provision.cbor", blob)
        raise Killed

    boards = BoardOptions(SAMPLE, smp=SmpSettings(timeout_s=2))
    with SmpDeviceFarm(2, link="udp") as udp:
        csv_path = _csv(tmp_path / "devices.csv", [], udp.addresses)
        with Registry.open(tmp_path / "registry.sqlite", station_id="st") as registry:
            monkeypatch.setattr(line_boards, "deliver_blob", upload_then_die)
            with pytest.raises(Killed):
                Batch.open(tmp_path / "out", registry, csv_path, _options(fcu_home, boards)).run()
            assert len(registry.find(state=AttemptState.SENDING)) == 2
            monkeypatch.setattr(line_boards, "deliver_blob", real)
            resumed = Batch.open(tmp_path / "out", registry, None, _options(fcu_home, boards)).run()
            verified = registry.find(state=AttemptState.VERIFIED)
        results = [board.factory.result for board in udp.boards]
    assert resumed.counts() == {"provisioned": 2} and results == [0, 0]
    assert len(verified) == 2 and all(a.supersedes_id is None for a in verified)  # the same attempts


def test_provisioned_boards_are_registered_with_the_management_server(tmp_path: Path) -> None:
    """Step 5 of the Zephyr flow on the line: each provisioned board is registered (Coiote-style,
    with its PSK); a refused registration leaves the board provisioned, with a warning."""
    from provkit.factory.lwm2m.coiote import ServerInfo
    from support.coiote import coiote_server

    with coiote_server() as coiote, SmpDeviceFarm(2, link="udp") as udp:
        server = ServerInfo.from_mapping(coiote.server_info())
        boards = BoardOptions(SAMPLE, smp=SmpSettings(timeout_s=2), coiote_server=server, coiote_token="tok")
        csv_path = _csv(tmp_path / "devices.csv", [], udp.addresses)
        with Registry.open(tmp_path / "registry.sqlite", station_id="st") as registry:
            report = Batch.open(tmp_path / "out", registry, csv_path, _options(tmp_path, boards)).run()
            names = sorted(board.endpoint_name for board in udp.boards)
            registered = sorted(body["properties"]["endpointName"] for _m, _p, _h, body in coiote.seen)  # type: ignore[index]
            assert report.ok and registered == names
            assert all(headers["Authorization"] == "Bearer tok" for _m, _p, headers, _b in coiote.seen)
            assert all(a.warnings in (None, "") for a in registry.find(state=AttemptState.VERIFIED))

    with coiote_server() as coiote, SmpDeviceFarm(1, link="udp") as udp:
        coiote.status = 409
        server = ServerInfo.from_mapping(coiote.server_info())
        boards = BoardOptions(SAMPLE, smp=SmpSettings(timeout_s=2), coiote_server=server, coiote_token="tok")
        csv_path = _csv(tmp_path / "more.csv", [], udp.addresses)
        with Registry.open(tmp_path / "registry.sqlite", station_id="st") as registry:
            report = Batch.open(tmp_path / "more", registry, csv_path, _options(tmp_path, boards)).run()
            (attempt,) = registry.lookup(udp.boards[0].endpoint_name)
    assert report.counts() == {"provisioned": 1}  # the board holds its blob
    assert attempt.state is AttemptState.VERIFIED
    assert attempt.warnings and "management server registration failed (5003)" in attempt.warnings
    assert "HTTP 409" in attempt.warnings and "provkit lwm2m register" in attempt.warnings


def test_board_registration_needs_a_token(tmp_path: Path) -> None:
    """A management server without its token is refused before anything is sent."""
    from provkit.errors import RegistrationError
    from provkit.factory.lwm2m.coiote import ServerInfo

    server = ServerInfo.from_mapping({"url": "http://127.0.0.1", "port": 1, "domain": "/d/"})
    with pytest.raises(RegistrationError, match="needs its access token"):
        BoardOptions(SAMPLE, coiote_server=server)


def test_batch_command_registers_boards(fcu_home: Path, tmp_path: Path) -> None:
    """batch run --coiote-server FILE, the token from $PROVKIT_COIOTE_TOKEN (not the command line)."""
    from provkit.cli.main import cli
    from support.coiote import coiote_server

    with coiote_server() as coiote, SmpDeviceFarm(1, link="udp") as udp:
        server_file = tmp_path / "coiote.json"
        server_file.write_text(json.dumps(coiote.server_info()))
        csv_path = _csv(tmp_path / "devices.csv", [], udp.addresses)
        args = ["--home-dir", str(fcu_home), "batch", "run", "--out", str(tmp_path / "out"), "--devices",
                str(csv_path), "--registry", str(tmp_path / "r.sqlite"), "--lwm2m-config", str(SAMPLE),
                "--coiote-server", str(server_file), "--no-progress"]  # fmt: skip
        missing = CliRunner().invoke(cli, args, env={"PROVKIT_COIOTE_TOKEN": ""})
        result = CliRunner().invoke(cli, args, env={"PROVKIT_COIOTE_TOKEN": "secret-token"})
        seen = list(coiote.seen)
    assert missing.exit_code != 0 and "needs its access token" in missing.output
    assert result.exit_code == 0, result.output
    assert [headers["Authorization"] for _m, _p, headers, _b in seen] == ["Bearer secret-token"]
    assert "secret-token" not in result.output


def test_boards_sharing_a_psk_are_warned_about(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A PSK configuration gives every board the same key: the batch says so; certificates do not."""
    import logging

    from provkit.line.boards import shares_a_psk

    cert_cfg = tmp_path / "cert.yaml"
    cert_cfg.write_text(CERT_YAML)
    assert shares_a_psk(BoardOptions(SAMPLE)) and not shares_a_psk(BoardOptions(cert_cfg))
    with SmpDeviceFarm(2, link="udp") as udp, caplog.at_level(logging.WARNING, logger="provkit.line.boards"):
        csv_path = _csv(tmp_path / "devices.csv", [], udp.addresses)
        boards = BoardOptions(SAMPLE, smp=SmpSettings(timeout_s=2))
        with Registry.open(tmp_path / "registry.sqlite", station_id="st") as registry:
            report = Batch.open(tmp_path / "out", registry, csv_path, _options(tmp_path, boards)).run()
    assert report.ok
    assert any("same pre-shared key" in record.getMessage() for record in caplog.records)
