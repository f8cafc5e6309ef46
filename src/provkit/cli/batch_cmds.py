"""``provkit batch prepare | inject | verify | run``: provisioning many devices.

The commands are thin: options become :class:`~provkit.line.batch.BatchOptions`, the
library does the work, and this module draws the progress bar (stderr) and the summary
table, and points at the JSON report.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from provkit.cli._errors import ProvkitGroup
from provkit.cli._links import link_settings_options
from provkit.cli._state import CliState
from provkit.errors import AllocationError, BatchError
from provkit.line.archive import SettledBundles, load_archive_private_key, unseal_bundle, write_private_file
from provkit.line.batch import CHUNK_ROWS, Batch, BatchOptions
from provkit.line.boards import BoardOptions
from provkit.line.outcome import BatchReport, DeviceOutcome
from provkit.registry import IdentityPattern, Registry, parse_identity_csv
from provkit.registry.allocation import read_csv_file
from provkit.transport.link import LINE_LINK_SETTINGS


def default_registry(state: CliState | None) -> str:
    """The SQLite registry in the FCU home (``<home>/registry.sqlite``)."""
    from provkit.factory.paths import FcuPaths

    home = FcuPaths.resolve(state.home_dir if state else None).home
    return str(home / "registry.sqlite")


def open_registry(
    ctx: click.Context, url: str | None, station: str | None, *, read_only: bool = False
) -> Registry:
    """Open ``--registry`` (or the default) for this command; closed when the command ends.

    ``read_only``: for commands that only look, which must never create, migrate or
    write a database (see :meth:`~provkit.registry.Registry.open`).
    """
    state = ctx.find_object(CliState)
    registry = Registry.open(url or default_registry(state), station_id=station, read_only=read_only)
    ctx.call_on_close(registry.close)
    return registry


registry_option = click.option(
    "--registry",
    "registry_url",
    metavar="URL|PATH",
    envvar="PROVKIT_REGISTRY",
    help="Registry: SQLite file or postgresql://… (default: <home>/registry.sqlite).",
)
station_option = click.option(
    "--station", envvar="PROVKIT_STATION_ID", help="Station id recorded on attempts (default: host name)."
)


class _RateColumn(ProgressColumn):
    """Devices per second."""

    def render(self, task: Task) -> Text:
        """Render the task's speed: the recent rate while running, the average once done."""
        speed = task.speed
        if task.finished and task.elapsed:
            # Results arrive in bursts (chunks from the worker pool): the windowed rate
            # of the last burst says little; the step's average does.
            speed = task.completed / task.elapsed
        return Text("-- dev/s" if speed is None else f"{speed:,.1f} dev/s", style="progress.data.speed")


class RichProgress:
    """A :class:`~provkit.line.outcome.Progress` drawn with rich on stderr."""

    def __init__(self, console: Console, enabled: bool) -> None:
        self.console = console
        self.progress = Progress(
            TextColumn("{task.description:<8}"),
            BarColumn(),
            MofNCompleteColumn(),
            _RateColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=console,
            disable=not enabled,
        )
        self.tasks: dict[str, Any] = {}

    def start(self, step: str, total: int) -> None:
        """Add a bar for ``step``."""
        self.tasks[step] = self.progress.add_task(step, total=total)

    def advance(self, step: str, outcome: DeviceOutcome | None = None) -> None:
        """Advance ``step``'s bar by one device."""
        if step in self.tasks:
            self.progress.advance(self.tasks[step])


_EXISTING_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)
_board_options = [
    click.option(
        "--lwm2m-config",
        type=_EXISTING_FILE,
        help="SMP boards (smp-serial:/smp-udp: rows): the LwM2M endpoint configuration (YAML/JSON).",
    ),
    click.option(
        "--lwm2m-cert-info", type=_EXISTING_FILE, help="SMP boards: cert-config JSON (certificate modes)."
    ),
    click.option(
        "--lwm2m-server-cert", type=_EXISTING_FILE, help="SMP boards: the server certificate (DER/PEM)."
    ),
    click.option(
        "--lwm2m-target", type=click.Choice(["anjay", "generic"]), default="anjay", show_default=True
    ),
    click.option(
        "--allow-unverified-server", is_flag=True, help="SMP boards: certificate mode without -p is allowed."
    ),
    click.option(
        "--smp-timeout",
        type=click.FloatRange(0.05),
        default=5.0,
        show_default=True,
        help="SMP boards: seconds one request waits for its answer.",
    ),
    click.option(
        "--smp-chunk-size", type=click.IntRange(1, 65535), default=512, show_default=True, help="SMP boards."
    ),
    click.option(
        "--coiote-server",
        type=_EXISTING_FILE,
        help="SMP boards: register each provisioned board with this management server (JSON: url, port, "
        "domain), as lwm2m register does.",
    ),
    click.option(
        "--coiote-token",
        envvar="PROVKIT_COIOTE_TOKEN",
        help="The management server's access token (or $PROVKIT_COIOTE_TOKEN, kept off the command line).",
    ),
]


def board_options(opts: dict[str, Any]) -> BoardOptions | None:
    """The SMP boards' options (``None`` without ``--lwm2m-config``)."""
    if opts["lwm2m_config"] is None:
        return None
    from provkit.factory.lwm2m.coiote import ServerInfo
    from provkit.transport.smp_link import SmpSettings

    server = None if opts["coiote_server"] is None else ServerInfo.load(opts["coiote_server"])
    return BoardOptions(
        opts["lwm2m_config"],
        cert_info=opts["lwm2m_cert_info"],
        server_cert=opts["lwm2m_server_cert"],
        target=opts["lwm2m_target"],
        allow_unverified_server=opts["allow_unverified_server"],
        smp=SmpSettings(timeout_s=opts["smp_timeout"], chunk_size=opts["smp_chunk_size"]),
        coiote_server=server,
        coiote_token=opts["coiote_token"],
    )


def batch_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Options shared by every batch command."""
    decorators = [
        click.option(
            "--out",
            "out_dir",
            required=True,
            type=click.Path(file_okay=False, path_type=Path),
            help="Batch directory (bundles, journal copy, report.json).",
        ),
        click.option(
            "--devices",
            type=click.Path(exists=True, dir_okay=False, path_type=Path),
            help="devices.csv: address[,endpoint_name,serial_number][,device_keys_location] (new batch).",
        ),
        registry_option,
        station_option,
        click.option("--endpoint-pattern", help="Allocate endpoint names, e.g. '{prefix}-{seq:06d}'."),
        click.option("--serial-pattern", help="Allocate serial numbers (default: the endpoint pattern)."),
        click.option("--prefix", default="", help="Value of {prefix} in the patterns."),
        click.option(
            "--identities",
            type=click.Path(exists=True, dir_okay=False, path_type=Path),
            help="Allocate from this CSV of endpoint_name,serial_number instead of a pattern.",
        ),
        click.option(
            "--workers", type=click.IntRange(0), default=0, help="Prepare processes (0: one per core)."
        ),
        click.option("--concurrency", type=click.IntRange(1), default=16, show_default=True),
        click.option(
            "--chunk-rows",
            type=click.IntRange(1),
            default=CHUNK_ROWS,
            show_default=True,
            help="Rows taken up at a time (reconciled, prepared, sent, reported): the memory a "
            "batch holds is bounded by it, not by the devices file.",
        ),
        link_settings_options(LINE_LINK_SETTINGS),
        click.option("--reprovision", is_flag=True, help="Replace devices already recorded as provisioned."),
        click.option(
            "--report",
            "report_path",
            type=click.Path(dir_okay=False, path_type=Path),
            help="Also write the JSON report here.",
        ),
        click.option("--no-progress", is_flag=True, help="Do not draw the progress bar."),
        click.option(
            "--settled-bundles",
            type=click.Choice([m.value for m in SettledBundles]),
            default=SettledBundles.SEAL.value,
            show_default=True,
            help="What becomes of a bundle (it holds the device's private key) once its device is "
            "verified or its attempt failed: sealed to the archive key, or removed.",
        ),
        click.option(
            "--archive-key",
            type=click.Path(exists=True, dir_okay=False, path_type=Path),
            help="Public key to seal settled bundles to (default: keystore/bundle_archive.pub, "
            "created with its private key on first use).",
        ),
        *_board_options,
    ]
    for decorator in reversed(decorators):
        command = decorator(command)
    return click.pass_context(command)


def _run_step(ctx: click.Context, step: str, **opts: Any) -> None:
    state = ctx.find_object(CliState) or CliState()
    registry = open_registry(ctx, opts["registry_url"], opts["station"])
    pattern = None
    if opts["endpoint_pattern"]:
        pattern = IdentityPattern(
            opts["endpoint_pattern"], opts["serial_pattern"] or "", prefix=opts["prefix"]
        )
    pool = None if opts["identities"] is None else load_identity_pool(registry, opts["identities"])
    options = BatchOptions(
        home_dir=state.home_dir,
        config_file=state.config_file,
        pattern=pattern,
        pool=pool,
        workers=opts["workers"],
        concurrency=opts["concurrency"],
        inject=opts["settings"],
        reprovision=opts["reprovision"],
        ca_key=state.ca_key_choice(),
        boards=board_options(opts),
        settled_bundles=SettledBundles(opts["settled_bundles"]),
        archive_key=opts["archive_key"],
        chunk_rows=opts["chunk_rows"],
    )
    console = Console(stderr=True)
    progress = RichProgress(console, enabled=not opts["no_progress"])
    batch = Batch.open(opts["out_dir"], registry, opts["devices"], options, progress)
    connect = opts.get("connect_settings")
    with progress.progress:
        if step in ("verify", "run"):
            report = (batch.verify if step == "verify" else batch.run)(connect)
        else:
            report = {"prepare": batch.prepare, "inject": batch.inject}[step]()
    if opts["report_path"] is not None:
        try:
            shutil.copyfile(batch.layout.report, opts["report_path"])
        except OSError as exc:
            raise BatchError(f"cannot write report {opts['report_path']}: {exc}") from exc
    print_summary(console, report)
    click.echo(f"report: {batch.layout.report}")
    if not report.ok:
        raise SystemExit(1)


def load_identity_pool(registry: Registry, path: Path) -> str:
    """Add the identities of CSV ``path`` to its pool in the registry; returns the pool's name.

    Raises:
        AllocationError: the file cannot be read or has a bad row.
    """
    text = read_csv_file(path, AllocationError, "identity CSV")
    pool = f"csv:{path.name}"[:128]
    registry.load_pool(pool, parse_identity_csv(text))
    return pool


def print_summary(console: Console, report: BatchReport, max_failures: int = 20) -> None:
    """Counts per status, then the failed devices with their reasons."""
    table = Table(title=f"batch {report.batch_id[:12]} · {report.step}")
    table.add_column("status")
    table.add_column("devices", justify="right")
    for status, count in sorted(report.counts().items()):
        table.add_row(status, str(count))
    console.print(table)
    failed = report.failures
    if not failed:
        return
    # Plain lines rather than a table: reasons are long and must stay greppable in logs.
    console.print("[bold]not provisioned:[/bold]")
    for device in failed[:max_failures]:
        code = "" if device.code is None else f"[{device.code}] "
        who = " ".join(part for part in (device.address, device.endpoint_name or "") if part)
        console.print(f"  line {device.line} {who}: {code}{device.reason}", markup=False, highlight=False)
    if report.failed > max_failures:
        console.print(f"… and {report.failed - max_failures} more in the JSON report")


@click.group("batch", cls=ProvkitGroup)
def batch_group() -> None:
    """Provision many devices: prepare bundles, inject them, verify the answers."""


@batch_group.command("unseal")
@click.argument("sealed", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--key",
    "key_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The archive private key (keystore/bundle_archive_key.pem, or where it is kept).",
)
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the clear bundle (mode 0600).",
)
def unseal_cmd(sealed: Path, key_path: Path, output: Path) -> None:
    """Open a sealed bundle (bundles/*.cbor.sealed) with the archive private key."""
    write_private_file(output, unseal_bundle(sealed, load_archive_private_key(key_path)))
    click.echo(f"{output}: the bundle in clear (it may hold the device's private key: delete it after use)")


@batch_group.command("prepare")
@batch_options
def prepare_cmd(ctx: click.Context, **opts: Any) -> None:
    """Prepare bundles for every device (in parallel over CPU cores)."""
    _run_step(ctx, "prepare", **opts)


@batch_group.command("inject")
@batch_options
def inject_cmd(ctx: click.Context, **opts: Any) -> None:
    """Send prepared bundles to the devices over TCP (--concurrency at once)."""
    _run_step(ctx, "inject", **opts)


def connect_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The end-of-line connection check's options (verify, run)."""
    decorators = [
        click.option(
            "--connect",
            is_flag=True,
            help="A device is good only once its first connection (bootstrap, registration) succeeded.",
        ),
        click.option(
            "--connect-step-timeout",
            type=click.FloatRange(0.1),
            default=10.0,
            show_default=True,
            help="Seconds the device gives each DTLS handshake and exchange of its first connection.",
        ),
        click.option(
            "--connect-bootstrap", is_flag=True, help="Make devices bootstrap even if they hold an account."
        ),
    ]
    for decorator in reversed(decorators):
        command = decorator(command)
    return command


def _with_connect(opts: dict[str, Any]) -> dict[str, Any]:
    from provkit.line.connect import ConnectSettings

    wanted = opts.pop("connect"), opts.pop("connect_step_timeout"), opts.pop("connect_bootstrap")
    if wanted[0]:
        opts["connect_settings"] = ConnectSettings(
            timeout=wanted[1], concurrency=opts["concurrency"], bootstrap=wanted[2]
        )
    return opts


@batch_group.command("verify")
@connect_options
@batch_options
def verify_cmd(ctx: click.Context, **opts: Any) -> None:
    """Check the answers, record the provisioned devices (--connect: and their first connection)."""
    _run_step(ctx, "verify", **_with_connect(opts))


@batch_group.command("run")
@connect_options
@batch_options
def run_cmd(ctx: click.Context, **opts: Any) -> None:
    """Prepare, inject and verify (--connect: and the first connection); run again to resume."""
    _run_step(ctx, "run", **_with_connect(opts))
