"""``provkit device connect``: a provisioned device's first connection, from its storage."""

from __future__ import annotations

import json
from typing import Any

import click

from provkit.cli.device_cmds import STORAGE_HELP, open_device


@click.command("connect")
@click.option("--storage", "storage", required=True, help=STORAGE_HELP)
@click.option(
    "--endpoint", help="Endpoint name to use (Anjay-style stores hold none; default: the stored one)."
)
@click.option("--bootstrap", is_flag=True, help="Bootstrap even when an LwM2M server account is stored.")
@click.option("--deregister", is_flag=True, help="De-register right after registering.")
@click.option(
    "--timeout", type=click.FloatRange(min=0.1), default=10.0, show_default=True, help="Seconds per step."
)
def connect_cmd(
    storage: str, endpoint: str | None, bootstrap: bool, deregister: bool, timeout: float
) -> None:
    """Bootstrap (when needed) and register with the servers the device was provisioned for.

    Prints the outcome as JSON; a failure exits 1 with its class (tls-alert, ca-untrusted,
    cn-mismatch, revoked, timeout, refused, unreachable, device-config) and code.
    """
    from provkit.cli._errors import format_error
    from provkit.errors import ProvkitError
    from provkit.server.command import failure_answer
    from provkit.server.connect import connect_device

    # Written to: a bootstrap stores the LwM2M server account the bootstrap server issued.
    with open_device(storage, mode="write") as device:
        try:
            result = connect_device(
                device.kcm,
                endpoint_name=endpoint,
                force_bootstrap=bootstrap,
                timeout=timeout,
                deregister=deregister,
            )
        except ProvkitError as exc:
            answer: dict[str, Any] = failure_answer(exc)
            click.echo(json.dumps(answer))
            click.echo(format_error(exc), err=True)
            raise SystemExit(1) from None
    click.echo(json.dumps({"ok": True, **result.as_dict()}))
