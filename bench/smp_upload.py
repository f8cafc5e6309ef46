"""Upload time of a 2.6 KB certificate-mode blob over SMP on a serial line paced at 115200 baud.

Each device's line is real: the virtual board serves one pty pair, the factory tool opens
another, and a pacer forwards the bytes between the two masters no faster than the baud
rate allows (10 bits per byte: 8N1), in both directions. The link's limit for a transfer
is ``bytes × 10 / baud``; it is printed for the blob's bytes and for the bytes the upload
put on the line (SMP headers, CBOR, base64 and line framing included), next to the time
measured, for 1 device and for N at once (each on its own line, as on a production line
with one USB cable per board). Each device's line and board run in a process of their own,
standing in for the hardware; the factory tool's links share the measuring process.

Targets: per device, the upload reaches ≥ 0.8 of the line's limit (its wire bytes); N=16
devices at once move ≥ 12× the data of one in the same time.

Run: .venv/bin/python bench/smp_upload.py [--baud 115200] [--devices 16] [--rounds 3]
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import os
import resource
import selectors
import statistics
import threading
import time
import tty
from collections.abc import Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path

from provkit.device.kcm import Kcm
from provkit.device.smp import AnjayProvisioningImage
from provkit.device.storage import MemoryStorage
from provkit.factory.lwm2m import FactoryProvisioning
from provkit.transport.smp_link import SmpLink, SmpSettings
from provkit.transport.smp_server import SmpSerialServer
from provkit.wire.smp import PROVISION_PATH, RESULT_PATH

CONFIG = {
    "Security": {
        1: {
            "ServerURI": "coaps://dm.example.com:5684",
            "Bootstrap": False,
            "Mode": "cert",
            "ShortServerID": 1,
            "SNI": "dm.example.com",
        }
    },
    "Server": {1: {"ShortServerID": 1, "Lifetime": 86400, "NotificationStoring": False, "Binding": "U"}},
}
SLICE = 16
"""Bytes the pacer hands over at once (1.4 ms at 115200 baud)."""


@dataclass
class _Direction:
    source: int
    sink: int
    pending: bytearray = field(default_factory=bytearray)
    free_at: float = 0.0
    carried: int = 0


class PacedLine:
    """Two pty pairs joined by a pacer: what one end writes reaches the other at the baud rate."""

    def __init__(self, baud: int) -> None:
        self.byte_s = 10.0 / baud
        m_dev, s_dev = os.openpty()
        m_host, s_host = os.openpty()
        for fd in (s_dev, s_host):
            tty.setraw(fd)
        self._fds = (m_dev, s_dev, m_host, s_host)
        self.device_path, self.host_path = os.ttyname(s_dev), os.ttyname(s_host)
        self.to_device = _Direction(m_host, m_dev)
        self.to_host = _Direction(m_dev, m_host)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        directions = {self.to_device.source: self.to_device, self.to_host.source: self.to_host}
        with selectors.DefaultSelector() as selector:
            for fd in directions:
                selector.register(fd, selectors.EVENT_READ)
            while not self._stop.is_set():
                now = time.perf_counter()
                waits = [d.free_at - now for d in directions.values() if d.pending]
                timeout = 0.05 if not waits else max(0.0, min(waits))
                for key, _ in selector.select(timeout):
                    with contextlib.suppress(OSError):
                        directions[key.fd].pending += os.read(key.fd, 65536)  # type: ignore[index]
                now = time.perf_counter()
                for d in directions.values():
                    if d.pending and now >= d.free_at:
                        piece = bytes(d.pending[:SLICE])
                        del d.pending[:SLICE]
                        with contextlib.suppress(OSError):
                            os.write(d.sink, piece)
                        d.carried += len(piece)
                        # The line is busy for the bytes' time; an idle line starts now, not in the past.
                        d.free_at = max(d.free_at, now - self.byte_s * SLICE) + len(piece) * self.byte_s

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        for fd in self._fds:
            with contextlib.suppress(OSError):
                os.close(fd)


def board_process(baud: int, conn: Connection) -> None:
    """The simulated hardware of one device, in its own process: a paced line and the board.

    Sends the factory end's path, then answers ``"carried"`` with the bytes the line took
    towards the board so far, until ``"stop"``.
    """
    line = PacedLine(baud)
    board = AnjayProvisioningImage(Kcm(MemoryStorage()), endpoint_name="bench")
    try:
        with SmpSerialServer(board.handle, line.device_path, baud_rate=baud):
            conn.send(line.host_path)
            while (command := conn.recv()) != "stop":
                conn.send(line.to_device.carried if command == "carried" else None)
    finally:
        line.close()


@contextlib.contextmanager
def paced_boards(baud: int, count: int) -> Iterator[list[tuple[str, Connection]]]:
    """``count`` devices, each in a process of its own (the factory tool's process stays alone)."""
    context = multiprocessing.get_context("spawn")
    pipes = [context.Pipe() for _ in range(count)]
    processes = [context.Process(target=board_process, args=(baud, child), daemon=True) for _, child in pipes]
    for process in processes:
        process.start()
    try:
        yield [(parent.recv(), parent) for parent, _ in pipes]
    finally:
        for parent, _ in pipes:
            with contextlib.suppress(OSError):
                parent.send("stop")
        for process in processes:
            process.join(10)


def certificate_blob(endpoint: str) -> bytes:
    """A certificate-mode blob of about 2.6 KB: RSA-2048 key and certificate, P-256 server certificate."""
    server = FactoryProvisioning(CONFIG, "server", None, None, None, allow_unverified_server=True)
    info = {
        "RSAKeyLen": 2048,
        "countryName": "PL",
        "stateOrProvinceName": "Malopolska",
        "localityName": "Cracow",
        "organizationName": "provkit factory bench",
        "organizationUnitName": "Factory line",
    }
    fp = FactoryProvisioning(CONFIG, endpoint, None, None, info)
    fp.set_server_cert(server.generate_self_signed_cert().cert_der)
    fp.generate_self_signed_cert()
    return fp.build_blob()


@dataclass
class Upload:
    seconds: float
    wire_bytes: int


def upload_once(
    baud: int, blob: bytes, port: str, control: Connection, start: threading.Barrier | None = None
) -> Upload:
    """Open the device's line, upload the blob (timed), check the result."""
    with SmpLink.serial(port, baud_rate=baud, settings=SmpSettings(timeout_s=10.0)) as link:
        if start is not None:
            start.wait()
        control.send("carried")
        before = control.recv()
        began = time.perf_counter()
        link.upload(PROVISION_PATH, blob)
        took = time.perf_counter() - began
        control.send("carried")
        wire = control.recv() - before
        if link.download(RESULT_PATH) != b"0":
            raise SystemExit("the board refused the blob")
    return Upload(took, wire)


def bare_line(baud: int, size: int) -> float:
    """Time to push ``size`` bytes through the pacer alone (its own fidelity)."""
    line = PacedLine(baud)
    try:
        host_end, device_end = Path(line.host_path), Path(line.device_path)
        with host_end.open("wb", buffering=0) as host, device_end.open("rb", buffering=0) as dev:
            began = time.perf_counter()
            host.write(b"x" * size)
            got = 0
            while got < size:
                got += len(dev.read(size - got))
            return time.perf_counter() - began
    finally:
        line.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--baud", type=int, default=115200)
    parser.add_argument("--devices", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    baud = args.baud
    blob = certificate_blob("anjay-zephyr-demo-bench")
    limit_blob = len(blob) * 10 / baud
    print(f"blob: {len(blob)} bytes (certificate mode); line: {baud} baud, 8N1")

    bare = bare_line(baud, 4096)
    print(f"pacer alone: 4096 bytes in {bare:.3f} s, limit {4096 * 10 / baud:.3f} s "
          f"(ratio {4096 * 10 / baud / bare:.2f})")  # fmt: skip

    singles = []
    for _ in range(args.rounds):
        with paced_boards(baud, 1) as [(port, control)]:
            singles.append(upload_once(baud, blob, port, control))
    one = min(singles, key=lambda u: u.seconds)
    limit_wire = one.wire_bytes * 10 / baud
    median = statistics.median(u.seconds for u in singles)
    print(
        f"1 device: upload {one.seconds:.3f} s (median {median:.3f}); line limit {limit_wire:.3f} s "
        f"for the {one.wire_bytes} bytes sent -> {limit_wire / one.seconds:.2f} of the limit "
        f"(target >= 0.80); blob-bytes limit {limit_blob:.3f} s -> {limit_blob / one.seconds:.2f}"
    )

    n = args.devices
    cpu_before = _cpu_s()
    rounds = [concurrent_round(baud, blob, n) for _ in range(args.rounds)]
    cpu_per_upload = (_cpu_s() - cpu_before) / (n * args.rounds)
    best = min(rounds, key=lambda r: max(u.seconds for u in r))
    slowest = max(u.seconds for u in best)
    per_device = statistics.median(u.seconds for u in best)
    together = (n * len(blob) / slowest) / (len(blob) / one.seconds)
    spread = ", ".join(f"{max(u.seconds for u in r):.3f}" for r in rounds)
    print(
        f"{n} devices at once (best of {args.rounds}; slowest per round {spread} s): slowest upload "
        f"{slowest:.3f} s, median {per_device:.3f} s ({limit_wire / per_device:.2f} of the line limit "
        f"each); together {together:.1f}x one device's data in the same time (target >= 12x); "
        f"factory-side CPU {cpu_per_upload * 1000:.0f} ms per device (open, upload, result)"
    )


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def concurrent_round(baud: int, blob: bytes, n: int) -> list[Upload]:
    """``n`` devices, each on its own paced line, uploading at the same moment."""
    results: list[Upload] = []
    errors: list[BaseException] = []
    start = threading.Barrier(n)

    def run(port: str, control: Connection) -> None:
        try:
            results.append(upload_once(baud, blob, port, control, start))
        except BaseException as exc:  # reported below
            errors.append(exc)

    with paced_boards(baud, n) as boards:
        threads = [threading.Thread(target=run, args=board) for board in boards]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    if errors:
        raise SystemExit(f"{len(errors)} of {n} devices failed: {errors[0]!r}")
    return results


if __name__ == "__main__":
    main()
