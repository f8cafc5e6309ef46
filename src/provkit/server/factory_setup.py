"""Pointing a factory (FCU home) at this server, and this server at the factory.

:func:`point_factory` writes the server CA where ``fcu.yml`` takes the bootstrap and
LwM2M server CA certificates from (``<resources>/bootstrap_server_ca_cert.pem``,
``lwm2m_server_ca_cert.pem``) and sets ``bootstrap-server-uri`` / ``lwm2m-server-uri`` to
the server's URIs, keeping each URI's ``aid`` query (FCC requires one). Only those lines of
``fcu.yml`` change; its comments stay. Together with trusting the factory CA
(``registry.trust.add``), that is everything a line needs for provisioned devices to
connect here.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

from provkit.errors import ServerSetupError
from provkit.server.home import ServerMaterial

_DEFAULT_AID: Final = "0123456789abcdef0123456789abcdef"
CA_FILES: Final = ("bootstrap_server_ca_cert.pem", "lwm2m_server_ca_cert.pem")


def _with_aid(new_uri: str, old_uri: str) -> str:
    query = urlsplit(old_uri.strip().strip("'\"")).query
    aid = next((part for part in query.split("&") if part.startswith("aid=")), f"aid={_DEFAULT_AID}")
    return f"{new_uri}?{aid}"


def point_factory(
    home: Path, material: ServerMaterial, *, bootstrap_uri: str | None, lwm2m_uri: str | None
) -> Path:
    """Make the FCU home at ``home`` provision devices for this server; return the ``fcu.yml`` changed.

    Raises:
        ServerSetupError: the home has no ``config/fcu.yml``, or a file cannot be written.
    """
    config = home / "config" / "fcu.yml"
    resources = home / "resources"
    try:
        text = config.read_text(encoding="utf-8")
    except OSError as exc:
        raise ServerSetupError(
            f"{config} is unreadable: {exc.strerror or exc}", hint="run 'provkit init' first"
        ) from exc
    for key, uri in (("bootstrap-server-uri", bootstrap_uri), ("lwm2m-server-uri", lwm2m_uri)):
        if uri is None:
            continue
        pattern = re.compile(rf"^{key}:(.*)$", re.MULTILINE)
        match = pattern.search(text)
        line = f"{key}: {_with_aid(uri, match.group(1) if match else '')}"
        text = pattern.sub(line, text, count=1) if match else text.rstrip("\n") + f"\n{line}\n"
    try:
        resources.mkdir(parents=True, exist_ok=True)
        for name in CA_FILES:
            (resources / name).write_bytes(material.ca_pem)
        config.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ServerSetupError(f"cannot update the factory home {home}: {exc.strerror or exc}") from exc
    return config
