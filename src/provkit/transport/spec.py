"""Link specs: one line of text says how to reach a device.

=========================  ==================================================
``tcp:HOST:PORT``          a device agent over TCP (``[v6]:PORT`` for IPv6)
``serial:PORT[@BAUD]``     a device agent on a serial port (default 115200)
``file:PATH``              no device: write the request frames to ``PATH``
``smp-serial:PORT[@BAUD]`` a Zephyr board's SMP server on a serial port (files)
``smp-udp:HOST[:PORT]``    a Zephyr board's SMP server on UDP (default port 1337)
=========================  ==================================================

The ``smp-*`` targets are :class:`SmpTarget` s: they carry files to a board's SMP
file-system group (:meth:`SmpTarget.open_files`), not provkit frames.

:func:`parse_link` turns a spec into a :class:`LinkTarget`, which opens a fresh link with
given :class:`~provkit.transport.link.LinkSettings` each time it is asked (a retry runs on
a new connection). Every command option that names a device (``inject … tcp --ip --port``,
``--tcp IP:PORT``, a ``devices.csv`` address) builds its target here, so ``host:port``
has one set of rules.

Adding a scheme is a change in this module only: write a :class:`LinkTarget` subclass
(its ``scheme``, ``usage``, ``parse`` and ``open``) and list it in :data:`SCHEMES`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, ClassVar, Final, Self

from provkit.errors import LinkSpecError
from provkit.transport.link import (
    DEFAULT_BAUD_RATE,
    DEFAULT_LINK_SETTINGS,
    DEFAULT_TCP_PORT,
    DeviceLink,
    LinkSettings,
)

if TYPE_CHECKING:
    from provkit.transport.smp_link import SmpLink, SmpSettings

DEFAULT_SMP_UDP_PORT: Final = 1337
"""Zephyr's ``CONFIG_MCUMGR_TRANSPORT_UDP_PORT``."""


class LinkTarget(ABC):
    """A device to reach: the parsed form of a link spec."""

    scheme: ClassVar[str]
    """The spec's prefix, e.g. ``"tcp"``."""

    usage: ClassVar[str]
    """The spec's shape, for messages, e.g. ``"tcp:HOST:PORT"``."""

    returns_responses: ClassVar[bool] = True
    """Whether the device answers over this link (a file carries nothing back)."""

    @classmethod
    @abstractmethod
    def parse(cls, rest: str) -> Self:
        """Build the target from the text after ``scheme:``.

        Raises:
            LinkSpecError: the text does not fit :attr:`usage`.
        """

    @abstractmethod
    def open(self, settings: LinkSettings = DEFAULT_LINK_SETTINGS) -> DeviceLink:
        """A new, not yet connected link to the target (connected by its first exchange)."""

    @abstractmethod
    def spec(self) -> str:
        """The link spec that parses back to this target."""

    def __str__(self) -> str:
        return self.spec()


def parse_port(text: str, what: str) -> int:
    """A TCP or UDP port number, 1–65535.

    Raises:
        LinkSpecError: anything else, naming ``what`` was being read.
    """
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise LinkSpecError(f"{what}: port {text!r} is not a number from 1 to 65535")
    return int(text)


def parse_host_port(text: str, *, default_port: int | None = None) -> tuple[str, int]:
    """Split ``HOST:PORT`` (``[v6]:PORT`` for IPv6, ``HOST`` alone with a default port).

    Raises:
        LinkSpecError: no host, or no port and no default, or a port outside 1–65535.
    """
    stripped = text.strip()
    if stripped.startswith("[") and "]" in stripped:
        host, _, after = stripped[1:].partition("]")
        sep, port_text = after[:1], after[1:]
        if after and sep != ":":
            raise LinkSpecError(f"address {text!r} is not [HOST]:PORT")
    else:
        host, sep, port_text = stripped.rpartition(":")
        if not sep:
            host, port_text = stripped, ""
    if not host:
        raise LinkSpecError(f"address {text!r} has no host: give HOST:PORT")
    if not port_text:
        if default_port is None:
            raise LinkSpecError(f"address {text!r} has no port: give HOST:PORT")
        return host, default_port
    return host, parse_port(port_text, f"address {text!r}")


@dataclass(frozen=True, slots=True)
class TcpTarget(LinkTarget):
    """A device agent listening on TCP.

    Raises:
        LinkSpecError: an empty host or a port outside 1–65535.
    """

    scheme: ClassVar[str] = "tcp"
    usage: ClassVar[str] = "tcp:HOST:PORT"

    host: str
    port: int = DEFAULT_TCP_PORT

    def __post_init__(self) -> None:
        if not self.host:
            raise LinkSpecError("a TCP target needs a host")
        if not 0 < self.port < 65536:
            raise LinkSpecError(f"TCP port {self.port} is not from 1 to 65535")

    @classmethod
    def parse(cls, rest: str) -> Self:
        """``HOST:PORT`` or ``[v6]:PORT``."""
        host, port = parse_host_port(rest)
        return cls(host, port)

    @property
    def address(self) -> str:
        """``HOST:PORT`` (``[v6]:PORT``), as a ``devices.csv`` writes it."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def open(self, settings: LinkSettings = DEFAULT_LINK_SETTINGS) -> DeviceLink:
        """A :class:`~provkit.transport.links.TcpLink` with the settings' timeouts."""
        from provkit.transport.links import TcpLink

        return TcpLink(
            self.host,
            self.port,
            connect_timeout_s=settings.connect_timeout_s,
            read_timeout_s=settings.timeout_s,
        )

    def spec(self) -> str:
        """``tcp:HOST:PORT``."""
        return f"{self.scheme}:{self.address}"


@dataclass(frozen=True, slots=True)
class SerialTarget(LinkTarget):
    """A device agent on a serial port (a UART, USB CDC ACM, a pty or a pyserial URL).

    Raises:
        LinkSpecError: an empty port name or a baud rate below 1.
    """

    scheme: ClassVar[str] = "serial"
    usage: ClassVar[str] = "serial:PORT[@BAUD]"

    port: str
    baud_rate: int = DEFAULT_BAUD_RATE

    def __post_init__(self) -> None:
        if not self.port:
            raise LinkSpecError("a serial target needs a port, e.g. serial:/dev/ttyACM0")
        if self.baud_rate < 1:
            raise LinkSpecError(f"baud rate {self.baud_rate} is not a positive number")

    @classmethod
    def parse(cls, rest: str) -> Self:
        """``PORT`` or ``PORT@BAUD``."""
        port, sep, baud = rest.rpartition("@")
        if not sep:
            return cls(rest)
        if not baud.isdigit():
            raise LinkSpecError(f"serial:{rest}: baud rate {baud!r} is not a number")
        return cls(port, int(baud))

    def open(self, settings: LinkSettings = DEFAULT_LINK_SETTINGS) -> DeviceLink:
        """A :class:`~provkit.transport.links.SerialLink` with the settings' response timeout."""
        from provkit.transport.links import SerialLink

        return SerialLink(self.port, baud_rate=self.baud_rate, read_timeout_s=settings.timeout_s)

    def spec(self) -> str:
        """``serial:PORT`` (``@BAUD`` when not the default)."""
        baud = "" if self.baud_rate == DEFAULT_BAUD_RATE else f"@{self.baud_rate}"
        return f"{self.scheme}:{self.port}{baud}"


@dataclass(frozen=True, slots=True)
class FileTarget(LinkTarget):
    """No device: the request frames go into a file, to be replayed to a device later.

    Raises:
        LinkSpecError: an empty path.
    """

    scheme: ClassVar[str] = "file"
    usage: ClassVar[str] = "file:PATH"
    returns_responses: ClassVar[bool] = False

    path: Path

    def __post_init__(self) -> None:
        if not str(self.path) or str(self.path) == ".":
            raise LinkSpecError("a file target needs a path, e.g. file:request.bin")

    @classmethod
    def parse(cls, rest: str) -> Self:
        """``PATH``."""
        if not rest:
            raise LinkSpecError("a file target needs a path, e.g. file:request.bin")
        return cls(Path(rest))

    def open(self, settings: LinkSettings = DEFAULT_LINK_SETTINGS) -> DeviceLink:
        """A :class:`~provkit.transport.links.FileLink` (no timeouts: nothing is awaited)."""
        from provkit.transport.links import FileLink

        del settings
        return FileLink(self.path)

    def spec(self) -> str:
        """``file:PATH``."""
        return f"{self.scheme}:{self.path}"


class SmpTarget(LinkTarget):
    """A Zephyr board's SMP server: it takes files (:meth:`open_files`), not provkit frames."""

    def open(self, settings: LinkSettings = DEFAULT_LINK_SETTINGS) -> DeviceLink:
        """Refused: a frame flow cannot use an SMP board.

        Raises:
            LinkSpecError: always, naming the target.
        """
        del settings
        raise LinkSpecError(
            f"{self.spec()} is an SMP board: it takes files (LwM2M blobs), not provkit frames"
        )

    @abstractmethod
    def open_files(self, settings: SmpSettings | None = None) -> SmpLink:
        """A new, not yet connected SMP link to the board."""


@dataclass(frozen=True, slots=True)
class SmpSerialTarget(SmpTarget):
    """An SMP server on a serial port (Zephyr's console framing).

    Raises:
        LinkSpecError: an empty port name or a baud rate below 1.
    """

    scheme: ClassVar[str] = "smp-serial"
    usage: ClassVar[str] = "smp-serial:PORT[@BAUD]"

    port: str
    baud_rate: int = DEFAULT_BAUD_RATE

    def __post_init__(self) -> None:
        if not self.port:
            raise LinkSpecError("an SMP serial target needs a port, e.g. smp-serial:/dev/ttyACM0")
        if self.baud_rate < 1:
            raise LinkSpecError(f"baud rate {self.baud_rate} is not a positive number")

    @classmethod
    def parse(cls, rest: str) -> Self:
        """``PORT`` or ``PORT@BAUD``."""
        serial = SerialTarget.parse(rest)  # the same PORT[@BAUD] rule
        return cls(serial.port, serial.baud_rate)

    def open_files(self, settings: SmpSettings | None = None) -> SmpLink:
        """An :class:`~provkit.transport.smp_link.SmpLink` over the port."""
        from provkit.transport.smp_link import SmpLink

        return SmpLink.serial(self.port, baud_rate=self.baud_rate, settings=settings)

    def spec(self) -> str:
        """``smp-serial:PORT`` (``@BAUD`` when not the default)."""
        baud = "" if self.baud_rate == DEFAULT_BAUD_RATE else f"@{self.baud_rate}"
        return f"{self.scheme}:{self.port}{baud}"


@dataclass(frozen=True, slots=True)
class SmpUdpTarget(SmpTarget):
    """An SMP server on UDP.

    Raises:
        LinkSpecError: an empty host or a port outside 1–65535.
    """

    scheme: ClassVar[str] = "smp-udp"
    usage: ClassVar[str] = "smp-udp:HOST[:PORT]"

    host: str
    port: int = DEFAULT_SMP_UDP_PORT

    def __post_init__(self) -> None:
        if not self.host:
            raise LinkSpecError("an SMP UDP target needs a host")
        if not 0 < self.port < 65536:
            raise LinkSpecError(f"UDP port {self.port} is not from 1 to 65535")

    @classmethod
    def parse(cls, rest: str) -> Self:
        """``HOST``, ``HOST:PORT`` or ``[v6]:PORT``."""
        host, port = parse_host_port(rest, default_port=DEFAULT_SMP_UDP_PORT)
        return cls(host, port)

    def open_files(self, settings: SmpSettings | None = None) -> SmpLink:
        """An :class:`~provkit.transport.smp_link.SmpLink` over UDP."""
        from provkit.transport.smp_link import SmpLink

        return SmpLink.udp(self.host, self.port, settings=settings)

    def spec(self) -> str:
        """``smp-udp:HOST:PORT``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}:{host}:{self.port}"


SCHEMES: Final[Mapping[str, type[LinkTarget]]] = MappingProxyType(
    {target.scheme: target for target in (TcpTarget, SerialTarget, FileTarget, SmpSerialTarget, SmpUdpTarget)}
)
"""Every scheme :func:`parse_link` knows, by prefix."""


def link_usage() -> str:
    """The accepted spec shapes, for messages and help (``tcp:HOST:PORT, serial:…``)."""
    return ", ".join(target.usage for target in SCHEMES.values())


def parse_link(text: str, *, default_scheme: str | None = None) -> LinkTarget:
    """Parse a link spec (see the module docstring).

    Args:
        text: the spec.
        default_scheme: the scheme of a spec written without one (``"tcp"`` reads
            ``HOST:PORT`` as ``tcp:HOST:PORT``); ``None`` requires a scheme.

    Raises:
        LinkSpecError: an unknown scheme, or the rest does not fit the scheme's usage.
    """
    scheme, sep, rest = text.strip().partition(":")
    target = SCHEMES.get(scheme) if sep else None
    if target is None:
        if default_scheme is None:
            raise LinkSpecError(f"link {text!r} is not one of {link_usage()}")
        target, rest = SCHEMES[default_scheme], text.strip()
    return target.parse(rest)
