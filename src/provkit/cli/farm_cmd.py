"""``provkit device farm``: many virtual devices in one process, for lines without hardware."""

from __future__ import annotations

import json
import signal
import threading
from pathlib import Path
from types import FrameType

import click

from provkit.errors import TransportError
from provkit.line.farm import DeviceFarm
from provkit.line.smp_farm import SmpDeviceFarm


@click.command("farm")
@click.option("--count", type=click.IntRange(1, 20000), required=True, help="Number of devices.")
@click.option(
    "--protocol",
    type=click.Choice(["fcc", "smp"]),
    default="fcc",
    show_default=True,
    help="fcc: provkit device agents on TCP; smp: Zephyr boards running Anjay's provisioning image.",
)
@click.option(
    "--link",
    type=click.Choice(["udp", "serial"]),
    default="udp",
    show_default=True,
    help="smp: a UDP port or a pty (a serial port path) per board.",
)
@click.option(
    "--base-port",
    type=click.IntRange(0, 65535),
    default=0,
    show_default=True,
    help="First port (0: ephemeral).",
)
@click.option("--ip", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--allow-remote",
    is_flag=True,
    help="Allow an --ip other than loopback (the devices' frames are not authenticated).",
)
@click.option(
    "--storage",
    default=":memory:",
    show_default=True,
    help="':memory:' or a directory for one SQLite store per device.",
)
@click.option(
    "--atomic-bundles",
    is_flag=True,
    help="Make each bundle all-or-nothing. Real devices are not: by default a refused bundle "
    "keeps what it stored before its failure, as FCC does.",
)
@click.option(
    "--connect",
    is_flag=True,
    help="fcc: after a successful provisioning each device makes its first connection (bootstrap, register).",
)
@click.option(
    "--connect-timeout", type=click.FloatRange(0.1), default=10.0, show_default=True, help="Seconds per step."
)
@click.option(
    "--ports-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write {host, ports, storage} as JSON here once listening.",
)
def farm_cmd(
    count: int,
    protocol: str,
    link: str,
    base_port: int,
    ip: str,
    allow_remote: bool,
    storage: str,
    atomic_bundles: bool,
    connect: bool,
    connect_timeout: float,
    ports_file: Path | None,
) -> None:
    """Run COUNT device agents (or Zephyr boards); print their addresses and serve until interrupted.

    With --connect every device that accepted its bundles connects to the servers it was
    given and prints one JSON line with the outcome (``{"device": i, "ok": …}``).
    """
    if base_port and base_port + count - 1 > 65535:
        raise click.BadParameter("base port + count exceeds 65535", param_hint="--base-port")
    if connect and protocol != "fcc":
        raise click.BadParameter("only fcc devices make their first connection here", param_hint="--connect")
    farm: DeviceFarm | SmpDeviceFarm
    if protocol == "smp":
        farm = SmpDeviceFarm(
            count,
            link="serial" if link == "serial" else "udp",
            host=ip,
            base_port=base_port,
            storage=storage,
            allow_remote=allow_remote,
        ).bind()
        pairs = enumerate(zip(farm.addresses, farm.boards, strict=True))
        lines = [f"device {index} {address} {board.endpoint_name}" for index, (address, board) in pairs]
    else:
        fcc_farm = DeviceFarm(
            count,
            base_port=base_port,
            host=ip,
            storage=storage,
            atomic_bundles=atomic_bundles,
            connect=connect,
            connect_timeout=connect_timeout,
            allow_remote=allow_remote,
        ).bind()
        if connect:
            fcc_farm.on_connection = lambda index, answer: click.echo(json.dumps({"device": index, **answer}))
        farm = fcc_farm
        lines = [f"device {index} {ip}:{port}" for index, port in enumerate(fcc_farm.ports)]
    stop = threading.Event()

    def _on_signal(signum: int, _frame: FrameType | None) -> None:
        stop.set()
        farm.stop()

    previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        for line in lines:
            click.echo(line)
        if ports_file is not None:
            try:
                ports_file.write_text(json.dumps(farm.describe()), encoding="utf-8")
            except OSError as exc:
                raise TransportError(f"cannot write {ports_file}: {exc}") from exc
        click.echo(f"farm of {count} devices ready (Ctrl-C to stop)", err=True)
        farm.serve_forever()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        farm.close()
        click.echo(f"farm stopped after {farm.messages_served} messages", err=True)
