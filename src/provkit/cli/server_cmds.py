"""``provkit server …``: the self-hostable LwM2M bootstrap and registration server.

``init`` creates the server home (CAs, certificate, keys), ``run`` serves, ``ca-cert``
prints the CA devices must trust, ``trust-ca`` / ``untrust`` / ``trusted`` manage the
factory CAs whose devices are accepted, ``revoke`` / ``revocations`` refuse devices.
The server home defaults to ``<FCU home>/server``, the registry to ``<FCU home>/registry.sqlite``.
Other features add their subcommands to :data:`server_group` from their own module.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from provkit.cli._errors import ProvkitGroup
from provkit.cli._state import CliState
from provkit.cli.batch_cmds import default_registry, open_registry, registry_option
from provkit.registry import Service

_SERVICES = click.Choice([s.value for s in Service])


def server_home(ctx: click.Context, home: Path | None) -> Path:
    """``--server-home``, else ``<FCU home>/server``."""
    if home is not None:
        return home
    from provkit.factory.paths import FcuPaths

    state = ctx.find_object(CliState)
    return FcuPaths.resolve(state.home_dir if state else None).home / "server"


home_option = click.option(
    "--server-home",
    "home",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="PROVKIT_SERVER_HOME",
    help="Server home (default: <FCU home>/server).",
)


@click.group("server", cls=ProvkitGroup)
def server_group() -> None:
    """Run the LwM2M bootstrap and registration server; manage whom it trusts."""


@server_group.command("init")
@home_option
@registry_option
@click.option(
    "--address",
    "addresses",
    multiple=True,
    default=("127.0.0.1",),
    show_default=True,
    help="IP address or DNS name devices reach the server at (repeatable); named in the certificate.",
)
@click.option(
    "--force", is_flag=True, help="Replace an existing server home (devices trusting the old CA refuse it)."
)
@click.pass_context
def init_cmd(
    ctx: click.Context, home: Path | None, registry_url: str | None, addresses: tuple[str, ...], force: bool
) -> None:
    """Create the server CA, the server certificate and keys; publish the PSK sealing key."""
    from provkit.server.home import init_home

    target = server_home(ctx, home)
    material = init_home(target, list(addresses), force=force)
    open_registry(ctx, registry_url, None).psk.publish_sealing_key(material.sealing_public_der)
    click.echo(
        f"server home {target}: CA {target / 'ca.pem'}, certificate for {', '.join(material.addresses)}"
    )
    click.echo(
        "give devices the server CA: provkit server ca-cert -o <FCU resources>/bootstrap_server_ca_cert.pem"
    )


@server_group.command("ca-cert")
@home_option
@click.option("--der", is_flag=True, help="DER instead of PEM (binary: use -o).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write to this file.")
@click.pass_context
def ca_cert_cmd(ctx: click.Context, home: Path | None, der: bool, output: Path | None) -> None:
    """Print the server CA certificate (devices' mbed.BootstrapServerCACert / LwM2M server CA)."""
    from provkit.server.home import load_home

    material = load_home(server_home(ctx, home))
    data = material.ca_der if der else material.ca_pem
    if output is not None:
        output.write_bytes(data)
        click.echo(f"wrote {output}", err=True)
    elif der:
        raise click.UsageError("DER is binary: give -o FILE")
    else:
        click.echo(data.decode("ascii"), nl=False)


@server_group.command("run")
@home_option
@registry_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option(
    "--public-host",
    help="Host written into the URIs given to devices (default: the certificate's first address).",
)
@click.option(
    "--bootstrap-port",
    type=int,
    default=5784,
    show_default=True,
    help="coaps:// bootstrap server (0: any free port).",
)
@click.option(
    "--lwm2m-port",
    type=int,
    default=5684,
    show_default=True,
    help="coaps:// LwM2M server (0: any free port).",
)
@click.option("--no-bootstrap", is_flag=True, help="Do not serve the bootstrap server.")
@click.option(
    "--coap-port", type=int, help="Also serve the LwM2M server over plain coap:// (NoSec) on this port."
)
@click.option(
    "--coap-bootstrap-port", type=int, help="Also serve the bootstrap server over plain coap:// (NoSec)."
)
@click.option(
    "--allow-nosec",
    is_flag=True,
    help="Accept NoSec devices on the coap:// ports (anyone can claim any name).",
)
@click.option("--http-port", type=int, help="Serve the HTTP app (Device Management API) on this port.")
@click.option("--http-host", help="Address the HTTP app binds (default: --host).")
@click.option(
    "--https-cert",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Serve the HTTP app over HTTPS with this PEM certificate (chain); needs --https-key.",
)
@click.option(
    "--https-key", type=click.Path(dir_okay=False, path_type=Path), help="The HTTPS certificate's key."
)
@click.option(
    "--insecure-http",
    is_flag=True,
    help="Allow plain HTTP off loopback: API keys then cross the network in clear.",
)
@click.option("--workers", type=int, default=1, show_default=True, help="Processes sharing the CoAP ports.")
@click.option(
    "--lifetime",
    type=int,
    default=86400,
    show_default=True,
    help="Registration lifetime written at bootstrap.",
)
@click.option(
    "--issue",
    type=click.Choice(["same", "certificate", "psk"]),
    default="same",
    show_default=True,
    help="Credentials the bootstrap server issues for the LwM2M server.",
)
@click.option(
    "--ready-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the bound ports here as JSON.",
)
@click.pass_context
def run_cmd(ctx: click.Context, /, home: Path | None, registry_url: str | None, **options: Any) -> None:
    """Serve until interrupted (Ctrl-C or SIGTERM); prints the bound URIs as one JSON line."""
    from provkit.server.config import BoundPorts, ServerConfig
    from provkit.server.process import http_settings, run_server

    state = ctx.find_object(CliState)
    config = ServerConfig(
        home=server_home(ctx, home),
        registry_url=registry_url or default_registry(state),
        host=options["host"],
        bootstrap_port=None if options["no_bootstrap"] else options["bootstrap_port"],
        lwm2m_port=options["lwm2m_port"],
        coap_lwm2m_port=options["coap_port"],
        coap_bootstrap_port=options["coap_bootstrap_port"],
        allow_nosec=options["allow_nosec"],
        http_port=options["http_port"],
        http_host=options["http_host"],
        https_certificate=options["https_cert"],
        https_key=options["https_key"],
        insecure_http=options["insecure_http"],
        public_host=options["public_host"],
        workers=options["workers"],
        lifetime=options["lifetime"],
        issue=options["issue"],
    )
    ready_file: Path | None = options["ready_file"]

    def ready(ports: BoundPorts) -> None:
        public = config.public_host
        line = {
            "event": "ready",
            "bootstrap": ports.uri("bootstrap", public_host=public),
            "lwm2m": ports.uri("lwm2m", public_host=public),
            "coap": ports.uri("lwm2m", public_host=public, secure=False),
            "coap_bootstrap": ports.uri("bootstrap", public_host=public, secure=False),
            "http": None if ports.http is None else http_settings(config).url(ports.http),
            "workers": config.workers,
        }
        text = json.dumps(line)
        if ready_file is not None:
            ready_file.write_text(text + "\n", encoding="utf-8")
        click.echo(text)

    counters = run_server(config, ready)
    click.echo(json.dumps({"event": "stopped", "counters": counters.as_dict()}))


def _trusted_row(cert: Any) -> dict[str, object]:
    return {
        "id": cert.id,
        "name": cert.name,
        "service": cert.service.value,
        "status": cert.status.value,
        "subject": cert.subject,
        "fingerprint": cert.fingerprint,
        "valid_until": cert.not_after.isoformat(),
    }


@server_group.command("trust-ca")
@registry_option
@click.argument("certificate", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--service",
    type=_SERVICES,
    default="bootstrap",
    show_default=True,
    help="Which server accepts its devices.",
)
@click.option("--name", help="A label (default: the CA's CN).")
@click.option("--description", default="", help="Free text.")
@click.pass_context
def trust_ca_cmd(
    ctx: click.Context,
    registry_url: str | None,
    certificate: Path,
    service: str,
    name: str | None,
    description: str,
) -> None:
    """Accept devices whose certificate chains to CERTIFICATE (e.g. keystore/fcu.crt)."""
    trusted = open_registry(ctx, registry_url, None).trust.add(
        certificate.read_bytes(), service=service, name=name, description=description
    )
    click.echo(json.dumps(_trusted_row(trusted)))


@server_group.command("trusted")
@registry_option
@click.option("--service", type=_SERVICES, help="Only this service.")
@click.pass_context
def trusted_cmd(ctx: click.Context, registry_url: str | None, service: str | None) -> None:
    """List the trusted CA certificates as JSON lines."""
    for cert in open_registry(ctx, registry_url, None, read_only=True).trust.find(service=service):
        click.echo(json.dumps(_trusted_row(cert)))


@server_group.command("untrust")
@registry_option
@click.argument("certificate_id")
@click.pass_context
def untrust_cmd(ctx: click.Context, registry_url: str | None, certificate_id: str) -> None:
    """Stop trusting the CA certificate with CERTIFICATE_ID (see 'trusted')."""
    open_registry(ctx, registry_url, None).trust.delete(certificate_id)
    click.echo(f"no longer trusted: {certificate_id}")


@server_group.command("revoke")
@registry_option
@click.option("--endpoint", help="Refuse every credential of this endpoint.")
@click.option(
    "--certificate",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Refuse this certificate.",
)
@click.option("--fingerprint", help="Refuse the certificate with this SHA-256 fingerprint.")
@click.option("--reason", default="", help="Free text, kept with the revocation.")
@click.pass_context
def revoke_cmd(
    ctx: click.Context,
    registry_url: str | None,
    endpoint: str | None,
    certificate: Path | None,
    fingerprint: str | None,
    reason: str,
) -> None:
    """Refuse a device from now on (running servers pick it up within a second)."""
    if sum(x is not None for x in (endpoint, certificate, fingerprint)) != 1:
        raise click.UsageError("give exactly one of --endpoint, --certificate, --fingerprint")
    revocations = open_registry(ctx, registry_url, None).revocations
    if endpoint is not None:
        revoked = revocations.revoke_endpoint(endpoint, reason)
    elif certificate is not None:
        revoked = revocations.revoke_certificate(certificate.read_bytes(), reason)
    else:
        assert fingerprint is not None
        revoked = revocations.revoke_fingerprint(fingerprint, reason)
    click.echo(
        json.dumps({"id": revoked.id, "endpoint": revoked.endpoint_name, "fingerprint": revoked.fingerprint})
    )


@server_group.command("revocations")
@registry_option
@click.pass_context
def revocations_cmd(ctx: click.Context, registry_url: str | None) -> None:
    """List the revocations as JSON lines."""
    for item in open_registry(ctx, registry_url, None, read_only=True).revocations.find():
        click.echo(
            json.dumps(
                {
                    "id": item.id,
                    "endpoint": item.endpoint_name,
                    "fingerprint": item.fingerprint,
                    "serial_number": item.serial_number,
                    "reason": item.reason,
                    "revoked_at": item.revoked_at.isoformat(),
                }
            )
        )


def _add_feature_commands() -> None:
    # Features add their commands from their own modules.
    from provkit.cli.server_api_cmds import api_key_group

    server_group.add_command(api_key_group)


_add_feature_commands()
