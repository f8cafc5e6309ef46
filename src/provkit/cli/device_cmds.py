"""``provkit device …``: run a device agent, or inspect and manage a device's storage.

``serve`` is the factory client example's role (FTCD): it listens on TCP (or a serial
line), prints ``Factory Client IP Address and Port : IP:PORT`` and feeds every bundle to
FCC. The other commands work on the same storage offline.
"""

from __future__ import annotations

import json
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import Any

import click

from provkit.cli._lazy import LazyGroup
from provkit.transport.agent import DEFAULT_SESSION_TIMEOUT_S
from provkit.transport.servers import DEFAULT_MAX_CONNECTIONS
from provkit.wire.framing import CONNECT_TOKEN, DEFAULT_MAX_MESSAGE_BYTES

STORAGE_HELP = "Device storage: an SQLite file path, or :memory: for a virtual device."


@dataclass
class _Device:
    storage: Any
    kcm: Any
    fcc: Any


@contextmanager
def open_device(
    spec: str, *, mode: str = "read", secret_file: Path | None = None, atomic_bundles: bool = False
) -> Iterator[_Device]:
    """Open the storage named by ``spec`` with its KCM and FCC; close it afterwards.

    Args:
        spec: an SQLite file path or ``:memory:``.
        mode: ``create`` makes a new storage file if there is none (``serve``); ``write``
            and ``read`` refuse a missing file, so a mistyped path never leaves an empty
            device (and its secret) behind, and ``read`` (``show``, ``verify``) writes
            nothing at all.
        secret_file: where the device secret is kept (default ``<storage>.secret``);
            ``PROVKIT_DEVICE_SECRET`` (64 hex digits) gives the secret itself instead.
        atomic_bundles: the FCC makes each bundle all-or-nothing.

    Raises:
        StorageError: code 11 when the file is missing or unusable; 14 when its secret is.
        NotAStoreError: the file is not a provkit device store.
    """
    # Imported here so that `provkit --help` and the factory commands never load the device side.
    from provkit.device.fcc import FactoryConfiguratorClient
    from provkit.device.kcm import Kcm
    from provkit.device.storage import OpenMode, open_storage, secret_from_environment

    secret = None if secret_file is not None else secret_from_environment()
    storage = open_storage(spec, mode=OpenMode(mode), secret_file=secret_file)
    try:
        kcm = Kcm(storage, secret=secret)
        yield _Device(storage, kcm, FactoryConfiguratorClient(kcm, atomic_bundles=atomic_bundles))
    finally:
        storage.close()


# The farm runs line code (provkit.line); it is imported only when asked for, so that
# ``provkit device serve`` on a device loads the device side and transports alone.
_LAZY_DEVICE_COMMANDS = {
    "farm": ("provkit.cli.farm_cmd:farm_cmd", "Run many virtual device agents in one process."),
    "connect": (
        "provkit.cli.connect_cmd:connect_cmd",
        "First connection: bootstrap and register from storage.",
    ),
}


@click.group("device", cls=LazyGroup, lazy=_LAZY_DEVICE_COMMANDS)
def device_group() -> None:
    """Run or inspect a device agent (the factory client side)."""


storage_option = click.option("--storage", "storage", required=True, help=STORAGE_HELP)
secret_option = click.option(
    "--secret-file",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="PROVKIT_DEVICE_SECRET_FILE",
    help="The device secret sealing keys, ROT and Entropy (default: <storage>.secret). "
    "Keep it on another medium than the storage; PROVKIT_DEVICE_SECRET (64 hex digits) "
    "gives the secret itself.",
)


@device_group.command("serve")
@click.option(
    "--protocol",
    type=click.Choice(["fcc", "smp"]),
    default="fcc",
    show_default=True,
    help="fcc: provkit frames (FCC bundles, LwM2M blobs); smp: a Zephyr board running Anjay's "
    "provisioning image (SMP file-system group).",
)
@click.option("--ip", default="127.0.0.1", show_default=True, help="IPv4 address to listen on.")
@click.option(
    "--allow-remote",
    is_flag=True,
    help="Allow an --ip other than loopback. The agent's frames are not authenticated: anyone who "
    "reaches the port can provision the device or disable its factory flow.",
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    help="TCP port (fcc, default 7777) or UDP port (smp, default 1337); 0 picks one.",
)
@click.option("--storage", default=":memory:", show_default=True, help=STORAGE_HELP)
@secret_option
@click.option("--serial", "serial_port", metavar="DEVICE", help="Serve on this serial port instead of TCP.")
@click.option("--baud-rate", type=click.IntRange(1), default=115200, show_default=True, help="Serial speed.")
@click.option("--once", is_flag=True, help="Exit after the first connection, like the C example.")
@click.option("--wipe-on-first", is_flag=True, help="Delete all storage before the first bundle of this run.")
@click.option(
    "--atomic-bundles",
    is_flag=True,
    help="Make each bundle all-or-nothing. Real devices are not: by default a refused bundle "
    "keeps what it stored before its failure, as FCC does.",
)
@click.option(
    "--read-timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=60.0,
    show_default=True,
    help="Idle limit: seconds a connection may go without a frame the device answers before "
    "status 12 (network timeout) and close; noise does not restart it. Serial: how long a "
    "frame may stall.",
)
@click.option(
    "--session-timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=DEFAULT_SESSION_TIMEOUT_S,
    show_default=True,
    help="Seconds a connection may stay open, however busy, before status 12 and close.",
)
@click.option(
    "--max-connections",
    type=click.IntRange(1, 1024),
    default=DEFAULT_MAX_CONNECTIONS,
    show_default=True,
    help="Connections served at once; a new one replaces the oldest that sent nothing to serve.",
)
@click.option(
    "--max-message-bytes",
    type=click.IntRange(1, 0xFFFF_FFFF),
    default=DEFAULT_MAX_MESSAGE_BYTES,
    show_default=True,
    help="Larger frames are refused with status 3 (memory out), unread.",
)
@click.option("--endpoint", help="smp: the endpoint name in /factory/endpoint.txt (default: derived).")
@click.option(
    "--files",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    help="smp: a directory served as /lfs (ordinary files over SMP).",
)
@click.option(
    "--buf-size",
    type=click.IntRange(64, 65535),
    default=1024,
    show_default=True,
    help="smp: the board's SMP buffer (largest request).",
)
def serve_cmd(
    protocol: str,
    ip: str,
    allow_remote: bool,
    port: int | None,
    storage: str,
    secret_file: Path | None,
    serial_port: str | None,
    baud_rate: int,
    once: bool,
    wipe_on_first: bool,
    atomic_bundles: bool,
    read_timeout: float,
    session_timeout: float,
    max_connections: int,
    max_message_bytes: int,
    endpoint: str | None,
    files: Path | None,
    buf_size: int,
) -> None:
    """Serve factory tool connections: FCC bundles and LwM2M blobs, or SMP as a Zephyr board."""
    from provkit.transport.bind import check_bind_address

    if serial_port is None:
        check_bind_address(ip, allow_remote=allow_remote)  # before the storage is created
    if protocol == "smp":
        _serve_smp(
            storage,
            secret_file,
            ip,
            allow_remote,
            1337 if port is None else port,
            serial_port,
            baud_rate,
            endpoint,
            files,
            buf_size,
        )
        return
    port = 7777 if port is None else port
    from provkit.device.handlers import device_handlers
    from provkit.transport.agent import DeviceAgent
    from provkit.transport.servers import SerialAgentServer, TcpAgentServer

    with open_device(
        storage, mode="create", secret_file=secret_file, atomic_bundles=atomic_bundles
    ) as device:
        handlers = device_handlers(device.fcc, device.kcm, wipe_on_first=wipe_on_first)
        handlers[CONNECT_TOKEN] = _lazy_connect_handler(device.kcm)
        agent = DeviceAgent(
            handlers,
            max_message_bytes=max_message_bytes,
            read_timeout_s=read_timeout,
            session_timeout_s=session_timeout,
        )
        server: TcpAgentServer | SerialAgentServer
        if serial_port is not None:
            server = SerialAgentServer(agent, serial_port, baud_rate=baud_rate)
        else:
            server = TcpAgentServer(
                agent, ip, port, once=once, allow_remote=allow_remote, max_connections=max_connections
            )
        try:
            with _stop_on_signals(server.shutdown):
                # The factory tool (and scripts) wait for this exact line: flush it at once.
                click.echo(server.ready_line)
                click.echo("Factory Client is waiting for incoming connection...")
                sys.stdout.flush()
                server.serve_forever()
        finally:
            server.close()
        click.echo(f"Factory Client stopped after {agent.frames_served} message(s).")


def _serve_smp(
    storage: str,
    secret_file: Path | None,
    ip: str,
    allow_remote: bool,
    port: int,
    serial_port: str | None,
    baud_rate: int,
    endpoint: str | None,
    files: Path | None,
    buf_size: int,
) -> None:
    """Run a virtual Zephyr board (Anjay's provisioning image) on a serial port or UDP."""
    from provkit.device.smp import AnjayProvisioningImage
    from provkit.transport.smp_server import SmpSerialServer, SmpUdpServer

    with open_device(storage, mode="create", secret_file=secret_file) as device:
        board = AnjayProvisioningImage(device.kcm, endpoint_name=endpoint, files=files, buf_size=buf_size)
        server: SmpSerialServer | SmpUdpServer
        if serial_port is not None:
            server = SmpSerialServer(
                board.handle,
                serial_port,
                baud_rate=baud_rate,
                console_lines=board.console_lines,
                max_message_bytes=buf_size,
            )
        else:
            server = SmpUdpServer(
                board.handle, ip, port, max_message_bytes=buf_size, allow_remote=allow_remote
            )
        try:
            with _stop_on_signals(server.shutdown):
                click.echo(server.ready_line)
                click.echo(f"endpoint: {board.endpoint_name}")
                for line in board.console_lines:
                    click.echo(line)
                sys.stdout.flush()
                server.serve_forever()
        finally:
            server.close()
        click.echo(
            f"SMP server stopped after {server.messages_served} request(s); result: {board.factory.result}"
        )


def _lazy_connect_handler(kcm: Any) -> Any:
    """The end-of-line connect command, its DTLS and CoAP stack loaded on the first request."""
    loaded: list[Any] = []

    def handle(message: bytes) -> bytes:
        if not loaded:
            from provkit.server.command import connect_handler

            loaded.append(connect_handler(kcm))
        return loaded[0](message)  # type: ignore[no-any-return]

    return handle


@contextmanager
def _stop_on_signals(stop: Any) -> Iterator[None]:
    """Call ``stop`` on SIGINT/SIGTERM while the block runs, then restore the old handlers."""

    def handler(signum: int, frame: FrameType | None) -> None:
        del signum, frame
        stop()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _describe_certificate(data: bytes) -> dict[str, str]:
    """Subject and validity of a DER certificate ({} when it does not parse)."""
    from provkit.crypto.x509 import load_certificate
    from provkit.errors import ProvkitError

    try:
        cert = load_certificate(data)
    except (ProvkitError, ValueError):
        return {}
    return {
        "subject": cert.subject.rfc4514_string(),
        "not_before": _iso(cert.not_valid_before_utc),
        "not_after": _iso(cert.not_valid_after_utc),
    }


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _item_rows(device: _Device) -> list[dict[str, Any]]:
    """One row per stored item; certificates get subject/validity, keys only their size."""
    from provkit.device.kcm import ItemType

    rows = []
    for info in device.kcm.list_items():
        item_type = ItemType(info.type)
        row: dict[str, Any] = {
            "type": item_type.name.lower(),
            "name": info.name,
            "size": info.size,
            "factory": bool(info.is_factory),
        }
        if info.chain_length > 1:
            row["chain_length"] = info.chain_length
        if item_type is ItemType.CERTIFICATE:
            # Only certificates are read back; private key bytes never leave the storage here.
            row.update(_describe_certificate(device.kcm.item_get(info.name, item_type)))
        rows.append(row)
    return rows


@device_group.command("show")
@storage_option
@secret_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def show_cmd(storage: str, secret_file: Path | None, as_json: bool) -> None:
    """List stored items: type, name, size, factory flag, certificate subject and validity."""
    with open_device(storage, mode="read", secret_file=secret_file) as device:
        rows = _item_rows(device)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"Device storage {storage}")
    for column in ("Type", "Name", "Size", "Factory", "Subject", "Valid from", "Valid until"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            row["type"] + (f" (chain of {row['chain_length']})" if "chain_length" in row else ""),
            row["name"],
            str(row["size"]),
            "yes" if row["factory"] else "no",
            row.get("subject", ""),
            row.get("not_before", ""),
            row.get("not_after", ""),
        )
    Console(width=200).print(table)
    click.echo(f"{len(rows)} item(s)")


@device_group.command("verify")
@storage_option
@secret_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def verify_cmd(storage: str, secret_file: Path | None, as_json: bool) -> None:
    """Check the device is ready to connect; exit status 1 unless it is."""
    with open_device(storage, mode="read", secret_file=secret_file) as device:
        result = device.fcc.verify_device_configured()
    status = int(result.status)
    info_message = result.message
    warnings = list(result.warnings)
    if as_json:
        click.echo(json.dumps({"status": status, "message": info_message, "warnings": warnings}))
    else:
        click.echo(f"Status: {status}")
        click.echo(f"InfoMessage: {info_message.rstrip()}")
        for warning in warnings:
            click.echo(f"Warning: {warning}")
    if status != 0:
        raise SystemExit(1)


@device_group.command("reset")
@storage_option
@secret_option
def reset_cmd(storage: str, secret_file: Path | None) -> None:
    """Factory reset: restore the factory items, drop everything stored since."""
    with open_device(storage, mode="write", secret_file=secret_file) as device:
        device.fcc.factory_reset()
    click.echo(f"Factory reset done: {storage}")


@device_group.command("erase")
@storage_option
@secret_option
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def erase_cmd(storage: str, secret_file: Path | None, yes: bool) -> None:
    """Delete every item from the device storage (asks first unless --yes)."""
    if not yes:
        click.confirm(f"Erase every item in {storage}?", abort=True)
    with open_device(storage, mode="write", secret_file=secret_file) as device:
        device.fcc.storage_delete()
    click.echo(f"Storage erased: {storage}")
