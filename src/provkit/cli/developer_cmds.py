"""``provkit developer …``: the MBL CLI developer flow over provkit's transports.

Commands mirror mbl-cli 2.0 (``save-api-key``, ``provision-pelion``, ``get-pelion-status``,
``list-certificates``, ``delete-certificate``), but the device is reached with
``--tcp IP:PORT``, ``--serial PORT`` or ``--file PATH`` instead of SSH, and receives one
bundle. See docs/developer.md.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from provkit.cli._errors import ProvkitGroup, exit_with
from provkit.cli._links import device_options, link_settings_options
from provkit.errors import DeviceResponseError, ProvkitError
from provkit.transport.link import LinkSettings
from provkit.transport.spec import FileTarget, LinkTarget

# Existence is not checked by click: a missing C file is the library's coded error (6003).
_C_FILE = click.Path(dir_okay=False, path_type=Path)


@dataclass(frozen=True, slots=True)
class _Options:
    home: Path | None
    api_host: str | None
    api_ca: Path | None

    @property
    def api(self) -> dict[str, Any]:
        """The Device Management keyword arguments of the library calls."""
        return {"host": self.api_host, "home": self.home, "ca_file": self.api_ca}


def _opts(ctx: click.Context) -> _Options:
    obj = ctx.find_object(_Options)
    assert obj is not None  # set by developer_group
    return obj


@click.group("developer", cls=ProvkitGroup)
@click.option(
    "--home",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="PROVKIT_DEVELOPER_HOME",
    help="Directory of .mbl-stores.json and the default stores [default: your home].",
)
@click.option(
    "--api-host",
    envvar="PROVKIT_API_HOST",
    help="Device Management API URL [default: https://api.us-east-1.mbedcloud.com].",
)
@click.option(
    "--api-ca",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="PROVKIT_API_CA",
    help="PEM CA certificates to trust for an https:// API host (a self-hosted server's CA).",
)
@click.pass_context
def developer_group(ctx: click.Context, home: Path | None, api_host: str | None, api_ca: Path | None) -> None:
    """Developer flow (MBL CLI style): API key, developer/update certificates, provisioning."""
    # Subcommands find these with ctx.find_object; the global CliState is not needed here.
    ctx.obj = _Options(home, api_host, api_ca)


def _deliver(bundle: bytes, target: LinkTarget, settings: LinkSettings) -> dict[str, object] | None:
    """Send ``bundle``; return the device's status as JSON, or ``None`` for a file."""
    from provkit.developer import deliver_bundle, status_json

    status = deliver_bundle(bundle, target, settings)
    return None if status is None else status_json(status)


def _finish(result: dict[str, object], device: dict[str, object] | None) -> None:
    """Print the result JSON; leave with status 1 when the device answered a failure."""
    if device is not None:
        result["deviceResponse"] = device
    click.echo(json.dumps(result, indent=1))
    status = device.get("status") if device is not None else 0
    if isinstance(status, int) and status != 0:
        assert device is not None
        exit_with(DeviceResponseError(f"the device refused: {device.get('message')}", code=status))


@developer_group.command("save-api-key")
@click.argument("key")
@click.pass_context
def save_api_key_cmd(ctx: click.Context, key: str) -> None:
    """Validate KEY with Device Management and save it in the user store."""
    from provkit.developer import save_api_key

    opts = _opts(ctx)
    account = save_api_key(key, **opts.api)
    click.echo(f"API key saved (account {account.get('id', '?')})")


@developer_group.command("create-certificate")
@click.argument("name")
@click.option("--description", default="", help="Description stored in Device Management.")
@click.pass_context
def create_certificate_cmd(ctx: click.Context, name: str, description: str) -> None:
    """Create developer certificate NAME in Device Management and save it in the team store."""
    from provkit.developer import create_developer_certificate

    opts = _opts(ctx)
    paths = create_developer_certificate(name, description=description, **opts.api)
    click.echo(f"developer certificate {name!r} saved: {len(paths)} files in {paths[0].parent}")


@developer_group.command("import-update-certificate")
@click.argument("name")
@click.argument("resources_c", type=_C_FILE)
@click.pass_context
def import_update_cmd(ctx: click.Context, name: str, resources_c: Path) -> None:
    """Parse a manifest-tool update_default_resources.c and save it as NAME in the team store."""
    from provkit.developer import import_update_certificate

    paths = import_update_certificate(name, resources_c, home=_opts(ctx).home)
    click.echo(f"update certificate {name!r} saved: {len(paths)} files in {paths[0].parent}")


@developer_group.command("import-credentials")
@click.argument("credentials_c", type=_C_FILE)
@click.option("--name", help="Name in the team store [default: the file's endpoint name].")
@click.pass_context
def import_credentials_cmd(ctx: click.Context, credentials_c: Path, name: str | None) -> None:
    """Save a local mbed_cloud_dev_credentials.c in the team store (no Device Management call)."""
    from provkit.developer import import_developer_credentials

    name, paths = import_developer_credentials(credentials_c, name, home=_opts(ctx).home)
    click.echo(f"developer certificate {name!r} saved: {len(paths)} files in {paths[0].parent}")


@developer_group.command("list-certificates")
@click.option("--cloud/--local", default=False, help="Also list the certificates in Device Management.")
@click.pass_context
def list_certificates_cmd(ctx: click.Context, cloud: bool) -> None:
    """List the team store's certificates (and, with --cloud, the service's) as JSON."""
    from provkit.developer import cloud_client, list_certificates

    opts = _opts(ctx)
    client = cloud_client(**opts.api) if cloud else None
    entries = list_certificates(home=opts.home, client=client)
    rows = [{"name": e.name, "kind": e.kind, "local": e.local, "id": e.cloud_id} for e in entries]
    click.echo(json.dumps(rows, indent=1))


@developer_group.command("delete-certificate")
@click.argument("name")
@click.option("--local-only", is_flag=True, help="Delete only the team store copy.")
@click.pass_context
def delete_certificate_cmd(ctx: click.Context, name: str, local_only: bool) -> None:
    """Delete certificate NAME from the team store and from Device Management."""
    from provkit.developer import delete_certificate

    opts = _opts(ctx)
    local, cloud_id = delete_certificate(name, cloud=not local_only, **opts.api)
    where = [
        w for w, done in (("team store", local), (f"Device Management (id {cloud_id})", cloud_id)) if done
    ]
    click.echo(f"deleted {name!r} from " + " and ".join(where))


@developer_group.command("provision-pelion")
@click.argument("dev_cert_name")
@click.argument("update_cert_name")
@click.option(
    "-c", "--create-dev-cert", is_flag=True, help="Create DEV_CERT_NAME in Device Management first."
)
@click.option(
    "-p",
    "--parse-update-cert",
    "update_c",
    type=_C_FILE,
    help="Import this update_default_resources.c first.",
)
@click.option("--set-time/--no-set-time", default=True, show_default=True, help="Send the host time.")
@device_options()
@link_settings_options()
@click.pass_context
def provision_cmd(
    ctx: click.Context,
    dev_cert_name: str,
    update_cert_name: str,
    create_dev_cert: bool,
    update_c: Path | None,
    set_time: bool,
    device: LinkTarget,
    settings: LinkSettings,
) -> None:
    """Provision a device with a developer and an update certificate, all or nothing.

    Without -c, a DEV_CERT_NAME missing from the team store is fetched from Device
    Management by name. A malformed -p file is refused before -c creates anything.
    """
    from provkit.developer import build_provisioning_bundle, prepare_provisioning, truncation_warnings

    opts = _opts(ctx)
    dev, update = prepare_provisioning(
        dev_cert_name,
        update_cert_name,
        create=create_dev_cert,
        resources_c=update_c,
        **opts.api,
    )
    for warning in truncation_warnings(dev):
        click.echo(f"Warning: {warning}", err=True)
    try:
        bundle = build_provisioning_bundle(dev, update, current_time=int(time.time()) if set_time else None)
        answer = _deliver(bundle.data, device, settings)
    except ProvkitError as exc:
        if exc.hint is None:  # the sets are saved now: -c or -p again would fail or redo work
            exc.hint = (
                f"{dev_cert_name!r} and {update_cert_name!r} are in the team store; "
                f"retry with: provision-pelion {dev_cert_name} {update_cert_name} (no -c/-p)"
            )
        exit_with(exc)
    result: dict[str, object] = {"endpointName": bundle.endpoint_name, "items": list(bundle.items)}
    if isinstance(device, FileTarget):
        result["file"] = str(device.path)
    _finish(result, answer)


@developer_group.command("get-pelion-status")
@device_options()
@link_settings_options()
def status_cmd(device: LinkTarget, settings: LinkSettings) -> None:
    """Ask the device to verify its Device Management configuration; print the answer as JSON."""
    from provkit.developer import status_bundle

    answer = _deliver(status_bundle(), device, settings)
    _finish({"file": str(device.path)} if isinstance(device, FileTarget) else {}, answer)
