"""Reading ``fcu.yml``: file access, ``<%= ENV['NAME'] %>`` interpolation and YAML parsing.

Failures use the FCU codes: 190 when the file cannot be read (or names an unset
environment variable), 200 when it is not a YAML mapping.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import yaml

from provkit.codes import FcuErrorCode
from provkit.errors import ConfigError
from provkit.factory.paths import read_regular_file

# ERB-style placeholder as FCU documents it; both quote styles are accepted.
_ENV_PLACEHOLDER: Final = re.compile(r"<%=\s*ENV\[\s*(['\"])([A-Za-z_][A-Za-z0-9_]*)\1\s*\]\s*%>")


def interpolate(text: str, variables: Mapping[str, str], *, source: Path) -> str:
    """Replace every ``<%= ENV['NAME'] %>`` in ``text`` with the variable's value.

    Args:
        text: the raw configuration text.
        variables: the values to use (the environment, plus the resolved FCU directories).
        source: the file the text came from, named in errors.

    Raises:
        ConfigError: code 190 when a placeholder names an unset variable.
    """

    def substitute(match: re.Match[str]) -> str:
        name = match.group(2)
        if name not in variables:
            raise ConfigError.from_code(
                FcuErrorCode.CONFIG_LOAD_FAILED,
                source,
                hint=f"environment variable {name} used in the file is not set; export it or edit the file",
            )
        return variables[name]

    # Comments are left alone: a placeholder mentioned in a comment is not a use.
    out = []
    for line in text.splitlines(keepends=True):
        cut = _comment_start(line)
        out.append(_ENV_PLACEHOLDER.sub(substitute, line[:cut]) + line[cut:])
    return "".join(out)


def _comment_start(line: str) -> int:
    """Index where the line's YAML comment begins (``#`` at the start or after a blank, unquoted)."""
    quote = ""
    for index, char in enumerate(line):
        if quote:
            if char == quote:
                quote = ""
        elif char in "'\"" and (index == 0 or line[index - 1] in " \t:[{,"):
            quote = char  # a quote opens a scalar only at its start (O'Brien has none)
        elif char == "#" and (index == 0 or line[index - 1] in " \t"):
            return index
    return len(line)


class SourcedInt(int):
    """An integer read from fcu.yml that remembers how it was written (``0123`` is 83 in YAML 1.1)."""

    source: str


class SourcedFloat(float):
    """A float read from fcu.yml that remembers how it was written (``1.10`` is 1.1 as a float)."""

    source: str


class _FcuLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` whose numbers keep their source text, so text fields keep what was written."""

    def construct_yaml_int(self, node: yaml.ScalarNode) -> SourcedInt:
        value = SourcedInt(super().construct_yaml_int(node))
        value.source = str(node.value)
        return value

    def construct_yaml_float(self, node: yaml.ScalarNode) -> SourcedFloat:
        value = SourcedFloat(super().construct_yaml_float(node))
        value.source = str(node.value)
        return value


_FcuLoader.add_constructor("tag:yaml.org,2002:int", _FcuLoader.construct_yaml_int)
_FcuLoader.add_constructor("tag:yaml.org,2002:float", _FcuLoader.construct_yaml_float)


def scalar_text(value: object) -> str:
    """The text of a scalar as written in fcu.yml (a number's source text, e.g. ``1.10``, ``0123``)."""
    source = getattr(value, "source", None)
    return source if isinstance(source, str) else str(value)


def read_config_mapping(path: Path, reserved: Mapping[str, str]) -> dict[str, Any]:
    """Read, interpolate and parse ``fcu.yml`` into a mapping.

    Args:
        path: the configuration file.
        reserved: the resolved values of the FCU's reserved variables.

    Raises:
        ConfigError: 190 if the file cannot be read, 200 if it is not a YAML mapping.
    """
    try:
        raw = read_regular_file(path).decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError.from_code(
            FcuErrorCode.CONFIG_LOAD_FAILED,
            path,
            hint=f"{exc}; run 'provkit init' to create a template or pass --config-file",
        ) from exc
    # The reserved names take the *resolved* directories: they already honour the
    # environment, and an API argument (home_dir=…, resources_dir=…) must win over it.
    variables = {**os.environ, **reserved}
    text = interpolate(raw, variables, source=path)
    try:
        data = yaml.load(text, Loader=_FcuLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise ConfigError.from_code(
            FcuErrorCode.CONFIG_NOT_YAML, path, hint=f"fix the YAML syntax: {exc}".splitlines()[0]
        ) from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError.from_code(
            FcuErrorCode.CONFIG_NOT_YAML, path, hint="the file must be a YAML mapping of 'key: value' lines"
        )
    return data
