"""Zephyr boards on the line: LwM2M blobs over SMP, recorded in the registry like every device.

A ``devices.csv`` row whose address is ``smp-serial:…`` or ``smp-udp:…`` names a board
running Anjay's provisioning image. Its identity is known only once the board is reached
(``/factory/endpoint.txt``, unless the row gives an endpoint name), so the ``inject`` and
``run`` steps do everything for it at once, ``concurrency`` boards at a time:

1. read the endpoint name; record an attempt for it (the serial number column holds the
   endpoint name unless the row gives one), superseding the row's previous attempt;
2. build the blob for it (certificates get it as CN), store it in the batch directory and
   record the attempt ``prepared``;
3. mark it ``sending`` (which reserves the identity, as for every device) and upload;
4. the board's ``result.txt`` decides: ``0`` records the device as provisioned, anything
   else (or a failed link) records the attempt as failed with the SMP code (7xxx);
5. with a management server (Coiote) and its token, a provisioned board is registered
   there, as ``provkit lwm2m register`` does. The board holds its blob whatever the server
   answers, so a refused registration is recorded as a warning on the provisioned attempt,
   to be done again with ``provkit lwm2m register``.

``prepare`` and ``verify`` leave boards alone. For an attempt found ``sending`` when a
batch is resumed, the board's ``result.txt`` is read first: ``0`` records that attempt as
provisioned; otherwise it is closed as failed and the board is provisioned anew (a board
that ended a blob with ``-1`` refuses another until it is reset: the failure says so).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from provkit.errors import BatchError, DuplicateIdentityError, ProvkitError, RegistrationError, RegistryError
from provkit.factory.lwm2m import FactoryProvisioning
from provkit.factory.lwm2m.coiote import ServerInfo
from provkit.factory.lwm2m.provisioning import load_endpoint_config
from provkit.factory.lwm2m.zephyr import deliver_blob, read_endpoint_name, read_result
from provkit.line.context import BatchContext
from provkit.line.devices import BoardRow
from provkit.line.layout import write_atomic
from provkit.registry import Attempt, AttemptState, NewAttempt

if TYPE_CHECKING:
    from provkit.transport.smp_link import SmpLink, SmpSettings

_log = logging.getLogger(__name__)

PSK_MODE = 0
"""LwM2M Security Mode 0: a pre-shared key (``/0/x/2``)."""

KEY_MODE = "lwm2m-smp"
"""The ``key_mode`` recorded on board attempts."""

_INTERRUPTED = "interrupted after sending; superseded by a new attempt"


@dataclass(frozen=True, slots=True)
class BoardOptions:
    """What boards are provisioned with.

    Attributes:
        endpoint_cfg: the LwM2M endpoint configuration (YAML/JSON).
        cert_info: cert-config JSON: generate each board's key and certificate (certificate modes).
        server_cert: the server certificate for ``/0/x/4`` (certificate modes).
        target: the client profile (``anjay``).
        allow_unverified_server: certificate modes without a server certificate.
        smp: SMP timeouts, retries, chunk size (``None``: the link's defaults).
        coiote_server: the management server to register provisioned boards with.
        coiote_token: its access token (needed with ``coiote_server``).
    """

    endpoint_cfg: Path
    cert_info: Path | None = None
    server_cert: Path | None = None
    target: str = "anjay"
    allow_unverified_server: bool = False
    smp: SmpSettings | None = None
    coiote_server: ServerInfo | None = None
    coiote_token: str | None = None

    def __post_init__(self) -> None:
        if self.coiote_server is not None and not self.coiote_token:
            raise RegistrationError("registering boards with a management server needs its access token")

    def provisioning(self, endpoint_name: str) -> FactoryProvisioning:
        """The board's provisioning: configuration, and in certificate modes its certificates.

        Raises:
            ProvkitError: the configuration or a certificate input is unusable.
        """
        fp = FactoryProvisioning(
            self.endpoint_cfg,
            endpoint_name,
            self.coiote_server,
            self.coiote_token,
            self.cert_info,
            target=self.target,
            allow_unverified_server=self.allow_unverified_server,
        )
        if fp.cert_instances():
            if self.server_cert is not None:
                fp.set_server_cert(self.server_cert)
            if self.cert_info is not None:
                fp.generate_self_signed_cert()
        return fp


def provision_boards(ctx: BatchContext, options: BoardOptions | None) -> None:
    """Provision every board row not recorded as provisioned yet (see the module docstring)."""
    boards = ctx.devices.boards
    if not boards:
        return
    latest = ctx.latest([row.slot for row in boards])
    todo = [row for row in boards if _pending(latest.get(row.slot))]
    if options is None:
        for row in todo:
            ctx.note(
                row.slot,
                BatchError.default_code,
                f"line {row.line}: {row.address} is an SMP board: it takes an LwM2M blob; give the "
                "LwM2M endpoint configuration",
            )
        return
    if len(todo) > 1 and shares_a_psk(options):
        _log.warning(
            "every board of this batch gets the same pre-shared key (identity and key from %s): "
            "a key read out of one board opens every other board's session; give each board its "
            "own configuration, or use a certificate mode",
            options.endpoint_cfg,
        )
    ctx.progress.start("boards", len(todo))
    with ThreadPoolExecutor(max_workers=max(1, ctx.options.concurrency)) as pool:
        futures = [pool.submit(_one_board, ctx, options, row, latest.get(row.slot)) for row in todo]
    for future in futures:
        future.result()  # a bug in a board's step surfaces here, not silently


def shares_a_psk(options: BoardOptions) -> bool:
    """Whether the boards' configuration holds a pre-shared key, which every board then gets."""
    try:
        config = load_endpoint_config(options.endpoint_cfg)
    except ProvkitError:
        return False  # each board's blob fails with the reason
    return any(
        config.security_mode(iid) == PSK_MODE and config.get(0, iid, 5) for iid in config.instance_ids(0)
    )


def _pending(attempt: Attempt | None) -> bool:
    return attempt is None or attempt.state is not AttemptState.VERIFIED


def _one_board(ctx: BatchContext, options: BoardOptions, row: BoardRow, previous: Attempt | None) -> None:
    began = time.monotonic()
    try:
        _provision(ctx, options, row, previous)
    except RegistryError as exc:
        ctx.note(row.slot, exc.code, f"registry unavailable, outcome not recorded: {exc}")
    finally:
        with ctx.lock:
            ctx.latency.setdefault(row.slot, time.monotonic() - began)
        ctx.progress.advance("boards")


def _provision(ctx: BatchContext, options: BoardOptions, row: BoardRow, previous: Attempt | None) -> None:
    registry = ctx.registry
    link = row.target.open_files(options.smp)
    try:
        with link:
            if (
                previous is not None
                and previous.state is AttemptState.SENDING
                and _settled(ctx, link, previous)
            ):
                return
            try:
                endpoint = row.endpoint_name or read_endpoint_name(link)
            except ProvkitError as exc:
                ctx.note(row.slot, exc.code, f"device {row.address}: {exc.message}")
                return
            item = NewAttempt(
                endpoint,
                row.serial_number or endpoint,
                row.slot,
                row.address,
                key_mode=KEY_MODE,
                supersedes_id=None if previous is None else previous.id,
            )
            (attempt_id,) = registry.record_attempts(ctx.batch_id, [item])
            prepared = _prepared_blob(ctx, options, attempt_id, endpoint, failed=registry.mark_failed)
            if prepared is None:
                return
            fp, blob = prepared
            try:
                registry.mark_sending(attempt_id, reprovision=ctx.options.reprovision)
            except DuplicateIdentityError:
                return  # another attempt holds the identity: refused and recorded, nothing sent
            try:
                deliver_blob(link, blob, endpoint)
            except ProvkitError as exc:
                registry.mark_failed(attempt_id, exc.code, f"device {row.address}: {exc.message}")
                return
            values = _registered(fp, options)
            with contextlib.suppress(DuplicateIdentityError):  # the registry records the refusal itself
                registry.mark_verified(attempt_id, reprovision=ctx.options.reprovision, **values)
    except RegistryError:
        raise
    except ProvkitError as exc:  # the link could not be opened, or failed outside a recorded attempt
        ctx.note(row.slot, exc.code, f"device {row.address}: {exc.message}")


def _registered(fp: FactoryProvisioning, options: BoardOptions) -> dict[str, str]:
    """Register a provisioned board with the management server, if there is one.

    Returns the values recorded with the verdict: a warning when the server refused.
    """
    if options.coiote_server is None:
        return {}
    try:
        fp.register()
    except ProvkitError as exc:
        return {
            "warnings": f"management server registration failed ({exc.code}): {exc.message}; "
            "the board holds its blob: register it with provkit lwm2m register"
        }
    return {}


def _settled(ctx: BatchContext, link: SmpLink, previous: Attempt) -> bool:
    """A run killed while a blob was on its way: the board's ``result.txt`` says what became of it.

    ``0``: the board holds that attempt's blob, which is recorded as provisioned (``True``).
    Otherwise the attempt is closed as failed and the board is provisioned anew (``False``).
    """
    try:
        result: int | None = read_result(link)
    except ProvkitError:
        result = None
    if result == 0:
        with contextlib.suppress(DuplicateIdentityError):
            ctx.registry.mark_verified(previous.id, reprovision=ctx.options.reprovision)
        return True
    why = "unreadable" if result is None else str(result)
    ctx.registry.mark_failed(previous.id, None, f"{_INTERRUPTED}; the board's result was {why}")
    return False


def _prepared_blob(
    ctx: BatchContext,
    options: BoardOptions,
    attempt_id: int,
    endpoint: str,
    *,
    failed: Callable[..., None],
) -> tuple[FactoryProvisioning, bytes] | None:
    """Build and store the board's blob; record the attempt prepared (or failed, then ``None``).

    Returns the board's provisioning (for its registration) and the blob.
    """
    try:
        fp = options.provisioning(endpoint)
        blob = fp.build_blob()
    except ProvkitError as exc:
        failed(attempt_id, exc.code, f"blob for {endpoint} cannot be built: {exc.message}", release=True)
        return None
    path = ctx.layout.bundle(attempt_id, endpoint)
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        write_atomic(path, blob, durable=False)
    except OSError as exc:
        failed(attempt_id, BatchError.default_code, f"cannot store the blob {path}: {exc}", release=True)
        return None
    digest = hashlib.sha256(blob).hexdigest()
    ctx.registry.update_attempt(attempt_id, AttemptState.PREPARED, bundle_sha256=digest)
    return fp, blob
