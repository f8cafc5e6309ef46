"""Where a device agent may listen: loopback, unless remote access is asked for explicitly.

The agent's protocol is FCC's: a frame's signature is a plain SHA-256 of its message,
not a MAC, and nothing authenticates the factory tool. Anyone who reaches the port can
provision the device, or send ``Disable`` and end its factory flow for good. So agents,
device farms and SMP servers listen on loopback by default and refuse any other address
unless the caller passes ``allow_remote`` (``--allow-remote``): then the network between
the station and the devices is what protects them (see ``docs/transports.md``).
"""

from __future__ import annotations

import ipaddress
import socket

from provkit.errors import RemoteBindRefused


def is_loopback(host: str) -> bool:
    """Whether every address ``host`` names is a loopback address (``""`` is every interface)."""
    if not host:
        return False
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except (OSError, UnicodeError):
        return False  # not resolvable here: the bind itself will say so
    return bool(infos) and all(ipaddress.ip_address(str(info[4][0])).is_loopback for info in infos)


def check_bind_address(host: str, *, allow_remote: bool) -> None:
    """Refuse to listen on ``host`` unless it is loopback or remote access is allowed.

    Raises:
        RemoteBindRefused: 1000, naming the address and what a remote peer could do.
    """
    if allow_remote or is_loopback(host):
        return
    raise RemoteBindRefused(host)
