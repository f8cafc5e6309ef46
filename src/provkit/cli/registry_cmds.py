"""``provkit registry list | show | connections | stats | export | upgrade``: querying the registry.

The querying commands open the registry read-only: they never create, migrate or write
a database, and say so when what they are pointed at is not a provkit registry or has
an older schema. ``upgrade`` is the one command that migrates, explicitly.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Final

import click
from rich.console import Console
from rich.table import Table

from provkit.cli._errors import ProvkitGroup
from provkit.cli._state import CliState
from provkit.cli.batch_cmds import default_registry, open_registry, registry_option
from provkit.errors import RegistryError
from provkit.registry import Attempt, AttemptState, Connection, ConnectionOutcome, Registry
from provkit.registry.export import ExportFormat

PAGE: Final = 100
"""Rows of one ``list`` page unless ``--limit`` says otherwise."""


def _table(rows: list[Attempt]) -> Table:
    table = Table()
    for name in ("id", "endpoint", "serial", "state", "station", "status", "updated"):
        table.add_column(name)
    for a in rows:
        table.add_row(
            str(a.id),
            a.endpoint_name,
            a.serial_number,
            str(a.state),
            a.station_id,
            "" if a.return_status is None else str(a.return_status),
            a.updated_at.isoformat(timespec="seconds"),
        )
    return table


@click.group("registry", cls=ProvkitGroup)
def registry_group() -> None:
    """Query the registry of provisioning attempts."""


@registry_group.command("list")
@registry_option
@click.option(
    "--state", type=click.Choice([s.value for s in AttemptState]), help="Only attempts in this state."
)
@click.option("--batch", "batch_id", help="Only attempts of this batch.")
@click.option("--provisioned", is_flag=True, help="Only devices currently recorded as provisioned.")
@click.option("--newest", is_flag=True, help="Newest first (default: oldest first).")
@click.option("--after", type=click.IntRange(0), help="Continue after this attempt id (oldest first).")
@click.option("--before", type=click.IntRange(0), help="Continue before this attempt id (--newest).")
@click.option(
    "--limit", type=click.IntRange(1), default=PAGE, show_default=True, help="Rows per page at most."
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_context
def list_cmd(
    ctx: click.Context,
    registry_url: str | None,
    state: str | None,
    batch_id: str | None,
    provisioned: bool,
    newest: bool,
    after: int | None,
    before: int | None,
    limit: int,
    as_json: bool,
) -> None:
    """List attempts one page at a time, oldest first; the next page's option is printed on stderr."""
    registry = open_registry(ctx, registry_url, None, read_only=True)
    rows = registry.find(
        state=AttemptState(state) if state else None,
        batch_id=batch_id,
        provisioned_only=provisioned,
        after=after,
        before=before,
        newest=newest,
        limit=limit,
    )
    if as_json:
        click.echo(json.dumps([a.to_json() for a in rows], indent=2))
    else:
        Console().print(_table(rows))
    if len(rows) == limit:
        click.echo(f"next page: {'--before' if newest else '--after'} {rows[-1].id}", err=True)


@registry_group.command("show")
@registry_option
@click.argument("key")
@click.pass_context
def show_cmd(ctx: click.Context, registry_url: str | None, key: str) -> None:
    """Show as JSON every attempt KEY names.

    KEY is an endpoint name, a serial number, a device certificate's SHA-256
    fingerprint (hex, colons allowed) or enrollment id (A-…), or an attempt id.
    """
    rows = open_registry(ctx, registry_url, None, read_only=True).lookup(key)
    if not rows:
        raise RegistryError(
            f"no attempt for {key!r} (as endpoint name, serial number, certificate fingerprint or attempt id)"
        )
    click.echo(json.dumps([a.to_json() for a in rows], indent=2))


def connection_json(connection: Connection) -> dict[str, object]:
    """A connection record as JSON (timestamps ISO 8601)."""
    data = asdict(connection)
    data["outcome"] = str(connection.outcome)
    data["first_seen"] = connection.first_seen.isoformat()
    data["last_seen"] = connection.last_seen.isoformat()
    return data


@registry_group.command("connections")
@registry_option
@click.option("--endpoint", help="Only this endpoint.")
@click.option("--service", type=click.Choice(["bootstrap", "lwm2m"]), help="Only this service.")
@click.option(
    "--outcome", type=click.Choice([o.value for o in ConnectionOutcome]), help="Only this last outcome."
)
@click.option(
    "--limit", type=click.IntRange(1), default=100, show_default=True, help="At most this many rows."
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_context
def connections_cmd(
    ctx: click.Context,
    registry_url: str | None,
    endpoint: str | None,
    service: str | None,
    outcome: str | None,
    limit: int,
    as_json: bool,
) -> None:
    """List devices' connections to the bootstrap and LwM2M servers, most recent first."""
    registry = open_registry(ctx, registry_url, None, read_only=True)
    if endpoint is not None:
        rows = [c for c in registry.connections.get(endpoint) if service in (None, c.service)]
    else:
        rows = registry.connections.find(
            service=service, outcome=ConnectionOutcome(outcome) if outcome else None, limit=limit
        )
    if as_json:
        click.echo(json.dumps([connection_json(c) for c in rows], indent=2))
        return
    table = Table(title=f"{len(rows)} connection records")
    for column in ("endpoint", "service", "outcome", "mode", "address", "first seen", "last seen", "detail"):
        table.add_column(column)
    for c in rows:
        detail = c.location or "" if c.ok else f"{c.failure} [{c.error_code}] {c.detail or ''}"
        table.add_row(
            c.endpoint_name,
            c.service,
            str(c.outcome),
            c.mode,
            c.address,
            f"{c.first_seen:%Y-%m-%d %H:%M:%S}",
            f"{c.last_seen:%Y-%m-%d %H:%M:%S}",
            detail,
        )
    Console().print(table)


@registry_group.command("stats")
@registry_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_context
def stats_cmd(ctx: click.Context, registry_url: str | None, as_json: bool) -> None:
    """Counts of attempts per state and provisioned devices per station."""
    stats = open_registry(ctx, registry_url, None, read_only=True).stats()
    if as_json:
        click.echo(
            json.dumps(
                {
                    "attempts": stats.attempts,
                    "provisioned": stats.provisioned,
                    "by_state": stats.by_state,
                    "by_station": stats.by_station,
                },
                indent=2,
            )
        )
        return
    table = Table(title=f"{stats.provisioned} provisioned · {stats.attempts} attempts")
    table.add_column("")
    table.add_column("count", justify="right")
    for state, count in sorted(stats.by_state.items()):
        table.add_row(f"attempts {state}", str(count))
    for station, count in sorted(stats.by_station.items()):
        table.add_row(f"provisioned by {station}", str(count))
    Console().print(table)


@registry_group.command("export")
@registry_option
@click.option("--format", "fmt", type=click.Choice(["csv", "json"]), default="csv", show_default=True)
@click.option(
    "--enrollment-only",
    is_flag=True,
    help="Only the enrollment ids, one per line (the device-ownership bulk upload file).",
)
@click.option(
    "--out", "out_file", type=click.Path(dir_okay=False, path_type=Path), help="Write here, not stdout."
)
@click.pass_context
def export_cmd(
    ctx: click.Context, registry_url: str | None, fmt: str, enrollment_only: bool, out_file: Path | None
) -> None:
    """Export the provisioned devices for a cloud bulk upload (streamed: any number of devices)."""
    registry = open_registry(ctx, registry_url, None, read_only=True)
    kind: ExportFormat = "enrollment" if enrollment_only else "json" if fmt == "json" else "csv"
    if out_file is None:
        registry.export(sys.stdout, kind)
        return
    # Written next to the target and renamed: a failed export leaves no half-written file.
    partial = out_file.with_name(f".{out_file.name}.{os.getpid()}.partial")
    try:
        try:
            with partial.open("w", encoding="utf-8", newline="") as handle:
                count = registry.export(handle, kind)
            partial.replace(out_file)
        except OSError as exc:
            raise RegistryError(f"cannot write {out_file}: {exc}") from exc
    finally:
        partial.unlink(missing_ok=True)
    click.echo(f"{count} devices exported to {out_file}", err=True)


@registry_group.command("upgrade")
@registry_option
@click.pass_context
def upgrade_cmd(ctx: click.Context, registry_url: str | None) -> None:
    """Bring the registry's schema to this provkit's newest revision (the one command that migrates)."""
    location = registry_url or default_registry(ctx.find_object(CliState))
    before, after = Registry.upgrade(location)
    if before == after:
        click.echo(f"registry schema already at revision {after}")
    else:
        click.echo(f"registry schema upgraded from revision {before or '(none)'} to {after}")
