"""Reading an endpoint configuration document: YAML or JSON text to plain data, never code.

``yaml.load`` with a ``SafeLoader`` subclass and ``json.loads``: no tag can build a Python
object or call anything. Both parsers silently keep the last of two equal keys in one
mapping; here every mapping remembers such keys (:func:`duplicate_keys`) so the
configuration loader can refuse them with their path.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Final

import yaml

from provkit.errors import EndpointConfigError

__all__ = ["MAX_CONFIG_BYTES", "duplicate_keys", "parse_document"]

MAX_CONFIG_BYTES: Final = 1 << 20
"""Largest configuration document accepted."""


class _Document(dict[object, object]):
    """A parsed YAML/JSON mapping that remembers keys written twice (both parsers keep the last)."""

    def __init__(self) -> None:
        super().__init__()
        self.duplicates: list[object] = []


def _json_object(pairs: list[tuple[str, object]]) -> _Document:
    doc = _Document()
    for key, value in pairs:
        if key in doc:
            doc.duplicates.append(key)
        doc[key] = value
    return doc


class _Loader(yaml.SafeLoader):
    """``yaml.SafeLoader`` whose mappings are :class:`_Document` s."""


def _yaml_mapping(loader: _Loader, node: yaml.MappingNode) -> Iterator[_Document]:
    doc = _Document()
    yield doc
    seen: set[object] = set()
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue  # keys merged in with "<<" may legitimately be overridden
        key = loader.construct_object(key_node)
        try:
            if key in seen:
                doc.duplicates.append(key)
            seen.add(key)
        except TypeError:
            pass  # unhashable: construct_mapping below refuses it
    doc.update(loader.construct_mapping(node))


_Loader.add_constructor("tag:yaml.org,2002:map", _yaml_mapping)


def duplicate_keys(mapping: Mapping[object, object]) -> list[object]:
    """Return the keys written more than once in ``mapping`` as parsed here (else none)."""
    return list(getattr(mapping, "duplicates", ()))


def parse_document(text: str | bytes, name: str = "endpoint configuration") -> object:
    """Parse YAML or JSON text (JSON is YAML, but is tried first for exact error messages).

    Args:
        text: the document.
        name: how error messages name it (usually the file path).

    Raises:
        EndpointConfigError: too large, not UTF-8, not YAML/JSON, or nested too deeply.
    """
    if len(text) > MAX_CONFIG_BYTES:
        raise EndpointConfigError(f"{name} is larger than {MAX_CONFIG_BYTES} bytes")
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise EndpointConfigError(f"{name} is not UTF-8 text") from exc
    try:
        if text.lstrip().startswith("{"):
            return json.loads(text, object_pairs_hook=_json_object)
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader
    except json.JSONDecodeError as exc:
        raise EndpointConfigError(f"{name} is not valid JSON: {exc}") from exc
    except yaml.YAMLError as exc:
        raise EndpointConfigError(f"{name} is not valid YAML: {exc}") from exc
    except RecursionError as exc:
        raise EndpointConfigError(f"{name} is nested too deeply") from exc
