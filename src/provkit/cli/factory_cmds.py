"""Factory tool commands, like Arm's ft_demo: ``init``, ``setup``, ``inject`` and ``demo``.

``inject`` prints the final status as one JSON line::

    {"status": 0, "message": "Command executed successfully",
     "deviceResponse": {"status": 0, "message": "The Factory process succeeded", "warnings": []}}

Failures print the factory tool code (1000–1023) or the FCU code (100–390) as ``status``
and exit with status 1.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import click

from provkit.cli._errors import exit_with
from provkit.cli._state import CliState, ca_key_options
from provkit.codes import FcuErrorCode, FtErrorCode
from provkit.errors import DeviceResponseError, ProvkitError
from provkit.factory import DeviceResponseStatus, FactoryToolApi, SetupStatus
from provkit.factory.paths import CA_CERT_FILE
from provkit.transport.links import DeviceLink, FileLink, SerialLink, TcpLink

SUCCESS_MESSAGE = "Command executed successfully"

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
"""What to do about a transport failure whose error carries no hint of its own."""


def _failure(error: ProvkitError, enrollment_id: str | None = None) -> InjectOutcome:
    code = error.code if error.code is not None else int(FtErrorCode.GENERAL)
    hint = error.hint or _TRANSPORT_HINTS.get(code)
    return InjectOutcome(code, error.message, enrollment_id=enrollment_id, hint=hint)


@dataclass(frozen=True, slots=True)
class InjectOutcome:
    """The final status of one injection, ready to print.

    Attributes:
        status: 0, a factory tool code (1000–1023) or an FCU code (100–390).
        message: what happened.
        device: the device's answer, when one was received.
        enrollment_id: the first-to-claim enrollment id, if any.
        hint: what to fix, for failures.
    """

    status: int
    message: str
    device: DeviceResponseStatus | None = None
    enrollment_id: str | None = None
    hint: str | None = None

    def as_json(self) -> dict[str, Any]:
        """The ft_demo-style status object."""
        body: dict[str, Any] = {"status": self.status, "message": self.message}
        if self.device is not None:
            body["deviceResponse"] = {
                "status": self.device.status,
                "message": self.device.message,
                "warnings": [warning.message for warning in self.device.warnings],
            }
        return body


def inject_device(
    api: FactoryToolApi,
    link: DeviceLink,
    endpoint_name: str,
    serial_number: str,
    *,
    device_keys_location: str | None = None,
    timeout_s: float | None = None,
) -> InjectOutcome:
    """Prepare, write and verify one device; never raises for provkit errors.

    Returns:
        The outcome: status 0 on success; 1004 when the device refused the bundle; the
        transport or FCU code otherwise.
    """
    enrollment = None
    try:
        request = api.prepare_device_configuration(endpoint_name, serial_number, device_keys_location)
        for warning in request.warnings:
            _log.warning("FCU warning %d: %s", warning.code, warning.message)
        writes_only = not link.returns_responses
        if writes_only and request.needs_csr_response:
            return InjectOutcome(
                int(FtErrorCode.GENERAL),
                FtErrorCode.GENERAL.format("by_device key generation needs a live device, not a file"),
            )
        response = link.exchange(request.config_data, timeout_s=timeout_s)
        _log.debug("sent %d bytes, device answered %d bytes", len(request.config_data), len(response))
        if request.needs_csr_response:
            request = api.complete_device_configuration(request, response)
            response = link.exchange(request.config_data, timeout_s=timeout_s)
        enrollment = request.enrollment_id
        if writes_only:
            return InjectOutcome(0, SUCCESS_MESSAGE, enrollment_id=enrollment)
        status = api.verify_device_response(endpoint_name, response)
    except DeviceResponseError as error:
        code = error.code or 0
        device = DeviceResponseStatus(code, error.message)
        return InjectOutcome(
            int(FtErrorCode.DEVICE_EXECUTION_FAILED),
            FtErrorCode.DEVICE_EXECUTION_FAILED.format(code),
            device,
            enrollment,
        )
    except ProvkitError as error:
        return _failure(error, enrollment)
    if not status.ok:
        return InjectOutcome(
            int(FtErrorCode.DEVICE_EXECUTION_FAILED),
            FtErrorCode.DEVICE_EXECUTION_FAILED.format(status.status),
            status,
            enrollment,
        )
    return InjectOutcome(0, SUCCESS_MESSAGE, status, enrollment)


def report(outcome: InjectOutcome) -> None:
    """Print the enrollment id and the JSON status; exit 1 on failure."""
    if outcome.enrollment_id:
        click.echo(f"enrollment id: {outcome.enrollment_id}")
    click.echo(json.dumps(outcome.as_json()))
    if outcome.hint:
        click.echo(f"Hint: {outcome.hint}", err=True)
    if outcome.status != 0:
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


class _TransportGroup(click.Group):
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
    ctx: click.Context, link: TcpLink | SerialLink | FileLink, timeout_s: float | None = None
) -> None:
    endpoint_name, serial_number, keys = ctx.meta["provkit.inject"]
    try:
        api = _api(ctx)
        with link:
            outcome = inject_device(
                api, link, endpoint_name, serial_number, device_keys_location=keys, timeout_s=timeout_s
            )
    except ProvkitError as error:
        outcome = _failure(error)
    report(outcome)


@inject_cmd.command("tcp")
@click.option("--ip", required=True, help="The device's IPv4 address.")
@click.option("--port", default=7777, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "-t", "--connection-timeout", default=30.0, show_default=True, type=click.FloatRange(min=0.1), help="s"
)
@click.pass_context
def inject_tcp(ctx: click.Context, ip: str, port: int, connection_timeout: float) -> None:
    """Inject over TCP to a device agent."""
    _run_inject(ctx, TcpLink(ip, port, connect_timeout_s=connection_timeout))


@inject_cmd.command("serial")
@click.option("--port", required=True, help="Serial device, e.g. /dev/ttyACM0 or COM3.")
@click.option("--baud-rate", default=115200, show_default=True, type=click.IntRange(min=1))
@click.option("-t", "--timeout", default=30.0, show_default=True, type=click.FloatRange(min=0.1), help="s")
@click.pass_context
def inject_serial(ctx: click.Context, port: str, baud_rate: int, timeout: float) -> None:
    """Inject over a serial port (device log lines are skipped)."""
    _run_inject(ctx, SerialLink(port, baud_rate=baud_rate), timeout)


@inject_cmd.command("to-file")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.pass_context
def inject_to_file(ctx: click.Context, path: Path) -> None:
    """Write the framed bundle to PATH instead of a device (no verification)."""
    _run_inject(ctx, FileLink(path))


# ---------------------------------------------------------------- demo


def run_demo(home: Path, endpoint_name: str, serial_number: str) -> tuple[InjectOutcome, list[str]]:
    """Provision an in-process virtual device from a fresh demo FCU home in ``home``.

    Creates the home from the embedded template with DEMO server CA certificates, runs
    setup, serves a memory-backed device agent on 127.0.0.1 (a free port), injects over
    TCP and returns the outcome with a summary of the items the device stored.
    """
    # Imported here: only the demo needs the device side in the factory tool's process.
    from provkit.device.fcc import FactoryConfiguratorClient
    from provkit.device.handlers import fcc_handler
    from provkit.device.kcm import Kcm
    from provkit.device.storage import MemoryStorage
    from provkit.factory.home import make_demo_home
    from provkit.transport.agent import DeviceAgent, serve_tcp
    from provkit.wire.framing import FCC_TOKEN

    paths = make_demo_home(home)
    api = FactoryToolApi(paths.home, paths.resources, paths.keystore, paths.config_file)
    setup = api.setup_factory_configurator_utility()
    if not setup.ok:  # e.g. an unusable PROVKIT_CA_PASSPHRASE: report it, do not inject
        error = setup.errors[0]
        return InjectOutcome(setup.status, error.message, hint=error.hint), []
    kcm = Kcm(MemoryStorage())
    agent = DeviceAgent({FCC_TOKEN: fcc_handler(FactoryConfiguratorClient(kcm))})
    with serve_tcp(agent, "127.0.0.1", 0) as server, TcpLink(*server.address, connect_timeout_s=5) as link:
        outcome = inject_device(api, link, endpoint_name, serial_number, timeout_s=10)
    items = [_describe_item(item) for item in kcm.list_items()]
    return outcome, items


def _describe_item(item: object) -> str:
    name = getattr(item, "name", str(item))
    kind = getattr(item, "item_type", getattr(item, "type", ""))
    kind_name = getattr(kind, "name", str(kind)).lower()
    size = getattr(item, "size", None)
    return f"{kind_name:<12} {name}" + (f" ({size} bytes)" if size is not None else "")


@click.command("demo")
@click.option("--endpoint-name", default="demo-device-0001", show_default=True)
@click.option("--serial-number", default="DEMO-SN-0001", show_default=True)
def demo_cmd(endpoint_name: str, serial_number: str) -> None:
    """Provision a virtual device on loopback with the embedded defaults (no setup needed).

    The demo FCU home is temporary and its server CA certificates are DEMO-only: they
    exist so the virtual device can verify its bundle, nothing more.
    """
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="provkit-demo-") as home:
        outcome, items = run_demo(Path(home), endpoint_name, serial_number)
    report(outcome)
    click.echo("device stores:")
    for line in items:
        click.echo(f"  {line}")
    click.echo(f"demo finished in {time.perf_counter() - started:.2f} s")
