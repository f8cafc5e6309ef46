"""Moving frames between the factory tool and devices: links, streams and the device agent.

Transports sit just above the wire formats, below both sides: they move bytes and know
no FCC or FCU. The device side plugs its handlers into the agent
(:mod:`provkit.device.handlers`); the factory side talks through a :class:`DeviceLink`.

* :mod:`provkit.transport.links` — factory side: :class:`TcpLink`, :class:`SerialLink`,
  :class:`FileLink`.
* :mod:`provkit.transport.agent` — device side: :class:`DeviceAgent` and :class:`Reply`.
* :mod:`provkit.transport.servers` — run an agent on TCP or serial, in-process or blocking.

See ``docs/transports.md``.
"""

from __future__ import annotations

from provkit.transport.agent import DeviceAgent, MessageHandler, Reply, SessionEnd
from provkit.transport.errors import ChecksumError, DeviceStatusError
from provkit.transport.links import DeviceLink, FileLink, SerialLink, TcpLink
from provkit.transport.servers import SerialAgentServer, TcpAgentServer

__all__ = [
    "ChecksumError",
    "DeviceAgent",
    "DeviceLink",
    "DeviceStatusError",
    "FileLink",
    "MessageHandler",
    "Reply",
    "SerialAgentServer",
    "SerialLink",
    "SessionEnd",
    "TcpAgentServer",
    "TcpLink",
]
