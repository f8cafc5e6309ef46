"""Creating an FCU home: the commented ``fcu.yml`` template, ``resources/``, and demo material.

``provkit init`` uses :func:`init_home`; ``provkit demo`` uses :func:`make_demo_home`,
which additionally writes throw-away server CA certificates into ``resources/``. Those
are labelled DEMO in their subject: they let a demo device verify its bundle and nothing
else (no real server holds their keys).
"""

from __future__ import annotations

import datetime as dt
from importlib import resources
from pathlib import Path
from typing import Final

from provkit.codes import FcuErrorCode
from provkit.crypto import issue, keys, x509
from provkit.errors import FactoryError
from provkit.factory.paths import FcuPaths

TEMPLATE_NAME: Final = "fcu.yml"
DEMO_SERVER_CA_FILES: Final = ("bootstrap_server_ca_cert.pem", "lwm2m_server_ca_cert.pem")
_DEMO_SUBJECT: Final = {
    "common-name": "provkit DEMO server CA - not for production",
    "organization-name": "provkit demo",
}


def template_text() -> str:
    """Return the embedded, commented ``fcu.yml`` template."""
    return resources.files("provkit.factory.templates").joinpath(TEMPLATE_NAME).read_text(encoding="utf-8")


def init_home(home: Path, *, force: bool = False) -> FcuPaths:
    """Write ``<home>/config/fcu.yml`` (the template) and create ``resources/``.

    Raises:
        FactoryError: 290 when ``fcu.yml`` exists and ``force`` is false.
    """
    paths = FcuPaths.resolve(home, environ={})
    if paths.config_file.exists() and not force:
        raise FactoryError.from_code(
            FcuErrorCode.FILE_ALREADY_EXISTS, paths.config_file, hint="overwrite it with `force`"
        )
    paths.config_file.parent.mkdir(parents=True, exist_ok=True)
    paths.resources.mkdir(parents=True, exist_ok=True)
    paths.config_file.write_text(template_text(), encoding="utf-8")
    return paths


def write_demo_server_cas(resources_dir: Path, *, now: dt.datetime | None = None) -> list[Path]:
    """Write self-signed DEMO server CA certificates where the template expects them."""
    resources_dir.mkdir(parents=True, exist_ok=True)
    moment = now or dt.datetime.now(dt.UTC)
    written = []
    for name in DEMO_SERVER_CA_FILES:
        cert = issue.create_ca(keys.generate_p256(), _DEMO_SUBJECT, now=moment)
        path = resources_dir / name
        path.write_bytes(x509.certificate_pem([cert]))
        written.append(path)
    return written


def make_demo_home(home: Path) -> FcuPaths:
    """Create a complete demo FCU home in ``home``: template, resources and demo server CAs."""
    paths = init_home(home, force=True)
    write_demo_server_cas(paths.resources)
    return paths
