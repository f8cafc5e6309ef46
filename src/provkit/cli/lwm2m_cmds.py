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

from provkit.cli._errors import exit_with
from provkit.cli._state import CliState
from provkit.errors import ProvkitError

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

    if (pkey is None) != (pcert is None):
        raise click.UsageError("-k/--pkey and -r/--pcert go together")
    if pkey is not None and (cert is not None or factory_ca):
        raise click.UsageError("give -C/--factory-ca (generate) or -k and -r (existing), not both")
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
        from provkit.factory.api import FactoryToolApi

        state = click.get_current_context().find_object(CliState) or CliState()
        fp.generate_self_signed_cert(ca=FactoryToolApi(home_dir=state.home_dir).factory_ca)
    elif cert is not None:
        fp.generate_self_signed_cert()
    elif pkey is not None and pcert is not None:
        fp.set_endpoint_cert_and_key(pkey, pcert)
    return fp


@click.group("lwm2m")
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

    try:
        fp = _prepare(
            endpoint_cfg, urn, cert, pkey, pcert, scert, factory_ca, target, allow_unverified_server
        )
        blob = fp.provision_device(output=output)
        if json_out is not None:
            write_output(json_out, (encode_json(fp.config.entries(), indent=1) + "\n").encode("utf-8"))
    except ProvkitError as exc:
        exit_with(exc)
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
    try:
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
    except ProvkitError as exc:
        exit_with(exc)
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


@lwm2m_group.command("provision")
@_tool_options
@click.option("-s", "--server", type=_EXISTING, help="Coiote server JSON (url, port, domain).")
@click.option("-t", "--token", help="Coiote access token.")
@click.option("--tcp", "tcp", metavar="IP:PORT", help="Device agent address.")
@click.option("--serial", "serial_port", help="Device serial port.")
@click.option("--baud-rate", default=115200, show_default=True)
@click.option("--file", "file_path", type=_PATH, help="Write the framed request here (offline delivery).")
@click.option("--timeout", "timeout_s", type=float, default=30.0, show_default=True)
def provision_cmd(
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
    tcp: str | None,
    serial_port: str | None,
    baud_rate: int,
    file_path: Path | None,
    timeout_s: float,
) -> None:
    """Provision a device over TCP, serial or a file; register it if -s, -t and -e are given."""
    from provkit.transport.links import FileLink, SerialLink, TcpLink

    if sum(x is not None for x in (tcp, serial_port, file_path)) != 1:
        raise click.UsageError("give exactly one of --tcp, --serial, --file")
    try:
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
        if file_path is not None:
            fp.provision_device(FileLink(file_path))
            click.echo(f"wrote framed request to {file_path}")
        else:
            link: TcpLink | SerialLink
            if tcp is not None:
                host, _, port = tcp.rpartition(":")
                if not port.isdigit():
                    raise click.UsageError("--tcp needs IP:PORT")
                link = TcpLink(host or "127.0.0.1", int(port))
            else:
                assert serial_port is not None
                link = SerialLink(serial_port, baud_rate=baud_rate)
            with link:
                fp.provision_device(link, timeout_s=timeout_s)
            click.echo(f"device accepted {fp.last_result.written} resources")
        if server is not None and token and urn:
            fp.register()
            click.echo(f"registered {urn}")
        elif server is not None or token:
            click.echo("warning: registration needs -s, -t and -e together; not registered", err=True)
    except ProvkitError as exc:
        exit_with(exc)


@lwm2m_group.command("register")
@click.option("-c", "--endpoint_cfg", "endpoint_cfg", type=_EXISTING, required=True)
@click.option("-e", "--URN", "urn", required=True)
@click.option("-s", "--server", type=_EXISTING, required=True)
@click.option("-t", "--token", required=True)
def register_cmd(endpoint_cfg: Path, urn: str, server: Path, token: str) -> None:
    """Register a device in the management server (Coiote REST API)."""
    from provkit.factory.lwm2m import FactoryProvisioning

    try:
        answer = FactoryProvisioning(endpoint_cfg, urn, server, token, None).register()
    except ProvkitError as exc:
        exit_with(exc)
    click.echo(json.dumps({"registered": urn, "server": answer}))
