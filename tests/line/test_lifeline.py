"""Prepare workers die with their parent, even when it is SIGKILLed; a resume is not blocked."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from provkit.line.lifeline import Lifeline, hold

pytestmark = pytest.mark.integration

GENEROUS_S = 20.0


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting to be reaped by init does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _parent(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if _parent(int(entry.name)) == pid:
                    found.append(int(entry.name))
            except (OSError, ValueError, IndexError):
                continue
    return found


def _wait_until(condition: object, what: str) -> None:
    deadline = time.monotonic() + GENEROUS_S
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"gave up waiting: {what}"
        time.sleep(0.05)


def _reap(workers: list[int]) -> None:
    """Kill what a failed test left behind, so one failure does not leave orphans running."""
    for pid in workers:
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)


_POOL_SCRIPT = """
import sys, time
from pathlib import Path
from provkit.line.prepare import PreparePool
pool = PreparePool(2, Path(sys.argv[1]))
pool.warm_up()
print(" ".join(str(pid) for pid in pool._pool._processes), flush=True)
time.sleep(600)
"""


def test_prepare_workers_exit_when_their_parent_is_killed(fcu_home: Path) -> None:
    """SIGKILL the process holding a warmed-up pool: both workers are gone within seconds."""
    workers: list[int] = []
    parent = subprocess.Popen(
        [sys.executable, "-c", _POOL_SCRIPT, str(fcu_home)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert parent.stdout is not None
        workers[:] = [int(pid) for pid in parent.stdout.readline().split()]
        assert len(workers) == 2
        assert all(_alive(pid) and _parent(pid) == parent.pid for pid in workers)
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        _wait_until(lambda: not any(_alive(pid) for pid in workers), "the orphaned workers to exit")
    finally:
        parent.kill()
        parent.wait()
        _reap(workers)


def test_a_worker_keeps_running_while_its_parent_lives() -> None:
    """The watch does not fire while the parent holds the pipe, and fires when it lets go."""
    lifeline = Lifeline()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        hold(lifeline.fds)
        time.sleep(GENEROUS_S * 2)
        os._exit(0)
    try:
        time.sleep(0.3)
        assert _alive(pid)
        lifeline.close()  # as if the parent were gone
        _wait_until(lambda: os.waitpid(pid, os.WNOHANG)[0] == pid, "the child to exit")
    finally:
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)


def test_batch_run_killed_mid_prepare_leaves_no_workers_and_resumes(fcu_home: Path, tmp_path: Path) -> None:
    """kill -9 of provkit batch run while its workers prepare: no worker survives it, and running
    the batch again finishes (nothing left behind blocks it)."""
    devices = tmp_path / "devices.csv"
    devices.write_text("address\n" + "".join(f"127.0.0.1:{port}\n" for port in range(20000, 22000)))
    command = [
        sys.executable, "-m", "provkit.cli", "--home-dir", str(fcu_home), "batch", "run", "--no-progress",
        "--workers", "2", "--registry", str(tmp_path / "r.sqlite"), "--devices", str(devices),
        "--out", str(tmp_path / "out"), "--endpoint-pattern", "kill-{seq:06d}", "--retries", "0",
        "--connect-timeout", "0.2",
    ]  # fmt: skip
    workers: list[int] = []
    batch = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_until(lambda: len(_children(batch.pid)) >= 2, "the prepare workers to start")
        workers[:] = _children(batch.pid)
        batch.send_signal(signal.SIGKILL)
        batch.wait()
        _wait_until(lambda: not any(_alive(pid) for pid in workers), "the orphaned workers to exit")
    finally:
        batch.kill()
        batch.wait()
        _reap(workers)
    again = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    assert (tmp_path / "out" / "report.json").is_file(), again.stderr
    assert "Traceback" not in again.stderr
