"""End-of-line check: a provisioned device counts as good only once its first connection worked.

For every device of the batch recorded as provisioned, the line sends the device agent the
connect command (:data:`~provkit.wire.framing.CONNECT_TOKEN`): the device bootstraps and
registers with the servers it was given and answers how it went. A success was recorded
by the server itself; a failure is recorded here, with its classification (``tls-alert``,
``ca-untrusted``, ``cn-mismatch``, ``revoked``, ``timeout``, ``refused``, ``unreachable``,
``device-config``), in the registry's connections and in the batch report.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from provkit.errors import ProvkitError
from provkit.line.context import BatchContext
from provkit.line.devices import DeviceRow
from provkit.registry import Attempt, AttemptState, ConnectionEvent, ConnectionOutcome
from provkit.wire.framing import CONNECT_TOKEN


@dataclass(frozen=True)
class ConnectSettings:
    """How the end-of-line connection check runs.

    Attributes:
        timeout: seconds the device gives each handshake and exchange.
        concurrency: devices checked at once.
        bootstrap: make devices bootstrap even when they hold an LwM2M account.
    """

    timeout: float = 10.0
    concurrency: int = 16
    bootstrap: bool = False


@dataclass(frozen=True)
class ConnectCheck:
    """One device's first connection as the line saw it.

    Attributes:
        ok: whether it registered.
        failure: the classification of a failure.
        code: the provkit code of a failure.
        reason: what went wrong (empty on success).
        service: ``bootstrap`` or ``lwm2m``: where it failed or ended.
        location: the registration location on success.
        bootstrapped: whether the device bootstrapped first.
    """

    ok: bool
    failure: str | None = None
    code: int | None = None
    reason: str = ""
    service: str = "lwm2m"
    location: str | None = None
    bootstrapped: bool = False

    @classmethod
    def from_answer(cls, answer: dict[str, Any]) -> ConnectCheck:
        """Read the device's JSON answer."""
        if answer.get("ok") is True:
            return cls(True, location=answer.get("location"), bootstrapped=bool(answer.get("bootstrapped")))
        code = answer.get("code")
        return cls(
            False,
            failure=str(answer.get("failure") or "refused"),
            code=code if isinstance(code, int) else None,
            reason=str(answer.get("message") or "the device reported a failure"),
            service=str(answer.get("service") or "lwm2m"),
        )


def _ask(host: str, port: int, settings: ConnectSettings) -> ConnectCheck:
    from provkit.server.command import ConnectRequest
    from provkit.transport.links import TcpLink

    request = ConnectRequest(timeout=settings.timeout, bootstrap=settings.bootstrap).encode()
    try:
        with TcpLink(host, port, connect_timeout_s=5.0) as link:
            # Bootstrap (about six exchanges) plus registration, each within the device's timeout.
            answer = link.exchange(request, timeout_s=settings.timeout * 8 + 5, token=CONNECT_TOKEN)
        data = json.loads(answer.decode("utf-8"))
        if not isinstance(data, dict):
            raise ValueError("the answer is not a JSON object")
    except ProvkitError as exc:
        return ConnectCheck(False, failure="unreachable", code=exc.code, reason=f"device agent: {exc}")
    except (ValueError, UnicodeDecodeError) as exc:
        return ConnectCheck(False, failure="refused", reason=f"the device's answer is unreadable: {exc}")
    return ConnectCheck.from_answer(data)


def check_connections(
    ctx: BatchContext, settings: ConnectSettings, rows: Sequence[DeviceRow], latest: Mapping[str, Attempt]
) -> dict[str, ConnectCheck]:
    """Have every provisioned device of ``rows`` connect; record failures; return the checks by slot.

    ``latest`` is the newest attempt of each of those rows; a batch checks a chunk of
    rows at a time.
    """
    targets: list[tuple[Attempt, Any]] = [
        (attempt, row)
        for row in rows
        if (attempt := latest.get(row.slot)) is not None and attempt.state is AttemptState.VERIFIED
    ]
    checks: dict[str, ConnectCheck] = {}

    def one(target: tuple[Attempt, Any]) -> tuple[Attempt, Any, ConnectCheck]:
        attempt, row = target
        return attempt, row, _ask(row.host, row.port, settings)

    with ThreadPoolExecutor(
        max_workers=max(1, settings.concurrency), thread_name_prefix="line-connect"
    ) as pool:
        for attempt, row, check in pool.map(one, targets):
            checks[row.slot] = check
            ctx.progress.advance("connect")
            if not check.ok:
                ctx.guard(attempt, functools.partial(_record_failure, ctx, attempt, row.address, check))
    return checks


def _record_failure(ctx: BatchContext, attempt: Attempt, address: str, check: ConnectCheck) -> None:
    event = ConnectionEvent(
        endpoint_name=attempt.endpoint_name,
        service=check.service,
        outcome=ConnectionOutcome.FAILED,
        address=address,
        failure=check.failure,
        error_code=check.code,
        detail=check.reason[:1000],
    )
    ctx.registry.connections.record([event])
