"""``provkit device serve`` as a real subprocess on 127.0.0.1, for end-to-end tests."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PROVKIT = (sys.executable, "-m", "provkit.cli")
"""Command prefix running the installed CLI with this interpreter."""

READY = "Factory Client IP Address and Port : "
"""The line ``device serve`` prints once it listens (as the C example does)."""


@contextmanager
def served_device(storage: Path) -> Iterator[tuple[str, int]]:
    """Run ``provkit device serve --port 0`` with SQLite ``storage``; yield its IP and port."""
    proc = subprocess.Popen(
        [*PROVKIT, "device", "serve", "--ip", "127.0.0.1", "--port", "0", "--storage", str(storage)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith(READY), line + (
            proc.stderr.read() if proc.poll() is not None and proc.stderr else ""
        )
        ip, port = line.removeprefix(READY).strip().rsplit(":", 1)
        yield ip, int(port)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
