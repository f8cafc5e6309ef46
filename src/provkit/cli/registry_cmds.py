"""``provkit registry list | show | stats | export``: querying the device registry."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Final

import click
from rich.console import Console
from rich.table import Table

from provkit.cli.batch_cmds import open_registry, registry_option
from provkit.errors import RegistryError
from provkit.registry import Attempt, AttemptState

EXPORT_COLUMNS: Final = (
    "enrollment_id",
    "endpoint_name",
    "serial_number",
    "device_cert_sha256",
    "device_cert_serial",
    "ca_sha256",
    "ca_key",
    "key_mode",
    "station_id",
    "provisioned_at",
)
"""Columns of ``registry export --format csv`` (one row per provisioned device)."""


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


@click.group("registry")
def registry_group() -> None:
    """Query the registry of provisioning attempts."""


@registry_group.command("list")
@registry_option
@click.option(
    "--state", type=click.Choice([s.value for s in AttemptState]), help="Only attempts in this state."
)
@click.option("--batch", "batch_id", help="Only attempts of this batch.")
@click.option("--provisioned", is_flag=True, help="Only devices currently recorded as provisioned.")
@click.option("--limit", type=click.IntRange(1), help="At most this many rows.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_context
def list_cmd(
    ctx: click.Context,
    registry_url: str | None,
    state: str | None,
    batch_id: str | None,
    provisioned: bool,
    limit: int | None,
    as_json: bool,
) -> None:
    """List attempts, oldest first."""
    registry = open_registry(ctx, registry_url, None)
    rows = registry.find(
        state=AttemptState(state) if state else None,
        batch_id=batch_id,
        provisioned_only=provisioned,
        limit=limit,
    )
    if as_json:
        click.echo(json.dumps([a.to_json() for a in rows], indent=2))
    else:
        Console().print(_table(rows))


@registry_group.command("show")
@registry_option
@click.argument("endpoint_or_id")
@click.pass_context
def show_cmd(ctx: click.Context, registry_url: str | None, endpoint_or_id: str) -> None:
    """Show every attempt for an endpoint name (or one attempt by id) as JSON."""
    registry = open_registry(ctx, registry_url, None)
    rows = registry.find(endpoint_name=endpoint_or_id)
    if not rows and endpoint_or_id.isdigit():
        rows = [registry.get_attempt(int(endpoint_or_id))]
    if not rows:
        raise RegistryError(f"no attempt for endpoint {endpoint_or_id!r}")
    click.echo(json.dumps([a.to_json() for a in rows], indent=2))


@registry_group.command("stats")
@registry_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_context
def stats_cmd(ctx: click.Context, registry_url: str | None, as_json: bool) -> None:
    """Counts of attempts per state and provisioned devices per station."""
    stats = open_registry(ctx, registry_url, None).stats()
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
    """Export the provisioned devices for a cloud bulk upload."""
    rows = open_registry(ctx, registry_url, None).find(provisioned_only=True)
    records = [{k: v for k, v in a.to_json().items() if k in EXPORT_COLUMNS} for a in rows]
    if enrollment_only:
        text = "".join(f"{r['enrollment_id']}\n" for r in records if r["enrollment_id"])
    elif fmt == "json":
        text = json.dumps(records, indent=2) + "\n"
    else:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(EXPORT_COLUMNS), lineterminator="\n")
        writer.writeheader()
        writer.writerows(records)
        text = buffer.getvalue()
    if out_file is None:
        click.echo(text, nl=False)
        return
    try:
        out_file.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise RegistryError(f"cannot write {out_file}: {exc}") from exc
    click.echo(f"{len(records)} devices exported to {out_file}", err=True)
