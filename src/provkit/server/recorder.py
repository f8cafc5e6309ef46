"""Group commits of connection records from the event loop to the registry.

Registry writes block, the event loop must not: a recorder thread takes every event
queued since its last commit and writes them in one transaction (SQLite commits once
per group, PostgreSQL does one round trip per row inside one transaction). A service
awaits the future of its event, so a device is told "registered" only once that is
durable; many devices registering at once share the commits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
from collections.abc import Callable
from typing import Final

from provkit.errors import ProvkitError
from provkit.registry import ConnectionEvent, Registry

_log = logging.getLogger(__name__)
_MAX_GROUP: Final = 500
_STOP: Final = object()


class Recorder:
    """Writes connection events in groups on its own thread.

    Args:
        registry: where to write.
        loop: the event loop whose futures are resolved.
        server_id: recorded on every row.
        on_error: called (on the loop) with the number of events a failed commit lost.
    """

    def __init__(
        self,
        registry: Registry,
        loop: asyncio.AbstractEventLoop,
        server_id: str,
        on_error: Callable[[int], None] | None = None,
    ) -> None:
        self._registry = registry
        self._loop = loop
        self._server_id = server_id
        self._on_error = on_error
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="provkit-recorder", daemon=True)
        self._thread.start()

    def record(self, event: ConnectionEvent) -> asyncio.Future[bool]:
        """Queue ``event``; the future becomes ``True`` once committed, ``False`` if the commit failed."""
        future: asyncio.Future[bool] = self._loop.create_future()
        self._queue.put((event, future))
        return future

    def close(self) -> None:
        """Write what is queued and stop the thread."""
        self._queue.put(_STOP)
        self._thread.join(timeout=30)

    def _run(self) -> None:
        stopping = False
        while not stopping:
            item = self._queue.get()
            group = []
            while True:
                if item is _STOP:
                    stopping = True
                else:
                    group.append(item)
                if len(group) >= _MAX_GROUP:
                    break
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            if group:
                self._commit(group)  # type: ignore[arg-type]

    def _commit(self, group: list[tuple[ConnectionEvent, asyncio.Future[bool]]]) -> None:
        try:
            self._registry.connections.record([event for event, _ in group], server_id=self._server_id)
            ok = True
        except ProvkitError as exc:
            _log.error("registry write of %d connection records failed: %s", len(group), exc)
            ok = False
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
            self._loop.call_soon_threadsafe(self._resolve, [future for _, future in group], ok)

    def _resolve(self, futures: list[asyncio.Future[bool]], ok: bool) -> None:
        if not ok and self._on_error is not None:
            self._on_error(len(futures))
        for future in futures:
            if not future.done():
                future.set_result(ok)
