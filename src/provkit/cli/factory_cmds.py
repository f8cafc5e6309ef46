"""Factory tool commands, like Arm's ft_demo: ``init``, ``setup``, ``inject`` and ``demo``.

``inject`` prints the final status as one JSON line::

    {"status": 0, "message": "Command executed successfully",
     "deviceResponse": {"status": 0, "message": "The Factory process succeeded", "warnings": []}}

Failures print the factory tool code (1000–1023) or the FCU code (100–390) as ``status``
and exit with status 1.
"""

from __future__ import annotations

import contextlib
import json
import logging
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import click

from provkit.cli._errors import ProvkitGroup, exit_with
from provkit.cli._links import link_settings_options, link_target
from provkit.cli._state import CliState, ca_key_options
from provkit.codes import FcuErrorCode, FtErrorCode
from provkit.device.kcm import ItemInfo
from provkit.errors import ProvkitError
from provkit.factory import FactoryToolApi, SetupStatus
from provkit.factory.paths import CA_CERT_FILE
from provkit.factory.provision import SUCCESS_MESSAGE, ProvisionOutcome, provision_one
from provkit.transport.link import (
    DEFAULT_BAUD_RATE,
    DEFAULT_CONNECT_TIMEOUT_S,
    DEFAULT_LINK_SETTINGS,
    DEFAULT_RESPONSE_TIMEOUT_S,
    DEFAULT_TCP_PORT,
    LinkSettings,
)
from provkit.transport.spec import FileTarget, LinkTarget, SerialTarget, TcpTarget, parse_link

__all__ = ["SUCCESS_MESSAGE", "demo_cmd", "init_cmd", "inject_cmd", "setup_cmd"]

_log = logging.getLogger(__name__)

_TRANSPORT_HINTS: dict[int, str] = {
    FtErrorCode.DEVICE_COMMUNICATION: "the device's agent rejected the frame; check its log and retry",
    FtErrorCode.INVALID_CHECKSUM: "the response was corrupted on the way: check the cable or baud rate",
    FtErrorCode.TOKEN_TIMEOUT: (
        "no answer from the device: is its agent running (provkit device serve) on that port? "
        "Raise -t for slow devices"
    ),
    FtErrorCode.SERIAL_CONNECT_FAILED: "close any other program using the port and check your access rights",
    FtErrorCode.SERIAL_READ_FAILED: "the device closed or reset the serial line: check its log and reconnect",
    FtErrorCode.SERIAL_PORT_NOT_CONNECTED: "pass one of the available ports with --port",
    FtErrorCode.TCP_CONNECT_FAILED: "check that 'provkit device serve' is listening on that --ip and --port",
    FtErrorCode.TCP_RECEIVE_FAILED: "the device closed or reset the connection: check its log and retry",
    FtErrorCode.TCP_SEND_FAILED: "the device closed or reset the connection: check its log and retry",
}
"""What to do about a transport failure whose error carries no hint of its own (CLI flags named)."""


def report(outcome: ProvisionOutcome) -> None:
    """Print the enrollment id and the JSON status; exit 1 on failure."""
    if outcome.enrollment_id:
        click.echo(f"enrollment id: {outcome.enrollment_id}")
    click.echo(json.dumps(outcome.to_json()))
    hint = outcome.hint or (None if outcome.error is None else _TRANSPORT_HINTS.get(outcome.status))
    if hint:
        click.echo(f"Hint: {hint}", err=True)
    if not outcome.ok:
        raise SystemExit(1)


def _state(ctx: click.Context) -> CliState:
    state = ctx.find_object(CliState)
    return state if state is not None else CliState()


def _api(ctx: click.Context) -> FactoryToolApi:
    return _state(ctx).factory_api()


# ---------------------------------------------------------------- init / setup


@click.command("init")
@click.argument("directory", required=False, type=click.Path(file_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Overwrite an existing config/fcu.yml.")
@click.pass_context
def init_cmd(ctx: click.Context, directory: Path | None, force: bool) -> None:
    """Write a commented config/fcu.yml template and resources/ into DIRECTORY."""
    from provkit.factory.home import init_home

    home = directory or _state(ctx).home_dir or Path.cwd()
    paths = init_home(home, force=force)
    click.echo(f"wrote {paths.config_file}")
    click.echo(f"put your server CA certificates in {paths.resources}, edit fcu.yml, then run:")
    click.echo(f"  provkit --home-dir {paths.home} setup")


@click.command("setup")
@click.option("-f", "--force", is_flag=True, help="Replace an existing factory CA key and certificate.")
@click.option(
    "--ca-certificate",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Intermediate mode: install the CA certificate signed from keystore/fcu.csr (PEM chain or DER).",
)
@ca_key_options
@click.option(
    "--upload-ca",
    "upload_url",
    metavar="URL",
    help="Then upload the factory CA to this Device Management API (e.g. provkit server's) as trusted.",
)
@click.option(
    "--upload-service",
    type=click.Choice(["bootstrap", "lwm2m"]),
    default="bootstrap",
    show_default=True,
    help="The server that is to accept the CA's devices.",
)
@click.option(
    "--api-key",
    envvar="PROVKIT_API_KEY",
    help="Administrators API key for --upload-ca [default: $PROVKIT_API_KEY, else the saved developer key].",
)
@click.pass_context
def setup_cmd(
    ctx: click.Context,
    force: bool,
    ca_certificate: Path | None,
    ca_key: str | None,
    pkcs11_module: Path | None,
    pin_file: Path | None,
    upload_url: str | None,
    upload_service: str,
    api_key: str | None,
) -> None:
    """Create the factory CA (keystore/fcu_key.pem and keystore/fcu.crt).

    The CA key is encrypted with $PROVKIT_CA_PASSPHRASE when it is set. With --ca-key URI
    (or certificate-authority-key in fcu.yml) the key is generated inside that PKCS#11 token
    instead and the keystore records its URI (fcu_key.pkcs11), never a key; the PIN comes
    from --pin-file or $PROVKIT_PKCS11_PIN. With setup-ca-as-intermediate: true, setup writes
    keystore/fcu.csr; have it signed, then run 'provkit setup --ca-certificate signed.pem'.

    With --upload-ca URL the CA is then uploaded to that Device Management API's trusted
    certificates (POST /v3/trusted-certificates), so its server accepts the CA's devices;
    a CA made before is uploaded as it is.
    """
    state = _state(ctx)
    state = replace(
        state,
        ca_key=ca_key or state.ca_key,
        pkcs11_module=pkcs11_module or state.pkcs11_module,
        pin_file=pin_file or state.pin_file,
    )
    try:
        api = state.factory_api()
        if ca_certificate is not None:
            status = api.install_ca_certificate(ca_certificate)
        else:
            status = api.setup_factory_configurator_utility(override_existing_ca=force)
    except ProvkitError as failure:  # e.g. 190: the FCU directories cannot be resolved
        status = SetupStatus.failed(failure)
    except Exception as exc:  # FCU errors come back in the status; anything else is ft_demo's 1005
        _log.debug("setup failed unexpectedly", exc_info=True)
        status = SetupStatus.failed(
            ProvkitError(
                FtErrorCode.SETUP_FAILED.format(), code=int(FtErrorCode.SETUP_FAILED), hint=f"{exc!r}"
            )
        )
    for warning in status.warnings:
        click.echo(f"warning: {warning.message}", err=True)
    existing = status.status == int(FcuErrorCode.FILE_ALREADY_EXISTS) and not force and ca_certificate is None
    if upload_url is not None and existing:
        # Only the upload was wanted of a home set up before: upload the CA it has.
        status = SetupStatus(status=0, ca_certificate=str(state.factory_api().paths.keystore / CA_CERT_FILE))
        click.echo("the factory CA exists already; uploading it", err=True)
    if not status.ok and not status.csr:
        # Setup refused or failed, or the CA it wrote does not load back: never report success.
        error = status.errors[0] if status.errors else None
        message = error.message if error else f"setup failed with status {status.status}"
        click.echo(json.dumps({"status": status.status, "message": message}))
        hint = error.hint if error and error.hint else "fix the error above, then run 'provkit setup -f'"
        click.echo(f"Hint: {hint}", err=True)
        raise SystemExit(1)
    body: dict[str, Any] = {"status": status.status, "message": SUCCESS_MESSAGE}
    if status.csr:
        body["csr"] = status.csr
        if not status.ok:
            body["message"] = f"CSR written to {status.csr}: have it signed, then run setup --ca-certificate"
            body["status"] = 0
    if status.ca_certificate:
        body["caCertificate"] = status.ca_certificate
    if upload_url is not None and status.ok and status.ca_certificate:
        body["uploaded"] = _upload_ca(Path(status.ca_certificate), upload_url, upload_service, api_key)
    click.echo(json.dumps(body))


def _upload_ca(ca_file: Path, url: str, service: str, api_key: str | None) -> dict[str, Any]:
    from provkit.developer import upload_ca_certificate

    try:
        uploaded = upload_ca_certificate(ca_file, key=api_key, service=service, host=url)
    except ProvkitError as exc:
        if exc.hint is None:
            exc.hint = f"the factory CA is in {ca_file}; retry with: provkit setup --upload-ca {url}"
        exit_with(exc)
    return {key: uploaded.get(key) for key in ("id", "name", "service", "status")}


# ---------------------------------------------------------------- inject


class _TransportGroup(ProvkitGroup):
    """The inject transports; ft_demo's spelling ``to_file`` is accepted for ``to-file``."""

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """Return the transport command, accepting ``_`` for ``-``."""
        return super().get_command(ctx, cmd_name) or super().get_command(ctx, cmd_name.replace("_", "-"))


@click.group("inject", cls=_TransportGroup, subcommand_metavar="TRANSPORT [ARGS]...")
@click.option("--endpoint-name", required=True, help="The device's endpoint name (certificate CN).")
@click.option("--serial-number", required=True, help="The device's serial number.")
@click.option(
    "--device-keys-location",
    type=click.Path(file_okay=False),
    help="Folder of externally supplied keys, certificates and entropy.bin.",
)
@click.pass_context
def inject_cmd(
    ctx: click.Context, endpoint_name: str, serial_number: str, device_keys_location: str | None
) -> None:
    """Provision one device: prepare its bundle, write it over TRANSPORT, verify the answer."""
    ctx.meta["provkit.inject"] = (endpoint_name, serial_number, device_keys_location)


def _run_inject(
    ctx: click.Context,
    target: LinkTarget,
    settings: LinkSettings = DEFAULT_LINK_SETTINGS,
    *,
    written: Path | None = None,
) -> None:
    endpoint_name, serial_number, keys = ctx.meta["provkit.inject"]
    try:
        api = _api(ctx)
    except ProvkitError as error:
        report(ProvisionOutcome.failed(error))
        return
    outcome = provision_one(
        api, target, endpoint_name, serial_number, device_keys_location=keys, settings=settings
    )
    if written is not None and written.is_file():
        click.echo(
            f"Warning: {written} holds the bundle in clear, with the device's private key when the "
            "factory generates it (by_tool); it is readable by you only (0600): deliver it, then delete it",
            err=True,
        )
    report(outcome)


@inject_cmd.command("tcp")
@click.option("--ip", required=True, help="The device's IPv4 address.")
@click.option("--port", default=DEFAULT_TCP_PORT, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "-t",
    "--connection-timeout",
    default=DEFAULT_CONNECT_TIMEOUT_S,
    show_default=True,
    type=click.FloatRange(min=0.1),
    help="s",
)
@click.pass_context
def inject_tcp(ctx: click.Context, ip: str, port: int, connection_timeout: float) -> None:
    """Inject over TCP to a device agent (the link spec tcp:IP:PORT)."""
    settings = replace(DEFAULT_LINK_SETTINGS, connect_timeout_s=connection_timeout)
    _run_inject(ctx, link_target(lambda: TcpTarget(ip, port)), settings)


@inject_cmd.command("serial")
@click.option("--port", required=True, help="Serial device, e.g. /dev/ttyACM0 or COM3.")
@click.option("--baud-rate", default=DEFAULT_BAUD_RATE, show_default=True, type=click.IntRange(min=1))
@click.option(
    "-t",
    "--timeout",
    default=DEFAULT_RESPONSE_TIMEOUT_S,
    show_default=True,
    type=click.FloatRange(min=0.1),
    help="s",
)
@click.pass_context
def inject_serial(ctx: click.Context, port: str, baud_rate: int, timeout: float) -> None:
    """Inject over a serial port, device log lines skipped (the link spec serial:PORT@BAUD)."""
    settings = replace(DEFAULT_LINK_SETTINGS, timeout_s=timeout)
    _run_inject(ctx, link_target(lambda: SerialTarget(port, baud_rate)), settings)


@inject_cmd.command("to-file")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.pass_context
def inject_to_file(ctx: click.Context, path: Path) -> None:
    """Write the framed bundle to PATH instead of a device, no verification (the link spec file:PATH)."""
    _run_inject(ctx, link_target(lambda: FileTarget(path)), written=path)


@inject_cmd.command("link")
@click.argument("spec", metavar="SPEC")
@link_settings_options()
@click.pass_context
def inject_link(ctx: click.Context, spec: str, settings: LinkSettings) -> None:
    """Inject to the device SPEC names: tcp:HOST:PORT, serial:PORT[@BAUD] or file:PATH."""
    written = None
    with contextlib.suppress(ProvkitError):  # an unreadable spec is reported by the inject itself
        parsed = parse_link(spec)
        written = parsed.path if isinstance(parsed, FileTarget) else None
    _run_inject(ctx, link_target(lambda: parse_link(spec)), settings, written=written)


# ---------------------------------------------------------------- demo


def _describe_item(item: ItemInfo) -> str:
    return f"{item.type.name.lower():<12} {item.name} ({item.size} bytes)"


@click.command("demo")
@click.option("--endpoint-name", default="demo-device-0001", show_default=True)
@click.option("--serial-number", default="DEMO-SN-0001", show_default=True)
def demo_cmd(endpoint_name: str, serial_number: str) -> None:
    """Provision a virtual device on loopback with the embedded defaults (no setup needed).

    The demo FCU home is temporary and its server CA certificates are DEMO-only: they
    exist so the virtual device can verify its bundle, nothing more.
    """
    from provkit.line.demo import run_demo

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="provkit-demo-") as home:
        result = run_demo(Path(home), endpoint_name, serial_number)
    report(result.outcome)
    click.echo("device stores:")
    for item in result.stored:
        click.echo(f"  {_describe_item(item)}")
    click.echo(f"demo finished in {time.perf_counter() - started:.2f} s")
