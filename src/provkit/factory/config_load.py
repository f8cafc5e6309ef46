"""Reading ``fcu.yml``: file access, ``<%= ENV['NAME'] %>`` interpolation and YAML parsing.

Failures use the FCU codes: 190 when the file cannot be read, is larger than
:data:`MAX_CONFIG_BYTES` (or names an unset environment variable), 200 when it is not a
YAML mapping or nests deeper than :data:`MAX_NESTING`, 380 when a key is given twice in
one mapping (YAML would silently keep the last one).
"""

from __future__ import annotations

import errno
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import yaml

from provkit.codes import FcuErrorCode
from provkit.errors import ConfigError
from provkit.factory.config import invalid
from provkit.factory.paths import read_regular_file

MAX_CONFIG_BYTES: Final = 1024 * 1024
"""Largest fcu.yml read; a real one is a few KiB."""

MAX_NESTING: Final = 32
"""Deepest nesting of mappings and lists accepted in fcu.yml (the schema uses 3 levels).

PyYAML's scanner slows down quadratically with flow nesting and its composer recurses,
so a file of 5,000 nested brackets would take many seconds and then overflow the stack;
the loader stops at this depth instead.
"""

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


class _TooDeep(yaml.YAMLError):
    """The document nests mappings or lists deeper than :data:`MAX_NESTING`."""


class _DuplicateKey(yaml.YAMLError):
    """A mapping gives the same key twice."""

    def __init__(self, key: str, first_line: int, second_line: int) -> None:
        super().__init__(key)
        self.key = key
        self.lines = (first_line, second_line)


class _FcuLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` for fcu.yml.

    Numbers keep their source text (so text fields keep what was written), a key given
    twice in one mapping is refused, and nesting is bounded by :data:`MAX_NESTING`.
    """

    def fetch_more_tokens(self) -> None:
        # Checked as tokens are scanned, before the slow or recursive parts can start.
        super().fetch_more_tokens()
        if self.flow_level > MAX_NESTING or len(self.indents) > MAX_NESTING:
            raise _TooDeep(f"nesting deeper than {MAX_NESTING} levels (line {self.line + 1})")

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[object, int] = {}
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode):
                line = key_node.start_mark.line + 1
                key = (key_node.tag, key_node.value)
                if key in seen:
                    raise _DuplicateKey(str(key_node.value), seen[key], line)
                seen[key] = line
        return super().construct_mapping(node, deep=deep)

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
        raw = read_regular_file(path, max_bytes=MAX_CONFIG_BYTES).decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        if isinstance(exc, OSError) and exc.errno == errno.EFBIG:
            hint = f"fcu.yml is larger than {MAX_CONFIG_BYTES:,} bytes; a configuration is a few KiB"
        else:
            hint = f"{exc}; create a template (init) or give `config_file`"
        raise ConfigError.from_code(FcuErrorCode.CONFIG_LOAD_FAILED, path, hint=hint) from exc
    # The reserved names take the *resolved* directories: they already honour the
    # environment, and an API argument (home_dir=…, resources_dir=…) must win over it.
    variables = {**os.environ, **reserved}
    text = interpolate(raw, variables, source=path)
    try:
        data = yaml.load(text, Loader=_FcuLoader)  # noqa: S506 - a SafeLoader subclass
    except _DuplicateKey as exc:
        first, second = exc.lines
        raise invalid(
            exc.key,
            f"the key is given twice (lines {first} and {second}); YAML would silently keep the last one",
            f"remove one of the two '{exc.key}:' lines",
        ) from None
    except (yaml.YAMLError, RecursionError) as exc:
        # RecursionError: a last guard should some construct still nest past the bound.
        detail = str(exc) if isinstance(exc, yaml.YAMLError) else "nesting too deep"
        raise ConfigError.from_code(
            FcuErrorCode.CONFIG_NOT_YAML, path, hint=f"fix the YAML syntax: {detail}".splitlines()[0]
        ) from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError.from_code(
            FcuErrorCode.CONFIG_NOT_YAML, path, hint="the file must be a YAML mapping of 'key: value' lines"
        )
    return data
