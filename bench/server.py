"""provkit server throughput: full DTLS handshakes + LwM2M registrations per second, vs a bare loop.

N concurrent virtual devices each loop: new UDP socket, full DTLS 1.2 handshake, CoAP
Register (``POST /rd?ep=…``), wait for 2.01, close; a new handshake every time (no
session resumption). Two modes, each with the cipher suite RFC 7252 makes mandatory:

* ``certificate`` — TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8 on secp256r1, mutual authentication,
  device certificates (CN = endpoint) signed by a trusted factory CA. The load generator
  is OpenSSL (pyOpenSSL), as in Anjay's default backend, so that the clients cost little
  next to the server's Mbed TLS;
* ``psk`` — TLS-ECDHE-PSK on secp256r1 (what Anjay's OpenSSL client negotiates with Mbed
  TLS), one recorded PSK per device (python-mbedtls clients, secp256r1 first);
* ``psk-plain`` — TLS_PSK_WITH_AES_128_CCM_8 without key exchange: the handshake costs the
  server next to nothing, so this row shows provkit's own per-registration cost.

Against the same load, in the same run:

* ``bare`` — W processes of a minimal python-mbedtls DTLS server: one SO_REUSEPORT socket
  each, cookie exchange, handshake, and a canned 2.01 for the first record; no CoAP
  codec, no policy, no registry;
* ``provkit`` — ``provkit server run --workers W`` on a SQLite registry: CoAP on aiocoap,
  CN/PSK/revocation checks, every registration committed before it is answered.

Prints registrations/s for each and the ratio provkit / bare (target ≥ 0.8, and ≥ 150
certificate-mode registrations/s on a 2-core machine).

With ``--pages``, instead: the line view's page latency on a registry of
``--registry-rows`` devices (default a million), on SQLite and PostgreSQL (see
``line_view.py``; target < 200 ms for the overview and device pages).

With ``--dm-api`` (first), instead: the Device Management API's developer-certificate
creations/s and device-list latency at 100k devices (``dm_api.py``, its options follow).

Usage: python bench/server.py [--seconds 10] [--devices 32] [--workers 2] [--modes certificate,psk]
       python bench/server.py --pages [--registry-rows 1000000] [--requests 50] [--backends sqlite,postgres]
       python bench/server.py --dm-api [--devices 100000] [--certificates 200] [--postgres URL]
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import json
import multiprocessing
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec
from mbedtls import tls
from OpenSSL import SSL, crypto

from provkit.crypto import issue, keys, x509
from provkit.registry import Registry
from provkit.server import dtls, init_home
from provkit.server.coap import Code, Message, Type, decode
from provkit.server.runtime import bind_udp

CERT_SUITE = b"ECDHE-ECDSA-AES128-CCM8:@SECLEVEL=0"  # OpenSSL 3 files 8-byte tags under level 0
PSK_SUITES = {"psk": "TLS-ECDHE-PSK-WITH-CHACHA20-POLY1305-SHA256", "psk-plain": "TLS-PSK-WITH-AES-128-CCM-8"}


# ---------------------------------------------------------------------- the bare server
def _canned_created(request: bytes) -> bytes:
    """A piggybacked 2.01 for a CoAP request, from its header bytes only."""
    tkl = request[0] & 0x0F
    return bytes([0x60 | tkl, 0x41]) + request[2:4] + request[4 : 4 + tkl]


def bare_worker(host: str, port: int, config: dict[str, Any], ready: Any, stop: Any) -> None:
    """A minimal python-mbedtls DTLS server: cookie, handshake, one canned answer per session."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    configuration = dtls.server_configuration(
        config["chain"], config["key"], config["anchors"], config["psk"], handshake_timeout=8.0
    )
    context = tls.ServerContext(configuration)
    sock = bind_udp(host, port, reuse_port=True)
    sock.setblocking(True)
    sock.settimeout(0.2)
    peers: dict[Any, Any] = {}
    doorman = context.wrap_buffers()
    ready.set()

    def flush(buffer: Any, addr: Any) -> None:
        out = buffer.peek_outgoing(65536)
        if out:
            buffer.consume_outgoing(len(out))
            for datagram in dtls.datagrams(out):
                sock.sendto(datagram, addr)

    def drive(buffer: Any, addr: Any) -> None:
        while not dtls.handshake_over(buffer):
            try:
                buffer.do_handshake()
            except tls.WantWriteError:
                flush(buffer, addr)
            except tls.WantReadError:
                flush(buffer, addr)
                return

    while not stop.is_set():
        try:
            data, addr = sock.recvfrom(65536)
        except TimeoutError:
            continue
        buffer = peers.get(addr)
        try:
            if buffer is None:
                if not dtls.is_client_hello(data):
                    continue
                doorman.setcookieparam(f"{addr[0]}:{addr[1]}".encode())
                doorman.receive_from_network(data)
                try:
                    drive(doorman, addr)
                except tls.HelloVerifyRequest:
                    flush(doorman, addr)
                    continue
                peers[addr], doorman = doorman, context.wrap_buffers()
            elif not dtls.handshake_over(buffer):
                buffer.receive_from_network(data)
                drive(buffer, addr)
            else:
                buffer.receive_from_network(data)
                request = buffer.read(4096)
                if request:
                    buffer.write(_canned_created(request))
                    flush(buffer, addr)
                    del peers[addr]
        except Exception:
            peers.pop(addr, None)
            doorman = context.wrap_buffers()


# ---------------------------------------------------------------------- virtual devices
class OpenSslDevice:
    """A certificate-mode device on OpenSSL's DTLS (memory BIOs)."""

    def __init__(self, context: SSL.Context) -> None:
        self.context = context
        self.conn: SSL.Connection | None = None

    def start(self) -> None:
        self.conn = SSL.Connection(self.context, None)
        self.conn.set_connect_state()

    def step(self, incoming: bytes | None) -> bool:
        """Feed a datagram; return whether the handshake is over."""
        assert self.conn is not None
        if incoming:
            self.conn.bio_write(incoming)
        try:
            self.conn.do_handshake()
        except SSL.WantReadError:
            return False
        return True

    def outgoing(self) -> bytes:
        assert self.conn is not None
        try:
            return self.conn.bio_read(65536)
        except SSL.WantReadError:
            return b""

    def write(self, data: bytes) -> None:
        assert self.conn is not None
        self.conn.write(data)

    def read(self, incoming: bytes) -> bytes | None:
        assert self.conn is not None
        self.conn.bio_write(incoming)
        try:
            return self.conn.read(4096)
        except SSL.WantReadError:
            return None


class MbedtlsPskDevice:
    """A PSK-mode device on python-mbedtls."""

    def __init__(self, identity: str, key: bytes, suite: str) -> None:
        dtls.prefer_p256()
        self.configuration = tls.DTLSConfiguration(
            ciphers=(suite,),
            pre_shared_key=(identity, key),
            validate_certificates=False,
            lowest_supported_version=tls.DTLSVersion.DTLSv1_2,
        )
        self.buffer: Any = None

    def start(self) -> None:
        self.buffer = tls.ClientContext(self.configuration).wrap_buffers(None)

    def step(self, incoming: bytes | None) -> bool:
        if incoming:
            self.buffer.receive_from_network(incoming)
        while not dtls.handshake_over(self.buffer):
            try:
                self.buffer.do_handshake()
            except tls.WantWriteError:
                continue
            except tls.WantReadError:
                return False
        return True

    def outgoing(self) -> bytes:
        out = self.buffer.peek_outgoing(65536)
        self.buffer.consume_outgoing(len(out))
        return bytes(out)

    def write(self, data: bytes) -> None:
        self.buffer.write(data)

    def read(self, incoming: bytes) -> bytes | None:
        self.buffer.receive_from_network(incoming)
        try:
            return bytes(self.buffer.read(4096)) or None
        except tls.WantReadError:
            return None


class Slot:
    """One concurrent virtual device: handshake, Register, close, again."""

    def __init__(self, device: Any, endpoint: str, target: tuple[str, int]) -> None:
        self.device = device
        self.endpoint = endpoint
        self.target = target
        self.sock: socket.socket | None = None
        self.state = "idle"
        self.since = 0.0
        self.mid = 0

    def start(self) -> None:
        if self.sock is not None:
            self.sock.close()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.connect(self.target)
        self.sock.setblocking(False)
        self.device.start()
        self.state = "handshake"
        self.since = time.monotonic()
        self._advance(None)

    def _send(self) -> None:
        assert self.sock is not None
        for datagram in dtls.datagrams(self.device.outgoing()):
            self.sock.send(datagram)

    def _advance(self, data: bytes | None) -> bool:
        if self.state == "handshake":
            done = self.device.step(data)
            self._send()
            if done:
                self.mid = (self.mid + 1) & 0xFFFF
                message = Message(
                    code=Code.POST, uri_path=("rd",), uri_query=(f"ep={self.endpoint}", "lt=300")
                )
                message.mtype, message.mid, message.token = Type.CON, self.mid, b"bench"
                self.device.write(message.encode())
                self._send()
                self.state = "register"
            return False
        if self.state == "register" and data is not None:
            plain = self.device.read(data)
            answer = decode(plain) if plain else None
            if answer is not None and answer.code is Code.CREATED:
                self.state = "idle"
                return True
            if answer is not None:
                raise RuntimeError(f"{self.endpoint}: {answer.code} {answer.payload[:80]!r}")
        return False

    def readable(self) -> bool:
        """Handle one incoming datagram; return whether a registration completed."""
        assert self.sock is not None
        try:
            data = self.sock.recv(65536)
        except (BlockingIOError, ConnectionRefusedError):
            return False
        self.since = time.monotonic()  # progress: the stall timer restarts
        return self._advance(data)


def run_load(slots: list[Slot], seconds: float, warmup: float) -> tuple[int, int]:
    """Drive every slot for ``warmup + seconds``; return (registrations in the window, restarts)."""
    for slot in slots:
        slot.start()
    begin = time.monotonic()
    measured = stalls = 0
    while True:
        now = time.monotonic()
        if now - begin >= warmup + seconds:
            break
        by_fd = {slot.sock.fileno(): slot for slot in slots if slot.sock is not None}
        readable, _, _ = select.select(list(by_fd), [], [], 0.05)
        for fd in readable:
            slot = by_fd[fd]
            try:
                done = slot.readable()
            except (SSL.Error, tls.TLSError, RuntimeError) as exc:
                print(f"  slot {slot.endpoint}: {exc}", file=sys.stderr)
                done = False
                slot.state = "idle"
            if done and now - begin >= warmup:
                measured += 1
            if slot.state == "idle":
                slot.start()
        for slot in slots:  # 5 s without a datagram: lost, start over (a restart, not a registration)
            if now - slot.since > 5.0:
                stalls += 1
                slot.start()
    for slot in slots:
        if slot.sock is not None:
            slot.sock.close()
    return measured, stalls


# ---------------------------------------------------------------------- servers under test
def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (the server's worker processes)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(children.get(current, []))
    return tree


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds the processes used so far."""
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def start_bare(config: dict[str, Any], workers: int) -> tuple[int, Callable[[], None], list[int]]:
    probe = bind_udp("127.0.0.1", 0, reuse_port=True)
    port = probe.getsockname()[1]
    spawn = multiprocessing.get_context("spawn")
    stop = spawn.Event()
    processes = []
    for _ in range(workers):
        ready = spawn.Event()
        process = spawn.Process(target=bare_worker, args=("127.0.0.1", port, config, ready, stop))
        process.start()
        ready.wait(30)
        processes.append(process)
    probe.close()

    def finish() -> None:
        stop.set()
        for process in processes:
            process.join(10)

    return port, finish, [p.pid for p in processes if p.pid is not None]


def wait_ready(process: subprocess.Popen[str], ready: Path, seconds: float = 120) -> dict[str, Any]:
    """The ready file's contents once ``provkit server run`` serves (it exits the bench if not)."""
    deadline = time.monotonic() + seconds
    while not ready.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"provkit server did not start: {process.communicate()}")
        time.sleep(0.05)
    found: dict[str, Any] = json.loads(ready.read_text())
    return found


def start_provkit(
    home: Path, registry: str, workers: int, root: Path
) -> tuple[int, Callable[[], None], list[int]]:
    ready = root / f"ready-{time.monotonic_ns()}.json"
    command = [
        sys.executable, "-m", "provkit.cli", "server", "run", "--server-home", str(home),
        "--registry", registry, "--no-bootstrap", "--lwm2m-port", "0", "--workers", str(workers),
        "--ready-file", str(ready),
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    port = int(wait_ready(process, ready)["lwm2m"].rsplit(":", 1)[1])

    def finish() -> None:
        process.send_signal(signal.SIGTERM)
        out, _err = process.communicate(timeout=60)
        counters = json.loads(out.splitlines()[-1]).get("counters", {})
        print(
            f"    provkit counters: registrations {counters.get('registrations')}, "
            f"handshakes {counters.get('handshakes_completed')}, failed {counters.get('handshakes_failed')}, "
            f"registry errors {counters.get('registry_errors')}"
        )

    return port, finish, process_tree(process.pid)


# ---------------------------------------------------------------------- main
def main() -> None:
    if sys.argv[1:2] == ["--dm-api"]:
        import dm_api  # bench/dm_api.py, with the options that follow

        sys.argv = [sys.argv[0], *sys.argv[2:]]
        dm_api.main()
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--devices", type=int, default=32, help="concurrent virtual devices")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2, help="server processes")
    parser.add_argument("--modes", default="certificate,psk,psk-plain")
    parser.add_argument("--pages", action="store_true", help="time the line view's pages instead")
    parser.add_argument("--registry-rows", type=int, default=1_000_000, help="--pages: devices seeded")
    parser.add_argument("--requests", type=int, default=50, help="--pages: requests per page")
    parser.add_argument("--backends", default="sqlite,postgres", help="--pages: registries to seed")
    args = parser.parse_args()
    if args.pages:
        page_latency(args.registry_rows, args.requests, args.backends.split(","))
        return

    root = Path(tempfile.mkdtemp(prefix="provkit-bench-server-"))
    material = init_home(root / "home", ["127.0.0.1"])
    now = dt.datetime.now(dt.UTC)
    ca_key = keys.generate_p256()
    ca = issue.create_ca(ca_key, {"common-name": "bench factory CA"}, now=now)
    registry_url = str(root / "registry.sqlite")
    psks = {f"psk-{i:04d}": os.urandom(16) for i in range(args.devices)}
    with Registry.open(registry_url) as registry:
        registry.psk.publish_sealing_key(material.sealing_public_der)
        registry.trust.add(x509.certificate_der(ca), service="lwm2m")
        for identity, key in psks.items():
            registry.psk.record(identity, identity, key)

    def cert_slots(port: int) -> list[Slot]:
        slots = []
        for i in range(args.devices):
            device_key = keys.generate_p256()
            cert = issue.issue_device_certificate(
                ca_key, ca, device_key.public_key(), common_name=f"cert-{i:04d}", subject={},
                not_before=now - dt.timedelta(hours=1), validity_years=1,
            )  # fmt: skip
            context = SSL.Context(SSL.DTLS_CLIENT_METHOD)
            context.use_certificate(crypto.X509.from_cryptography(cert))
            context.use_privatekey(crypto.PKey.from_cryptography_key(device_key))
            context.get_cert_store().add_cert(crypto.X509.from_cryptography(material.ca_cert))
            context.set_verify(SSL.VERIFY_PEER, lambda _c, _x, _e, _d, ok: bool(ok))
            context.set_cipher_list(CERT_SUITE)
            context.set_tmp_ecdh(ec.SECP256R1())
            slots.append(Slot(OpenSslDevice(context), f"cert-{i:04d}", ("127.0.0.1", port)))
        return slots

    def psk_slots(port: int, suite: str) -> list[Slot]:
        return [
            Slot(MbedtlsPskDevice(ident, key, suite), ident, ("127.0.0.1", port))
            for ident, key in psks.items()
        ]

    bare_config = {
        "chain": list(material.server_chain),
        "key": keys.private_key_der(material.server_key),
        "anchors": [x509.certificate_der(ca)],
        "psk": psks,
    }
    print(f"provkit server bench: {args.devices} concurrent devices, {args.workers} server processes, "
          f"{os.cpu_count()} cores, {args.seconds:g} s per run")  # fmt: skip
    results: dict[str, dict[str, float]] = {}
    for mode in args.modes.split(","):
        make = cert_slots if mode == "certificate" else functools.partial(psk_slots, suite=PSK_SUITES[mode])
        for kind in ("bare", "provkit"):
            if kind == "bare":
                port, finish, pids = start_bare(bare_config, args.workers)
            else:
                port, finish, pids = start_provkit(material.home, registry_url, args.workers, root)
            slots = make(port)
            try:
                before = cpu_seconds(pids)
                done, stalls = run_load(slots, args.seconds, args.warmup)
                used = cpu_seconds(pids) - before
            finally:
                finish()
            rate = done / args.seconds
            # CPU per registration (warm-up included on both sides of the division) does not
            # depend on what else runs on the machine; the rate does.
            per = used / max(1, done + round(rate * args.warmup)) * 1000
            results.setdefault(mode, {})[kind] = rate
            results[mode][f"{kind}_cpu"] = per
            print(
                f"  {mode:<11} {kind:<8} {rate:8.1f} handshakes+registrations/s, "
                f"server CPU {per:6.2f} ms each  ({stalls} restarts after loss)"
            )
    print()
    for mode, rates in results.items():
        ratio = rates["provkit"] / rates["bare"] if rates.get("bare") else 0.0
        efficiency = rates["bare_cpu"] / rates["provkit_cpu"] if rates.get("provkit_cpu") else 0.0
        print(
            f"{mode:<11} provkit/bare = {ratio:.2f} by rate, {efficiency:.2f} by server CPU  (target >= 0.80)"
        )
    if "certificate" in results:
        rate = results["certificate"]["provkit"]
        capacity = args.workers * 1000 / results["certificate"]["provkit_cpu"]
        print(
            f"certificate-mode registrations/s = {rate:.1f}  (target >= 150 on 2 cores); "
            f"{args.workers} cores of server CPU alone would carry {capacity:.0f}/s"
        )


def page_latency(rows: int, requests: int, backends: list[str]) -> None:
    """The line view's page latency on each backend's registry of ``rows`` devices."""
    from line import drop_schema, postgres_url  # bench/line.py: a fresh PostgreSQL schema
    from line_view import TARGET_MS, run_pages

    print(f"line view pages: {rows:,} devices in the registry, {requests} requests per page, "
          f"{os.cpu_count()} cores; target p95 < {TARGET_MS:.0f} ms (overview, device)")  # fmt: skip
    root = Path(tempfile.mkdtemp(prefix="provkit-bench-pages-"))
    for backend in backends:
        if backend == "sqlite":
            run_pages(str(root / "registry.sqlite"), "sqlite", rows, requests, root)
            continue
        url = postgres_url(None)
        if url is None:
            continue
        try:
            run_pages(url, "postgres", rows, requests, root)
        finally:
            drop_schema(url)


if __name__ == "__main__":
    main()
