"""Group commits of connection records, on the server's event loop.

A service awaits the future of its event, so a device is told "registered" only once
that is durable. Events are not written one by one: the first event queued schedules a
flush for the end of the current turn of the event loop, and the flush writes every
event queued meanwhile in one transaction (one statement per kind, executemany). Many
devices registering at once thus share each commit. The flush runs on the loop thread
itself: a commit is about a millisecond on SQLite or PostgreSQL, cheaper than handing
work to a thread that must win the GIL back from the handshakes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Final

from sqlalchemy import Connection

from provkit.errors import ProvkitError
from provkit.registry import ConnectionEvent, Registry

_log = logging.getLogger(__name__)
_MAX_GROUP: Final = 500


class Recorder:
    """Writes connection events in groups at the end of each event-loop turn.

    Args:
        registry: where to write.
        loop: the event loop whose futures are resolved.
        server_id: recorded on every row.
        on_error: called with the number of events a failed commit lost.
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
        self._connection: Connection | None = None
        self._pending: list[tuple[ConnectionEvent, asyncio.Future[bool]]] = []
        self._scheduled = False
        self.commits = 0
        """How many transactions were committed (events / commits = the group size)."""

    def record(self, event: ConnectionEvent) -> asyncio.Future[bool]:
        """Queue ``event``; the future becomes ``True`` once committed, ``False`` if the commit failed."""
        future: asyncio.Future[bool] = self._loop.create_future()
        self._pending.append((event, future))
        if not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self._flush)
        return future

    def _flush(self) -> None:
        self._scheduled = False
        group, self._pending = self._pending[:_MAX_GROUP], self._pending[_MAX_GROUP:]
        if self._pending:
            self._scheduled = True
            self._loop.call_soon(self._flush)
        if not group:
            return
        try:
            if self._connection is None:
                self._connection = self._registry.connect()
            self._registry.connections.record(
                [event for event, _ in group], server_id=self._server_id, connection=self._connection
            )
            ok = True
            self.commits += 1
        except ProvkitError as exc:
            _log.error("registry write of %d connection records failed: %s", len(group), exc)
            ok = False
            self._drop_connection()
            if self._on_error is not None:
                self._on_error(len(group))
        for _, future in group:
            if not future.done():
                future.set_result(ok)

    def _drop_connection(self) -> None:
        # A failed connection is not reused: the next flush opens a fresh one.
        if self._connection is not None:
            with contextlib.suppress(Exception):
                self._connection.close()
            self._connection = None

    def close(self) -> None:
        """Write what is still queued and release the connection."""
        while self._pending:
            self._flush()
        self._drop_connection()
