"""Where the FCU finds its home, resources, keystore and configuration file.

Resolution order for each directory, as in the FCU documentation: the API argument, then
the environment variable (``FCU_HOME_DIR``, ``FCU_RESOURCES_DIR``, ``FCU_KEYSTORE_DIR``),
then the default (the working directory, ``<home>/resources``, ``<home>/keystore``).
"""

from __future__ import annotations

import errno
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from provkit.codes import FcuErrorCode
from provkit.errors import ConfigError

CA_KEY_FILE: Final = "fcu_key.pem"
"""File name of the factory CA private key inside the keystore."""

CA_CERT_FILE: Final = "fcu.crt"
"""File name of the factory CA certificate (and its chain, leaf first) inside the keystore."""

CA_CSR_FILE: Final = "fcu.csr"
"""File name of the CSR written by setup in intermediate-CA mode."""

CA_KEY_REFERENCE_FILE: Final = "fcu_key.pkcs11"
"""File name of the token key's URI, which setup writes instead of a key file for an HSM key."""

MAX_FILE_BYTES: Final = 64 * 1024
"""Largest file the FCU reads by default (certificates, keys, CRLs, data files).

A device agent takes messages of at most 64 KiB, so no larger file could reach a device
in a bundle; reading stops there instead of loading whatever a path points at.
"""


def read_regular_file(path: Path, *, max_bytes: int = MAX_FILE_BYTES) -> bytes:
    """Read ``path``, which must be a regular file of at most ``max_bytes`` bytes.

    Raises:
        OSError: the file cannot be read, it is a directory, a FIFO or a device (whose
            read could block forever), or it is larger than ``max_bytes`` (``EFBIG``).
    """
    if path.exists() and not path.is_file():
        raise OSError("not a regular file")
    with path.open("rb") as handle:
        data = handle.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise OSError(errno.EFBIG, f"file is larger than {max_bytes:,} bytes, the most provkit reads here")
    return data


def _resolved(path: Path) -> Path:
    try:
        return path.expanduser().resolve()
    except (OSError, RuntimeError, ValueError) as exc:  # a symlink loop (3.11), a NUL in the name
        raise ConfigError.from_code(
            FcuErrorCode.CONFIG_LOAD_FAILED,
            path,
            hint=f"cannot resolve {path}: {exc}; check the FCU directories",
        ) from exc


@dataclass(frozen=True, slots=True)
class FcuPaths:
    """The resolved FCU directories and configuration file.

    Attributes:
        home: the FCU home directory.
        resources: directory of resource files (server CA certificates, update certificate …).
        keystore: directory holding the factory CA key and certificate.
        config_file: the ``fcu.yml`` in use.
    """

    home: Path
    resources: Path
    keystore: Path
    config_file: Path

    @classmethod
    def resolve(
        cls,
        home_dir: str | os.PathLike[str] | None = None,
        resources_dir: str | os.PathLike[str] | None = None,
        keystore_dir: str | os.PathLike[str] | None = None,
        config_file: str | os.PathLike[str] | None = None,
        *,
        environ: Mapping[str, str] | None = None,
    ) -> FcuPaths:
        """Resolve the directories from arguments, environment and defaults.

        Raises:
            ConfigError: 190 when a directory cannot be resolved (e.g. a symlink loop).
        """
        env = os.environ if environ is None else environ
        home = _resolved(Path(home_dir or env.get("FCU_HOME_DIR") or Path.cwd()))
        resources = Path(resources_dir or env.get("FCU_RESOURCES_DIR") or home / "resources")
        keystore = Path(keystore_dir or env.get("FCU_KEYSTORE_DIR") or home / "keystore")
        config = Path(config_file or home / "config" / "fcu.yml")
        return cls(home, _resolved(resources), _resolved(keystore), _resolved(config))

    @property
    def ca_key(self) -> Path:
        """Path of the CA private key (``keystore/fcu_key.pem``)."""
        return self.keystore / CA_KEY_FILE

    @property
    def ca_cert(self) -> Path:
        """Path of the CA certificate (``keystore/fcu.crt``)."""
        return self.keystore / CA_CERT_FILE

    @property
    def ca_key_reference(self) -> Path:
        """Path of the token key's URI (``keystore/fcu_key.pkcs11``), written by setup with an HSM."""
        return self.keystore / CA_KEY_REFERENCE_FILE

    @property
    def ca_csr(self) -> Path:
        """Path of the intermediate-CA CSR (``keystore/fcu.csr``)."""
        return self.keystore / CA_CSR_FILE

    def template_variables(self) -> dict[str, str]:
        """Values the ``<%= ENV['…'] %>`` placeholders see for the reserved FCU variables."""
        return {
            "FCU_HOME_DIR": str(self.home),
            "FCU_RESOURCES_DIR": str(self.resources),
            "FCU_KEYSTORE_DIR": str(self.keystore),
        }
