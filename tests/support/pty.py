"""A serial "null-modem cable" made of two raw ptys bridged by a relay thread.

pyserial opens the slave ends as real tty devices, so the agent's serial server and the
factory tool's serial link talk over a kernel tty exactly as over a USB CDC port.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import subprocess
import sys
import threading
import tty
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class PtyCable:
    """The two ends of the cable: a byte written on one path arrives on the other.

    Attributes:
        device_path: the end the device agent opens.
        host_path: the end the factory tool opens.
    """

    device_path: str
    host_path: str


@contextlib.contextmanager
def pty_cable() -> Iterator[PtyCable]:
    """Open two pty pairs, relay between their masters, and close everything afterwards."""
    m1, s1 = os.openpty()
    m2, s2 = os.openpty()
    for fd in (s1, s2):
        tty.setraw(fd)  # no echo or line editing before pyserial opens the slave
    stop = threading.Event()

    def relay() -> None:
        peers = {m1: m2, m2: m1}
        with selectors.DefaultSelector() as sel:
            for fd in peers:
                sel.register(fd, selectors.EVENT_READ)
            while not stop.is_set():
                for key, _ in sel.select(0.05):
                    try:
                        data = os.read(key.fd, 65536)  # type: ignore[arg-type]
                    except OSError:
                        continue  # a slave closed and reopened between two reads
                    os.write(peers[key.fd], data)  # type: ignore[index]

    thread = threading.Thread(target=relay, daemon=True)
    thread.start()
    try:
        yield PtyCable(os.ttyname(s1), os.ttyname(s2))
    finally:
        stop.set()
        thread.join()
        for fd in (m1, m2, s1, s2):
            with contextlib.suppress(OSError):
                os.close(fd)


@dataclass
class SerialAgent:
    """A ``provkit device serve --serial`` process on the device end of a pty cable.

    Attributes:
        cable: the cable; the factory tool opens ``cable.host_path``.
        output: what the agent printed, filled in once it stopped.
    """

    cable: PtyCable
    output: str = ""


@contextlib.contextmanager
def serial_agent(storage: str) -> Iterator[SerialAgent]:
    """Run ``device serve --serial`` (a real process) until the block ends, then SIGTERM it.

    Waits for the agent's ready line first; checks it exits 0 and keeps its output.
    """
    with pty_cable() as cable:
        proc = subprocess.Popen(
            [sys.executable, "-m", "provkit.cli", "device", "serve", "--serial", cable.device_path,
             "--storage", storage],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        try:
            assert proc.stdout is not None
            ready = proc.stdout.readline().strip()
            assert ready == f"Factory Client is waiting for frames on {cable.device_path}"
            agent = SerialAgent(cable)
            yield agent
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=30)
            assert proc.returncode == 0, err
            agent.output = out
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
