"""The issue's bad-input list at batch level: each case is reported per device, the rest go on.

Covered elsewhere: bad CSV rows, unreachable devices, devices answering errors or
non-response CBOR (test_batch.py), a SQLite registry vanishing mid-batch (test_farm.py).
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import psycopg
import pytest

from provkit.codes import FtcdCommStatus, FtErrorCode
from provkit.line.batch import Batch, BatchOptions
from provkit.line.farm import DeviceFarm, SessionHandler, fcc_device
from provkit.registry import AttemptState, Registry
from provkit.transport.link import LINE_LINK_SETTINGS
from provkit.wire.framing import Frame, RequestReader, encode_response
from support import pg

pytestmark = pytest.mark.integration


def _options(home: Path, concurrency: int = 4) -> BatchOptions:
    settings = replace(LINE_LINK_SETTINGS, timeout_s=2, connect_timeout_s=2, retries=0, retry_delay_s=0.01)
    return BatchOptions(home_dir=home, workers=1, concurrency=concurrency, inject=settings)


class RawDevice:
    """A TCP peer that misbehaves below the frame level: ``reply`` decides what it sends."""

    def __init__(self, reply: Callable[[socket.socket], None]) -> None:
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        self._reply = reply
        self.connections = 0
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            self.connections += 1
            with conn, contextlib.suppress(OSError):
                self.handle(conn)

    def handle(self, conn: socket.socket) -> None:
        """Serve one connection: read the bundle's first bytes, then ``reply``."""
        conn.recv(65536)
        self._reply(conn)

    def close(self) -> None:
        self._server.close()


@pytest.fixture
def raw_device() -> Iterator[Callable[[Callable[[socket.socket], None]], RawDevice]]:
    devices: list[RawDevice] = []

    def start(reply: Callable[[socket.socket], None]) -> RawDevice:
        devices.append(RawDevice(reply))
        return devices[-1]

    yield start
    for device in devices:
        device.close()


class FlakyDevice(RawDevice):
    """Hangs up on its first ``failures`` connections (bundle read, no answer), then answers
    as a real FCC device: a transport failure that a new connection cures."""

    def __init__(self, failures: int) -> None:
        self._failures = failures
        self._device = fcc_device(":memory:")
        super().__init__(lambda conn: None)

    def handle(self, conn: socket.socket) -> None:
        """Read one request frame; hang up or answer it."""
        hang_up = self.connections <= self._failures
        reader = RequestReader()
        event = None
        while event is None:
            data = conn.recv(65536)
            if not data:
                return
            reader.feed(data)
            event = reader.next_event()
        if hang_up or not isinstance(event, Frame):
            return
        body = self._device(event.message, True)
        conn.sendall(encode_response(FtcdCommStatus.SUCCESS, body, token=event.token))


def test_transport_failures_are_retried_and_tries_recorded(
    fcu_home: Path, farm_factory: Callable[..., DeviceFarm], tmp_path: Path
) -> None:
    """A dropped connection is retried on a new one (--retries), the tries used are recorded;
    a device that answers a failure status is not retried."""
    once, always = FlakyDevice(failures=1), FlakyDevice(failures=99)
    farm = farm_factory(1, lambda index: lambda message, first: None)  # answers status 9
    ((h, p),) = farm.addresses()
    rows = [
        f"127.0.0.1:{once.port},ep-once,sn-once",
        f"127.0.0.1:{always.port},ep-always,sn-always",
        f"{h}:{p},ep-status,sn-status",
    ]
    options = replace(
        _options(fcu_home),
        inject=replace(LINE_LINK_SETTINGS, timeout_s=5, connect_timeout_s=2, retries=2, retry_delay_s=0.01),
    )
    try:
        with Registry.open(tmp_path / "r.sqlite", station_id="s") as registry:
            report = Batch.open(tmp_path / "out", registry, _write(tmp_path / "d.csv", rows), options).run()
            recorded = {a.endpoint_name: a for a in registry.find()}
    finally:
        once.close()
        always.close()
    by_endpoint = {d.endpoint_name: d for d in report.devices}
    assert by_endpoint["ep-once"].status == "provisioned" and by_endpoint["ep-once"].tries == 2
    assert once.connections == 2 and recorded["ep-once"].tries == 2
    failed = by_endpoint["ep-always"]
    assert failed.status == "failed" and failed.code == int(FtErrorCode.TCP_RECEIVE_FAILED)
    assert always.connections == 3 and recorded["ep-always"].tries == 3
    refused = by_endpoint["ep-status"]
    assert refused.status == "failed" and refused.code == int(FtErrorCode.DEVICE_COMMUNICATION)
    assert farm.messages_served == 1 and recorded["ep-status"].tries == 1


def test_concurrency_devices_are_in_flight_at_once(
    fcu_home: Path, raw_device: Callable[[Callable[[socket.socket], None]], RawDevice], tmp_path: Path
) -> None:
    """With --concurrency 4, four devices hold their bundle at the same moment: each waits
    on a barrier that only four simultaneous exchanges can pass."""
    # The devices give up on the barrier well before the tool gives up on them, so devices
    # served one after the other could never pass it together.
    barrier = threading.Barrier(4, timeout=10)
    met: list[bool] = []

    def wait_for_the_others(conn: socket.socket) -> None:
        try:
            barrier.wait()
            met.append(True)
        except threading.BrokenBarrierError:
            met.append(False)

    devices = [raw_device(wait_for_the_others) for _ in range(4)]
    rows = [f"127.0.0.1:{d.port},ep-{n},sn-{n}" for n, d in enumerate(devices)]
    options = replace(
        _options(fcu_home, concurrency=4), inject=replace(LINE_LINK_SETTINGS, timeout_s=60, retries=0)
    )
    with Registry.open(tmp_path / "r.sqlite", station_id="s") as registry:
        report = Batch.open(tmp_path / "out", registry, _write(tmp_path / "d.csv", rows), options).run()
    assert met == [True] * 4
    assert report.counts() == {"failed": 4}  # they hang up after the barrier: reported, not hidden


def _write(path: Path, rows: list[str]) -> Path:
    path.write_text("address,endpoint_name,serial_number\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def test_duplicate_identities_in_input_are_rejected_and_never_sent(
    fcu_home: Path, farm_factory: Callable[..., DeviceFarm], tmp_path: Path
) -> None:
    """A second row with an endpoint name or serial number already in the file is rejected."""
    farm = farm_factory(4)
    (h, p0), (_, p1), (_, p2), (_, p3) = farm.addresses()
    rows = [f"{h}:{p0},ep-a,sn-a", f"{h}:{p1},ep-a,sn-b", f"{h}:{p2},ep-c,sn-a", f"{h}:{p3},ep-d,sn-d"]
    with Registry.open(tmp_path / "r.sqlite", station_id="s") as registry:
        report = Batch.open(
            tmp_path / "out", registry, _write(tmp_path / "d.csv", rows), _options(fcu_home)
        ).run()
        provisioned = sorted(a.endpoint_name for a in registry.find(provisioned_only=True))
    assert provisioned == ["ep-a", "ep-d"]
    rejected = sorted((d.line, d.reason) for d in report.devices if d.status == "rejected")
    assert len(rejected) == 2
    assert "duplicate endpoint name ep-a" in rejected[0][1] and "(line 2)" in rejected[0][1]
    assert "duplicate serial number sn-a" in rejected[1][1]
    assert farm.messages_served == 2  # the rejected rows' devices were never contacted
    assert not report.ok


def test_devices_answering_garbage_closing_or_silent_fail_alone(
    fcu_home: Path,
    farm_factory: Callable[..., DeviceFarm],
    raw_device: Callable[[Callable[[socket.socket], None]], RawDevice],
    tmp_path: Path,
) -> None:
    """Non-frame bytes, a dropped connection and silence each fail their device with a reason."""
    garbage = raw_device(lambda conn: conn.sendall(b"\x00HTTP/1.1 400 Bad Request\r\n\r\n" * 4))
    hangup = raw_device(lambda conn: None)  # reads the bundle, closes without a word
    silent_stop = threading.Event()
    silent = raw_device(lambda conn: silent_stop.wait(10))
    farm = farm_factory(2)
    (h, p0), (_, p1) = farm.addresses()
    rows = [
        f"{h}:{p0},ep-ok-0,sn-ok-0",
        f"127.0.0.1:{garbage.port},ep-garbage,sn-garbage",
        f"127.0.0.1:{hangup.port},ep-hangup,sn-hangup",
        f"127.0.0.1:{silent.port},ep-silent,sn-silent",
        f"{h}:{p1},ep-ok-1,sn-ok-1",
    ]
    try:
        with Registry.open(tmp_path / "r.sqlite", station_id="s") as registry:
            report = Batch.open(
                tmp_path / "out", registry, _write(tmp_path / "d.csv", rows), _options(fcu_home)
            ).run()
            provisioned = sorted(a.endpoint_name for a in registry.find(provisioned_only=True))
            failed = {a.endpoint_name: a for a in registry.find(state=AttemptState.FAILED)}
    finally:
        silent_stop.set()
    assert provisioned == ["ep-ok-0", "ep-ok-1"]
    by_endpoint = {d.endpoint_name: d for d in report.devices}
    for name in ("ep-garbage", "ep-hangup", "ep-silent"):
        outcome = by_endpoint[name]
        assert outcome.status == "failed" and outcome.code is not None and outcome.reason, outcome
        assert failed[name].error_message and failed[name].error_code == outcome.code
    # No frame token ever came: the factory tool's token timeout, as ft_demo reports it.
    assert by_endpoint["ep-silent"].code == int(FtErrorCode.TOKEN_TIMEOUT)
    assert by_endpoint["ep-garbage"].code == int(FtErrorCode.TCP_RECEIVE_FAILED)  # noise, then closed
    assert by_endpoint["ep-hangup"].code == int(FtErrorCode.TCP_RECEIVE_FAILED)
    assert garbage.connections == hangup.connections == silent.connections == 1


def _schema_of(url: str) -> tuple[str, str]:
    """The libpq URL and the schema of a :func:`support.pg.fresh_schema` URL."""
    parts = urlsplit(url)
    option = unquote(parse_qs(parts.query)["options"][0])
    schema = option.split("search_path=", 1)[1]
    return f"postgresql://{parts.netloc}{parts.path}", schema


@pytest.mark.postgres
def test_postgres_registry_vanishing_mid_batch_records_nothing_false_and_resumes(
    fcu_home: Path, farm_factory: Callable[..., DeviceFarm], tmp_path: Path
) -> None:
    """The registry's schema disappears while a device answers: later devices are not sent,
    each is reported with the reason; once it is back, resuming provisions every device once.
    """
    with pg.fresh_schema() as url:
        libpq, schema = _schema_of(url)

        def rename(old: str, new: str) -> None:
            with psycopg.connect(libpq, autocommit=True) as conn:
                conn.execute(f'ALTER SCHEMA "{old}" RENAME TO "{new}"')

        gone = threading.Event()

        def factory(index: int) -> SessionHandler:
            device = fcc_device(":memory:")
            if index != 2:
                return device

            def vanish(message: bytes, first: bool) -> bytes | None:
                if not gone.is_set():
                    gone.set()
                    rename(schema, f"{schema}_away")
                return device(message, first)

            return vanish

        farm = farm_factory(5, factory)
        rows = [f"{h}:{p},ep-{n},sn-{n}" for n, (h, p) in enumerate(farm.addresses())]
        csv_path = _write(tmp_path / "d.csv", rows)
        with Registry.open(url, station_id="s") as registry:
            report = Batch.open(tmp_path / "out", registry, csv_path, _options(fcu_home, concurrency=1)).run()
        try:
            statuses = [d.status for d in report.devices]
            assert "provisioned" not in statuses[2:]
            assert all("registry unavailable" in (d.reason or "") for d in report.devices[2:])
            assert farm.messages_served == 3  # nothing was sent once the mark could not be written
        finally:
            rename(f"{schema}_away", schema)
        with Registry.open(url, station_id="s") as registry:
            resumed = Batch.open(tmp_path / "out", registry, None, _options(fcu_home)).run()
            verified = sorted(a.endpoint_name for a in registry.find(provisioned_only=True))
        assert resumed.ok
        assert verified == [f"ep-{n}" for n in range(5)]
