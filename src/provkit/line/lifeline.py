"""Worker processes that die with their parent, however it dies.

A pool's workers outlive a parent killed with SIGKILL: nothing tells them, and they wait
for work for ever, holding what they inherited (the registry's file descriptors among
them). A :class:`Lifeline` is a pipe whose write end only the parent keeps: each worker
closes its inherited copy and watches the read end from a daemon thread, and when the
parent is gone — exited, crashed or killed — the read returns end-of-file and the
worker exits at once.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import threading
from multiprocessing.context import BaseContext
from typing import Final

_EXIT_STATUS: Final = 70
"""Exit status of a worker whose parent has gone (``EX_SOFTWARE``)."""


class Lifeline:
    """The parent's end of the pipe; pass :attr:`fds` to each worker's :func:`hold`."""

    def __init__(self) -> None:
        self._read, self._write = os.pipe()

    @property
    def fds(self) -> tuple[int, int]:
        """``(read, write)`` descriptors, inherited by forked workers."""
        return self._read, self._write

    @staticmethod
    def context() -> BaseContext:
        """The process context whose workers inherit the pipe: ``fork`` wherever there is one."""
        if "fork" in multiprocessing.get_all_start_methods():
            return multiprocessing.get_context("fork")
        return multiprocessing.get_context()  # pragma: no cover - not POSIX: no watch

    def close(self) -> None:
        """Close the parent's ends (the workers, if still running, then exit)."""
        for fd in (self._read, self._write):
            with contextlib.suppress(OSError):
                os.close(fd)


def hold(fds: tuple[int, int]) -> None:
    """In a worker: exit as soon as the parent that made ``fds`` is gone."""
    read_fd, write_fd = fds
    try:
        os.close(write_fd)  # only the parent may keep the pipe open
    except OSError:
        return  # not inherited (a spawned worker): nothing to watch

    def watch() -> None:
        try:
            while os.read(read_fd, 1):
                pass
        except OSError:
            pass
        os._exit(_EXIT_STATUS)

    threading.Thread(target=watch, name="lifeline", daemon=True).start()
