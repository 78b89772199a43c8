"""YAML for configuration files, bounded against hostile input.

``yaml.safe_load`` builds no objects but still accepts an alias bomb: a few hundred
bytes whose anchors refer to each other expand to billions of nodes, and whoever walks
the result (validation, ``model_dump``) never finishes. :func:`load_yaml` reads a file
of at most ``max_bytes``, composes it with PyYAML's safe loader and, before building
Python objects, counts the nodes of the document *as expanded* (each alias counted as a
full copy of what it refers to): more than ``max_nodes`` is refused with one line. Deep
nesting and recursive anchors are refused too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError
from yaml.nodes import MappingNode, Node, SequenceNode

from guardian_lib.errors import ConfigError, validation_message

__all__ = [
    "StrictModel",
    "load_yaml",
    "load_yaml_text",
    "load_yaml_model",
    "MAX_YAML_BYTES",
    "MAX_YAML_NODES",
]


class StrictModel(BaseModel):
    """Base of the configuration files' models: an unknown key is an error, not ignored
    (a misspelt setting must not silently fall back to its default)."""

    model_config = ConfigDict(extra="forbid")


_Model = TypeVar("_Model", bound=BaseModel)

#: Largest configuration file read. [bytes]
MAX_YAML_BYTES = 2_000_000
#: Most nodes a document may expand to (aliases counted as copies). [-]
MAX_YAML_NODES = 500_000
_MAX_DEPTH = 200


def _children(node: Node) -> list[Node]:
    if isinstance(node, SequenceNode):
        return list(node.value)
    if isinstance(node, MappingNode):
        return [x for kv in node.value for x in kv]
    return []


def _expanded_size(root: Node, limit: int, label: str) -> int:
    """Nodes of the document with every alias expanded; stops as soon as ``limit`` is passed."""
    sizes: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[Node, int, bool]] = [(root, 0, False)]
    while stack:
        node, depth, done = stack.pop()
        key = id(node)
        if done:
            on_path.discard(key)
            total = 1 + sum(sizes[id(c)] for c in _children(node))
            if total > limit:
                raise ConfigError(
                    f"{label}: YAML expands to more than {limit:,} nodes (anchors and "
                    "aliases that multiply each other?); refusing it"
                )
            sizes[key] = total
            continue
        if key in sizes:
            continue
        if key in on_path:
            raise ConfigError(f"{label}: recursive YAML alias (a node that contains itself)")
        if depth > _MAX_DEPTH:
            raise ConfigError(f"{label}: YAML nested too deeply (more than {_MAX_DEPTH} levels)")
        on_path.add(key)
        stack.append((node, depth, True))
        stack.extend((c, depth + 1, False) for c in _children(node) if id(c) not in sizes)
    return sizes[id(root)]


def load_yaml_text(text: str, label: str = "<text>", max_nodes: int = MAX_YAML_NODES) -> Any:
    """Parse one YAML document safely (see module docstring).

    Parameters
    ----------
    text : str
    label : str
        Named in errors (usually the file path).
    max_nodes : int
        Limit on the expanded node count. [-]

    Raises
    ------
    ConfigError
        Not YAML, an alias bomb, a recursive alias or nesting deeper than 200 levels.
    """
    try:
        loader = yaml.SafeLoader(text)
    except yaml.YAMLError as exc:  # the reader refuses control characters at once
        raise ConfigError(f"{label}: not valid YAML: {' '.join(str(exc).split())}") from None
    try:
        try:
            node = loader.get_single_node()
        except RecursionError:
            raise ConfigError(f"{label}: YAML nested too deeply") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"{label}: not valid YAML: {' '.join(str(exc).split())}") from None
        if node is None:
            return None
        _expanded_size(node, max_nodes, label)
        try:
            return loader.construct_document(node)
        except yaml.YAMLError as exc:
            raise ConfigError(f"{label}: not valid YAML: {' '.join(str(exc).split())}") from None
    finally:
        loader.dispose()


def load_yaml(
    path: Path | str, max_bytes: int = MAX_YAML_BYTES, max_nodes: int = MAX_YAML_NODES
) -> Any:
    """Read and parse a YAML file of at most ``max_bytes`` bytes safely.

    Raises
    ------
    ConfigError
        Missing, unreadable, too large, not UTF-8 or refused by :func:`load_yaml_text`.
    """
    path = Path(path)
    try:
        with path.open("rb") as fh:
            data = fh.read(max_bytes + 1)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if len(data) > max_bytes:
        raise ConfigError(f"{path}: larger than {max_bytes:,} bytes; refusing a configuration file")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    return load_yaml_text(text, str(path), max_nodes)


def load_yaml_model(
    path: Path | str,
    model: type[_Model],
    shape: str,
    what: str | None = None,
    extra: dict[str, Any] | None = None,
) -> _Model:
    """Read a YAML file safely (:func:`load_yaml`) and validate it as ``model``.

    The one way to load a configuration file: bounded YAML, a mapping at the top, then
    pydantic, every error naming the file and the field.

    Parameters
    ----------
    path : path
    model : pydantic model class
    shape : str
        What the top of the file must be, for the error when it is not a mapping
        (``"an OLT inventory with 'olts:'"``).
    what : str, optional
        What the file is, put after its name in validation errors (``"invalid site file"``).
    extra : dict, optional
        Fields added to the file's own before validation (such as its ``path``).

    Raises
    ------
    ConfigError
        Unreadable or unsafe YAML, not a mapping, or invalid for ``model`` (one line per
        problem: ``<file>: [<what>: ]<field path>: <message> (got <value>)``).
    """
    path = Path(path)
    data = load_yaml(path)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected {shape}, got {type(data).__name__}")
    try:
        return model.model_validate({**data, **(extra or {})})
    except ValidationError as exc:
        raise ConfigError(validation_message(path, exc, what)) from None
