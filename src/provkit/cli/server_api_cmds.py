"""``provkit server api-key …``: the API keys of the Device Management API.

``create NAME`` prints the key once (only its SHA-256 is kept), ``list`` shows the
records, ``revoke NAME`` refuses the key from the next request on. The keys live in the
registry the server runs on (``--registry``, default ``<FCU home>/registry.sqlite``).
"""

from __future__ import annotations

import json

import click

from provkit.cli._errors import ProvkitGroup
from provkit.cli.batch_cmds import open_registry, registry_option
from provkit.registry.apikeys import ApiKey, Role

_ROLES = click.Choice([role.value for role in Role])


def _row(key: ApiKey) -> dict[str, object]:
    return {
        "id": key.id,
        "name": key.name,
        "group": key.role.value,
        "status": key.status.value,
        "created_at": key.created_at.isoformat(),
        "last_used_at": key.last_used_at.isoformat() if key.last_used_at else None,
        "revoked_at": key.revoked_at.isoformat() if key.revoked_at else None,
    }


@click.group("api-key", cls=ProvkitGroup)
def api_key_group() -> None:
    """Create, list and revoke API keys of the Device Management API."""


@api_key_group.command("create")
@click.argument("name")
@click.option(
    "--group",
    "role",
    type=_ROLES,
    default=Role.DEVELOPERS.value,
    show_default=True,
    help="developers: the developer flow; administrators: also trusted CAs and enrollments.",
)
@registry_option
@click.pass_context
def create_cmd(ctx: click.Context, name: str, role: str, registry_url: str | None) -> None:
    """Create API key NAME and print it (it is shown this once)."""
    record, key = open_registry(ctx, registry_url, None).api_keys.create(name, role)
    click.echo(key)
    click.echo(f"API key {record.name!r} ({record.role.value}) created; it is not shown again.", err=True)


@api_key_group.command("list")
@registry_option
@click.pass_context
def list_cmd(ctx: click.Context, registry_url: str | None) -> None:
    """List the API keys (never the keys themselves) as JSON lines."""
    keys = open_registry(ctx, registry_url, None, read_only=True).api_keys.list()
    for key in keys:
        click.echo(json.dumps(_row(key)))


@api_key_group.command("revoke")
@click.argument("name_or_id")
@registry_option
@click.pass_context
def revoke_cmd(ctx: click.Context, name_or_id: str, registry_url: str | None) -> None:
    """Revoke an API key: requests with it are refused from now on."""
    key = open_registry(ctx, registry_url, None).api_keys.revoke(name_or_id)
    click.echo(json.dumps(_row(key)))
