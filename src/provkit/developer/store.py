"""The user and team stores of the MBL CLI developer flow, in mbl-cli's on-disk format.

``~/.mbl-stores.json`` records where the stores are (``{"user": path, "team": path}``,
written with the defaults ``~/.mbl-store/user`` and ``~/.mbl-store/team`` on first use).
Each store is a directory with ``config.json``::

    {"location": "<abs dir>", "api_key": "<str>", "dev_certs": {"<name>": ["<abs path>.bin", ...]}}

and one sub-directory per certificate set holding ``<C variable name>.bin`` files
(PelionIoT/mbl-cli ``mbl/cli/utils/store.py``). Developer and update certificates share ``dev_certs``, as
in mbl-cli, so stores stay readable by both tools.

Permissions are explicit (umask-proof): the user store (it holds the API key in clear)
is ``0700`` with a ``0600`` ``config.json``. The team store is ``0770`` and its files
``0660``: mbl-cli's documentation promised ``drwxrw----`` (``0760``), but a directory
without the execute bit cannot be entered, so the group could list names and open
nothing; ``0770`` is the usable form of that intent. Private-key files are team files
like the others (``0660``, never world-readable): the team store exists so that "any team
member who has access to this folder can provision devices with these credentials"
(Mbed Linux OS provisioning documentation), and provisioning needs the developer certificate's key.

Every directory and file in a store is brought to these modes when its owner opens it,
including what mbl-cli or a restore left with umask modes. Store paths in the record must
be absolute (see :func:`store_locations`).

Every write replaces files atomically and runs under an exclusive ``flock`` of the store,
so team members adding certificates at the same time do not lose each other's entries.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any, Final

from provkit.developer.fsutil import atomic_write, fsync_dir, locked, make_dirs, set_mode
from provkit.errors import StoreError

HOME_ENV: Final = "PROVKIT_DEVELOPER_HOME"
"""Directory holding ``.mbl-stores.json`` and the default stores (default: the user's home)."""

LOCATIONS_FILE: Final = ".mbl-stores.json"
USER: Final = "user"
TEAM: Final = "team"
CLOUD_FILE: Final = ".cloud.json"
"""Per-certificate record of the Device Management certificate id (not a ``.bin``)."""

_NAME_RE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
_VARIABLE_RE: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True, slots=True)
class _Modes:
    directory: int
    keep: int
    """Bits an administrator may have added to a directory that are kept (team setgid)."""
    file: int


_MODES: Final = {
    USER: _Modes(directory=0o700, keep=0, file=0o600),
    TEAM: _Modes(directory=0o770, keep=0o2000, file=0o660),
}


def developer_home(home: Path | None = None) -> Path:
    """Return ``home``, else ``$PROVKIT_DEVELOPER_HOME``, else the user's home directory."""
    if home is not None:
        return home
    env = os.environ.get(HOME_ENV)
    return Path(env) if env else Path.home()


def store_locations(home: Path | None = None) -> dict[str, Path]:
    """Read ``.mbl-stores.json``, writing the defaults first if it is absent or empty.

    Store paths must be absolute. mbl-cli (``StoreLocationsRecord.get`` in
    PelionIoT/mbl-cli ``mbl/cli/utils/store.py``) takes a path as it is written: a
    relative one from the directory it happens to run in and ``~`` as a directory named
    ``~``. Following that would move the store with the current directory; resolving it
    any other way would make provkit and mbl-cli use different stores from one record.
    Either is refused with the absolute path to write instead.

    Raises:
        StoreError: the record cannot be read, is not a JSON object of non-empty path
            strings, or holds a relative or ``~`` path.
    """
    base = developer_home(home)
    record = base / LOCATIONS_FILE
    try:
        text = record.read_text(encoding="utf-8") if record.is_file() else ""
    except (OSError, UnicodeDecodeError) as exc:
        raise StoreError(f"cannot read {record}: {exc}") from exc
    if not text.strip():
        defaults = {USER: str(base / ".mbl-store" / USER), TEAM: str(base / ".mbl-store" / TEAM)}
        make_dirs(base, 0o700)
        atomic_write(record, (json.dumps(defaults, indent=4) + "\n").encode(), 0o600)
        return {kind: Path(path) for kind, path in defaults.items()}
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise StoreError(f"{record} is not JSON: {exc}") from exc
    if not isinstance(data, dict) or not all(isinstance(v, str) and v.strip() for v in data.values()):
        # An empty path would make the current directory a store (and chmod it).
        raise StoreError(f"{record} must be a JSON object of non-empty store paths")
    locations = {str(kind): _absolute_store_path(record, str(kind), path) for kind, path in data.items()}
    if USER in locations and TEAM in locations and locations[USER].resolve() == locations[TEAM].resolve():
        # One config.json for both would put the API key in a group-readable file.
        raise StoreError(f"{record}: the user and team stores must be different directories")
    return locations


def _absolute_store_path(record: Path, kind: str, path: str) -> Path:
    if path.startswith("~"):
        raise StoreError(
            f"{record}: the {kind} store path {path!r} starts with '~'; mbl-cli does not expand it "
            "(it would use a directory named '~' under the directory it runs in)",
            # os.path leaves an unknown ``~user`` as it is where pathlib raises.
            hint=f"write the absolute path in {record}, e.g. {os.path.expanduser(path)!r}",  # noqa: PTH111
        )
    if not Path(path).is_absolute():
        raise StoreError(
            f"{record}: the {kind} store path {path!r} is relative; mbl-cli reads it from the "
            "directory it runs in, so the store would change with the current directory",
            hint=f"write an absolute path in {record}, e.g. {str(record.parent.resolve() / path)!r}",
        )
    return Path(path)


def check_certificate_name(name: str) -> str:
    """Return ``name`` if usable as a certificate directory name.

    Raises:
        StoreError: empty, too long, a path, hidden, or other than ``A–Z a–z 0–9 . _ -``.
    """
    if not _NAME_RE.fullmatch(name):
        raise StoreError(
            f"invalid certificate name {name!r}",
            hint="use 1-100 characters of A-Z a-z 0-9 . _ -, starting with a letter or digit",
        )
    return name


def _files(directory: Path) -> list[Path]:
    try:
        return [item for item in directory.iterdir() if item.is_file() and not item.is_symlink()]
    except OSError as exc:
        raise StoreError(f"cannot list {directory}: {exc}") from exc


class Store:
    """One store directory and its ``config.json``.

    Use :meth:`open`; the directory and an empty ``config.json`` are created on first use.

    Attributes:
        kind: ``"user"`` or ``"team"``.
        location: the store directory.
    """

    def __init__(self, kind: str, location: Path) -> None:
        if kind not in _MODES:
            raise StoreError(f"store type {kind!r} not recognised; only user and team are supported")
        self.kind = kind
        self.location = location
        self._modes = _MODES[kind]

    @classmethod
    def open(cls, kind: str, home: Path | None = None) -> Store:
        """Open (creating if needed) the store of type ``kind`` recorded under ``home``.

        Raises:
            StoreError: an unknown store type, or the store cannot be created or read.
        """
        if kind not in _MODES:
            raise StoreError(f"store type {kind!r} not recognised; only user and team are supported")
        locations = store_locations(home)
        if kind not in locations:
            raise StoreError(f"{developer_home(home) / LOCATIONS_FILE} has no {kind!r} store")
        store = cls(kind, locations[kind].resolve())
        if not make_dirs(store.location, store._modes.directory):
            store._bring_to_modes()
        with store._lock(exclusive=True):
            if not store.config_path.exists():
                store._write_config({"location": str(store.location), "api_key": "", "dev_certs": {}})
        return store

    def _bring_to_modes(self) -> None:
        """Give the store and everything in it the documented modes, whoever created them.

        A store written by mbl-cli (or restored from a backup) has umask modes: a private
        key at 0644, certificate directories at 0755. Only the owner's opening changes
        them (see :func:`~provkit.developer.fsutil.set_mode`).
        """
        modes = self._modes
        set_mode(self.location, modes.directory, modes.keep)
        try:
            entries = list(self.location.iterdir())
        except OSError as exc:
            raise StoreError(f"cannot list {self.location}: {exc}") from exc
        for entry in entries:
            if entry.is_symlink():
                continue
            if entry.is_dir():
                if entry.name.startswith("."):
                    continue  # a staging directory of a write in progress
                set_mode(entry, modes.directory, modes.keep)
                for item in _files(entry):
                    set_mode(item, modes.file)
            else:
                set_mode(entry, modes.file)

    @property
    def config_path(self) -> Path:
        """The store's ``config.json``."""
        return self.location / "config.json"

    def _lock(self, *, exclusive: bool) -> Any:
        return locked(self.location, exclusive=exclusive, mode=self._modes.file)

    def _read_config(self) -> dict[str, Any]:
        try:
            data = json.loads(self.config_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:  # ValueError: not JSON, or not UTF-8
            raise StoreError(f"cannot read {self.config_path}: {exc}") from exc
        certs = data.get("dev_certs") if isinstance(data, dict) else None
        if (
            not isinstance(certs, dict)
            or not isinstance(data.get("api_key", ""), str)
            or not all(isinstance(v, list) and all(isinstance(p, str) for p in v) for v in certs.values())
        ):
            raise StoreError(f"{self.config_path} does not have the store layout")
        return dict(data)

    def _write_config(self, data: Mapping[str, Any]) -> None:
        text = json.dumps(data, indent=4, sort_keys=False) + "\n"
        atomic_write(self.config_path, text.encode("utf-8"), self._modes.file)

    # ------------------------------------------------------------ API key

    @property
    def api_key(self) -> str | None:
        """The saved API key, or ``None``."""
        with self._lock(exclusive=False):
            key = str(self._read_config().get("api_key", ""))
        return key or None

    def set_api_key(self, key: str) -> None:
        """Save ``key`` (stripped of whitespace), replacing any previous one."""
        with self._lock(exclusive=True):
            data = self._read_config()
            data["api_key"] = key.strip()
            self._write_config(data)

    # ------------------------------------------------------------ certificates

    def certificate_names(self) -> list[str]:
        """The names in ``dev_certs``, sorted."""
        with self._lock(exclusive=False):
            return sorted(self._read_config()["dev_certs"])

    def add_certificate(
        self, name: str, variables: Mapping[str, bytes], *, cloud_id: str | None = None
    ) -> list[Path]:
        """Save a certificate set as ``<name>/<VAR>.bin`` files, replacing a set of that name.

        The files are written to a staging directory and renamed into place under the
        store lock, so readers see the old or the new set complete.

        Args:
            name: the user-chosen certificate name.
            variables: ``{C variable name: bytes}``.
            cloud_id: the Device Management certificate id, kept for ``delete``.

        Returns:
            The ``.bin`` paths recorded in ``config.json``.

        Raises:
            StoreError: an invalid name or a write failure.
        """
        check_certificate_name(name)
        target = self.location / name
        with self._lock(exclusive=True):
            data = self._read_config()
            staging = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=self.location))
            try:
                staging.chmod(self._modes.directory)
                paths = []
                for var, value in variables.items():
                    atomic_write(staging / f"{var}.bin", bytes(value), self._modes.file)
                    paths.append(target / f"{var}.bin")
                if cloud_id is not None:
                    record = json.dumps({"id": cloud_id}).encode()
                    atomic_write(staging / CLOUD_FILE, record, self._modes.file)
                self._swap_in(staging, target)
            except BaseException:
                shutil.rmtree(staging, ignore_errors=True)
                raise
            data["dev_certs"][name] = [str(p) for p in paths]
            data["location"] = str(self.location)  # where the store is now, if it moved
            self._write_config(data)
        return paths

    def _swap_in(self, staging: Path, target: Path) -> None:
        old = None
        try:
            if target.exists():
                old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old.", dir=self.location))
                target.replace(old / target.name)
            staging.replace(target)
        except OSError as exc:
            raise StoreError(f"cannot replace {target}: {exc}") from exc
        fsync_dir(self.location)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)

    def certificate_variables(self, name: str) -> list[str]:
        """The C variable names of a saved set, from ``config.json`` alone (no file is read).

        Raises:
            StoreError: no set of that name, or a recorded path is not ``<VAR>.bin``.
        """
        with self._lock(exclusive=False):
            return self._variables(name)

    def _variables(self, name: str) -> list[str]:
        paths = self._read_config()["dev_certs"].get(name)
        if paths is None:
            raise StoreError(f"no certificate named {name!r} in the {self.kind} store ({self.location})")
        names = []
        for path in paths:
            var = PurePath(path).name.removesuffix(".bin")
            if not path.endswith(".bin") or not _VARIABLE_RE.fullmatch(var):
                raise StoreError(f"certificate {name!r}: {path!r} is not a <C variable>.bin path")
            names.append(var)
        return names

    def read_certificate(self, name: str) -> dict[str, bytes]:
        """Return ``{variable: bytes}`` of a saved set.

        Each file is read from ``<this store>/<name>/<VAR>.bin``, whatever directory
        ``config.json`` recorded: a team store shared over a network or a sync service
        sits at a different path on each member's machine, and a path edited to point
        outside the store (another member's files) must not be followed.

        Raises:
            StoreError: no set of that name, or a file is missing.
        """
        check_certificate_name(name)
        with self._lock(exclusive=False):
            out = {}
            for var in self._variables(name):
                path = self.location / name / f"{var}.bin"
                try:
                    out[var] = path.read_bytes()
                except OSError as exc:
                    raise StoreError(f"certificate {name!r}: cannot read {path}: {exc}") from exc
        return out

    def cloud_id(self, name: str) -> str | None:
        """The Device Management id recorded when the set was created, if any."""
        try:
            record = json.loads((self.location / check_certificate_name(name) / CLOUD_FILE).read_text())
        except (OSError, ValueError):  # absent, not JSON, or not UTF-8: no usable record
            return None
        value = record.get("id") if isinstance(record, dict) else None
        return str(value) if value else None

    def remove_certificate(self, name: str) -> bool:
        """Forget a set and delete its directory; return whether it existed."""
        check_certificate_name(name)
        with self._lock(exclusive=True):
            data = self._read_config()
            known = data["dev_certs"].pop(name, None) is not None
            if known:
                self._write_config(data)
            shutil.rmtree(self.location / name, ignore_errors=True)
        return known
