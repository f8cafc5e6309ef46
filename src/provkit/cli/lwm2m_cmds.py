"""``provkit lwm2m …``: build, inspect, provision and register LwM2M SenML configurations.

Options mirror the reference tool's ``ptool.py``: ``-c ENDPOINT_CFG``, ``-e URN``,
``-s SERVER``, ``-t TOKEN``, ``-C CERT``, ``-k PKEY``, ``-r PCERT``, ``-p SCERT``; plus
``--factory-ca`` to have the provkit factory CA (of ``provkit --home-dir``) sign the
generated certificate instead of self-signing it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from provkit.cli._errors import ProvkitGroup
from provkit.cli._links import device_options, link_settings_options
from provkit.cli._state import CliState
from provkit.errors import ProvkitError
from provkit.transport.link import DEFAULT_BAUD_RATE, LinkSettings
from provkit.transport.spec import FileTarget, LinkTarget, SmpTarget

_PATH = click.Path(dir_okay=False, path_type=Path)
_EXISTING = click.Path(exists=True, dir_okay=False, path_type=Path)


def _tool_options(func: Any) -> Any:
    options = [
        click.option(
            "-c",
            "--endpoint_cfg",
            "endpoint_cfg",
            type=_EXISTING,
            required=True,
            help="Endpoint configuration (YAML or JSON).",
        ),
        click.option("-e", "--URN", "urn", help="Endpoint name (certificate CN, registration)."),
        click.option(
            "-C", "--cert", "cert", type=_EXISTING, help="Cert-config JSON: generate key and certificate."
        ),
        click.option("-k", "--pkey", "pkey", type=_EXISTING, help="Endpoint private key (DER/PEM), with -r."),
        click.option(
            "-r", "--pcert", "pcert", type=_EXISTING, help="Endpoint certificate (DER/PEM), with -k."
        ),
        click.option("-p", "--scert", "scert", type=_EXISTING, help="Server certificate (DER/PEM)."),
        click.option(
            "--factory-ca",
            "factory_ca",
            is_flag=True,
            help="Generate the certificate signed by the factory CA of --home-dir (P-256), not self-signed.",
        ),
        click.option(
            "--target",
            type=click.Choice(["anjay", "generic"]),
            default="anjay",
            show_default=True,
            help="Device client: 'anjay' refuses resources Anjay cannot take; 'generic' allows the registry.",
        ),
        click.option(
            "--allow-unverified-server",
            is_flag=True,
            help="Allow certificate mode without a server certificate (-p): the device trusts any server.",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _prepare(
    endpoint_cfg: Path,
    urn: str | None,
    cert: Path | None,
    pkey: Path | None,
    pcert: Path | None,
    scert: Path | None,
    factory_ca: bool,
    target: str,
    allow_unverified_server: bool,
    server: Path | None = None,
    token: str | None = None,
) -> Any:
    """Build the FactoryProvisioning and install certificates the way ``ptool.py`` does."""
    from provkit.factory.lwm2m import FactoryProvisioning

    _check_credentials(pkey, pcert, cert, factory_ca)
    fp = FactoryProvisioning(
        endpoint_cfg, urn, server, token, cert, target=target, allow_unverified_server=allow_unverified_server
    )
    if not fp.cert_instances():
        if any(x is not None for x in (cert, pkey, scert)) or factory_ca:
            click.echo("warning: no Security instance uses a certificate mode; -C/-k/-r/-p ignored", err=True)
        return fp
    if scert is not None:
        fp.set_server_cert(scert)
    if factory_ca:
        state = click.get_current_context().find_object(CliState) or CliState()
        fp.generate_self_signed_cert(ca=state.factory_api().factory_ca)
    elif cert is not None:
        fp.generate_self_signed_cert()
    elif pkey is not None and pcert is not None:
        fp.set_endpoint_cert_and_key(pkey, pcert)
    return fp


@click.group("lwm2m", cls=ProvkitGroup)
def lwm2m_group() -> None:
    """LwM2M factory provisioning: SenML CBOR blobs of Security/Server/Device objects."""


@lwm2m_group.command("build")
@_tool_options
@click.option("-o", "--output", type=_PATH, required=True, help="Where to write the SenML CBOR blob.")
@click.option("--json", "json_out", type=_PATH, help="Also write the records as SenML JSON.")
def build_cmd(
    endpoint_cfg: Path,
    urn: str | None,
    cert: Path | None,
    pkey: Path | None,
    pcert: Path | None,
    scert: Path | None,
    factory_ca: bool,
    target: str,
    allow_unverified_server: bool,
    output: Path,
    json_out: Path | None,
) -> None:
    """Build a provisioning blob from an endpoint configuration."""
    from provkit.factory.lwm2m.provisioning import write_output
    from provkit.lwm2m.senml_json import encode_json

    fp = _prepare(endpoint_cfg, urn, cert, pkey, pcert, scert, factory_ca, target, allow_unverified_server)
    blob = fp.provision_device(output=output)
    if json_out is not None:
        write_output(json_out, (encode_json(fp.config.entries(), indent=1) + "\n").encode("utf-8"))
    click.echo(f"wrote {len(blob)} bytes, {len(fp.config.entries())} resources to {output}")


def _shown(value: object, secret: bool, reveal: bool, *, full: bool = False) -> object:
    """Return a value for display: secrets masked, bytes as hex (shortened unless ``full``).

    With ``full`` (JSON output) numbers and booleans stay JSON numbers and booleans.
    """
    if isinstance(value, bytes):
        if secret and not reveal:
            return f"<{len(value)} secret bytes>"
        return value.hex() if full or len(value) <= 32 else f"{value[:32].hex()}… ({len(value)} bytes)"
    if full and (value is None or isinstance(value, bool | int | float | str)):
        return value
    return str(value)


@lwm2m_group.command("inspect")
@click.argument("blob", type=_EXISTING)
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option(
    "--generic", is_flag=True, help="Decode any RFC 8428 pack instead of applying the device rules."
)
@click.option("--reveal", is_flag=True, help="Show secret values (Secret Key) instead of masking them.")
def inspect_cmd(blob: Path, fmt: str, generic: bool, reveal: bool) -> None:
    """Show the records of a SenML CBOR blob as a table or JSON."""
    from provkit.lwm2m.objects import resource_spec
    from provkit.lwm2m.senml_cbor import decode_cbor
    from provkit.lwm2m.strict import decode_strict

    data = blob.read_bytes()
    full = fmt == "json"
    rows: list[dict[str, object]] = []
    if generic:
        for record in decode_cbor(data):
            rows.append(
                {
                    "path": record.name,
                    "label": record.label,
                    "value": _shown(record.value, False, True, full=full),
                }
            )
    else:
        from provkit.lwm2m.senml import value_label

        for entry in decode_strict(data):
            oid, _, rid, *_ = entry.ids
            spec = resource_spec(oid, rid)
            rows.append(
                {
                    "path": entry.path,
                    "resource": spec.name if spec else "?",
                    "label": value_label(entry.value),
                    "value": _shown(entry.value, bool(spec and spec.secret), reveal, full=full),
                }
            )
    if fmt == "json":
        click.echo(json.dumps(rows, indent=1, ensure_ascii=False))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{blob.name}: {len(rows)} records, {len(data)} bytes")
    for column in rows[0] if rows else ("path",):
        table.add_column(column)
    for row in rows:
        table.add_row(*(str(v) for v in row.values()))
    Console().print(table)


@lwm2m_group.group("provision", cls=ProvkitGroup, invoke_without_command=True)
@_tool_options
@click.option("-s", "--server", type=_EXISTING, help="Coiote server JSON (url, port, domain).")
@click.option("-t", "--token", help="Coiote access token.")
@device_options(required=False)
@link_settings_options()
@click.pass_context
def provision_cmd(
    ctx: click.Context,
    endpoint_cfg: Path,
    urn: str | None,
    cert: Path | None,
    pkey: Path | None,
    pcert: Path | None,
    scert: Path | None,
    factory_ca: bool,
    target: str,
    allow_unverified_server: bool,
    server: Path | None,
    token: str | None,
    device: LinkTarget | None,
    settings: LinkSettings,
) -> None:
    """Provision a device: a provkit agent (--link, --tcp, --serial, --file) or a Zephyr board (smp-*).

    Registers the device if -s and -t are given and the endpoint name is known (-e, or read
    from a Zephyr board).
    """
    _check_credentials(pkey, pcert, cert, factory_ca)
    if ctx.invoked_subcommand is not None:
        if device is not None:
            raise click.UsageError(f"--link/--tcp/--serial/--file do not go with {ctx.invoked_subcommand}")
        return
    if device is None:
        raise click.UsageError(
            "give exactly one of --tcp, --serial, --file, --link, or a subcommand (smp-serial, smp-udp)"
        )
    if isinstance(device, SmpTarget):  # --link smp-serial:… / smp-udp:…: a Zephyr board, SMP defaults
        _provision_board(ctx.params, device.open_files(), endpoint_from_device=True, no_progress=False)
        return
    fp = _prepare(
        endpoint_cfg,
        urn,
        cert,
        pkey,
        pcert,
        scert,
        factory_ca,
        target,
        allow_unverified_server,
        server,
        token,
    )
    fp.provision_device(device, settings=settings)
    if fp.last_result is None:
        click.echo(f"wrote framed request to {device.path if isinstance(device, FileTarget) else device}")
    else:
        click.echo(f"device accepted {fp.last_result.written} resources")
    _register(fp, server, token)


def _check_credentials(pkey: Path | None, pcert: Path | None, cert: Path | None, factory_ca: bool) -> None:
    if (pkey is None) != (pcert is None):
        raise click.UsageError("-k/--pkey and -r/--pcert go together")
    if pkey is not None and (cert is not None or factory_ca):
        raise click.UsageError("give -C/--factory-ca (generate) or -k and -r (existing), not both")


def _register(fp: Any, server: Path | None, token: str | None) -> None:
    if server is not None and token and fp.endpoint_name:
        fp.register()
        click.echo(f"registered {fp.endpoint_name}")
    elif server is not None or token:
        click.echo(
            "warning: registration needs -s, -t and an endpoint name together; not registered", err=True
        )


def _smp_options(func: Any) -> Any:
    options = [
        click.option(
            "--endpoint-from-device/--no-endpoint-from-device",
            default=True,
            show_default=True,
            help="Read the endpoint name from /factory/endpoint.txt (-e overrides it).",
        ),
        click.option(
            "--mtu",
            type=click.IntRange(64, 65535),
            help="Serial: the device's SMP buffer; UDP: the link MTU (default: the device's / 1500).",
        ),
        click.option(
            "--chunk-size",
            type=click.IntRange(1, 65535),
            default=512,
            show_default=True,
            help="Most data bytes per upload request (Anjay's provisioning image takes 512).",
        ),
        click.option(
            "--timeout",
            "timeout_s",
            type=click.FloatRange(0.05),
            default=5.0,
            show_default=True,
            help="Seconds one request waits for its answer.",
        ),
        click.option(
            "--retries",
            type=click.IntRange(0, 100),
            default=3,
            show_default=True,
            help="More tries of a request (a chunk) without an answer.",
        ),
        click.option("--no-progress", is_flag=True, help="Do not draw the upload progress bar."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _smp_settings(mtu: int | None, chunk_size: int, timeout_s: float, retries: int) -> Any:
    from provkit.transport.smp_link import SmpSettings

    return SmpSettings(timeout_s=timeout_s, retries=retries, chunk_size=chunk_size, mtu=mtu)


def _parent_options(ctx: click.Context) -> dict[str, Any]:
    """The ``provision`` group's options, for its smp-* subcommands."""
    return dict(ctx.parent.params) if ctx.parent is not None else {}


def _provision_board(
    opts: dict[str, Any], link: Any, endpoint_from_device: bool, no_progress: bool, wait_ready_s: float = 0.0
) -> None:
    """Run the Zephyr board flow with the parent command's options; print the outcome."""
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, ProgressColumn, Task, TextColumn
    from rich.text import Text

    from provkit.factory.lwm2m.zephyr import provision_board, wait_until_ready

    class BytesPerSecond(ProgressColumn):
        """The upload's rate so far (bytes the device holds over the time since the bar appeared)."""

        def render(self, task: Task) -> Text:
            elapsed = task.finished_time if task.finished else task.elapsed
            rate = task.completed / elapsed if elapsed else 0.0
            return Text(f"{rate:,.0f} B/s", style="progress.data.speed")

    urn = opts["urn"]
    if urn is None and not endpoint_from_device:
        raise click.UsageError("give -e/--URN, or read it with --endpoint-from-device")

    def prepare(endpoint: str) -> Any:
        return _prepare(
            opts["endpoint_cfg"],
            endpoint,
            opts["cert"],
            opts["pkey"],
            opts["pcert"],
            opts["scert"],
            opts["factory_ca"],
            opts["target"],
            opts["allow_unverified_server"],
            opts["server"],
            opts["token"],
        )

    bar = Progress(
        TextColumn("upload"),
        BarColumn(),
        DownloadColumn(),
        BytesPerSecond(),
        console=Console(stderr=True),
        disable=no_progress,
    )
    tasks: list[Any] = []

    def show(held: int, total: int) -> None:
        if not tasks:  # the bar appears with the upload, after the endpoint and the blob are ready
            bar.start()
            tasks.append(bar.add_task("upload", total=total))
        bar.update(tasks[0], completed=held, total=total)

    try:
        if wait_ready_s:
            try:
                wait_until_ready(link, wait_ready_s)
            except ProvkitError:
                link.close()
                raise
        with link:
            fp, outcome = provision_board(link, prepare, endpoint_name=urn, progress=show)
    finally:
        if tasks:
            bar.stop()
    note = " (the last answers were lost; result.txt confirmed it)" if outcome.upload_recovered else ""
    click.echo(
        f"{link.describe}: {outcome.endpoint_name} applied the configuration "
        f"({outcome.blob_bytes} bytes, result 0){note}"
    )
    _register(fp, opts["server"], opts["token"])


@provision_cmd.command("smp-serial")
@click.option("--port", required=True, help="Serial port of the board (e.g. /dev/ttyACM0, COM3).")
@click.option(
    "--baud", type=click.IntRange(1), default=DEFAULT_BAUD_RATE, show_default=True, help="Line speed."
)
@click.option(
    "--wait-ready",
    "wait_ready_s",
    type=click.FloatRange(0),
    default=0.0,
    help="Seconds to wait for the board to log 'Device ready for provisioning.' (flash or reset it "
    "after starting the command); 0: do not wait.",
)
@_smp_options
@click.pass_context
def smp_serial_cmd(
    ctx: click.Context,
    port: str,
    baud: int,
    wait_ready_s: float,
    endpoint_from_device: bool,
    mtu: int | None,
    chunk_size: int,
    timeout_s: float,
    retries: int,
    no_progress: bool,
) -> None:
    """Provision a Zephyr board running Anjay's provisioning image over SMP on a serial port."""
    from provkit.transport.smp_link import SmpLink

    settings = _smp_settings(mtu, chunk_size, timeout_s, retries)
    link = SmpLink.serial(port, baud_rate=baud, settings=settings)
    _provision_board(_parent_options(ctx), link, endpoint_from_device, no_progress, wait_ready_s)


@provision_cmd.command("smp-udp")
@click.option("--host", required=True, help="Address of the board.")
@click.option(
    "--port", type=click.IntRange(1, 65535), default=1337, show_default=True, help="Its SMP UDP port."
)
@_smp_options
@click.pass_context
def smp_udp_cmd(
    ctx: click.Context,
    host: str,
    port: int,
    endpoint_from_device: bool,
    mtu: int | None,
    chunk_size: int,
    timeout_s: float,
    retries: int,
    no_progress: bool,
) -> None:
    """Provision a Zephyr board running Anjay's provisioning image over SMP on UDP."""
    from provkit.transport.smp_link import SmpLink

    settings = _smp_settings(mtu, chunk_size, timeout_s, retries)
    link = SmpLink.udp(host, port, settings=settings)
    _provision_board(_parent_options(ctx), link, endpoint_from_device, no_progress)


@lwm2m_group.command("register")
@click.option("-c", "--endpoint_cfg", "endpoint_cfg", type=_EXISTING, required=True)
@click.option("-e", "--URN", "urn", required=True)
@click.option("-s", "--server", type=_EXISTING, required=True)
@click.option("-t", "--token", required=True)
def register_cmd(endpoint_cfg: Path, urn: str, server: Path, token: str) -> None:
    """Register a device in the management server (Coiote REST API)."""
    from provkit.factory.lwm2m import FactoryProvisioning

    answer = FactoryProvisioning(endpoint_cfg, urn, server, token, None).register()
    click.echo(json.dumps({"registered": urn, "server": answer}))
