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


@click.command("farm")
@click.option("--count", type=click.IntRange(1, 20000), required=True, help="Number of devices.")
@click.option(
    "--base-port",
    type=click.IntRange(0, 65535),
    default=0,
    show_default=True,
    help="First port (0: ephemeral).",
)
@click.option("--ip", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--storage",
    default=":memory:",
    show_default=True,
    help="':memory:' or a directory for one SQLite store per device.",
)
@click.option(
    "--ports-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write {host, ports, storage} as JSON here once listening.",
)
def farm_cmd(count: int, base_port: int, ip: str, storage: str, ports_file: Path | None) -> None:
    """Run COUNT device agents; print their ports and serve until interrupted."""
    if base_port and base_port + count - 1 > 65535:
        raise click.BadParameter("base port + count exceeds 65535", param_hint="--base-port")
    farm = DeviceFarm(count, base_port=base_port, host=ip, storage=storage).bind()
    stop = threading.Event()

    def _on_signal(signum: int, _frame: FrameType | None) -> None:
        stop.set()
        farm.stop()

    previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        for index, port in enumerate(farm.ports):
            click.echo(f"device {index} {ip}:{port}")
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
