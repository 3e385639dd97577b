"""YAML documents whose mappings know the line of each of their keys."""

from __future__ import annotations

from typing import Any

import yaml


class Located(dict[str, Any]):
    """A YAML mapping with the line of the mapping and of each key (1-based)."""

    line: int = 0
    lines: dict[str, int]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Also for an empty stand-in mapping built by the importer (found by fuzzing: its
        # `line_of` raised AttributeError).
        self.lines = {}

    def line_of(self, key: str) -> int:
        """The line of ``key``, or of the mapping when the key is absent."""
        return self.lines.get(key, self.line)


class _Loader(yaml.SafeLoader):
    pass


def _mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> Located:
    loader.flatten_mapping(node)
    out = Located()
    out.line, out.lines = node.start_mark.line + 1, {}
    for key_node, value_node in node.value:
        key = str(loader.construct_object(key_node, deep=True))
        out[key] = loader.construct_object(value_node, deep=True)
        out.lines[key] = key_node.start_mark.line + 1
    return out


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


class YamlError(ValueError):
    """The file is not YAML; the message names the line."""


def load_documents(text: str, file: str) -> list[Located]:
    """The mapping documents of a YAML stream (empty documents left out).

    Raises:
        YamlError: the text is not YAML, or a document is not a mapping.
    """
    try:
        docs = list(yaml.load_all(text, Loader=_Loader))
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 0
        raise YamlError(f"{file}:{line}: not valid YAML: {err}") from err
    out = []
    for doc in docs:
        if doc is None:
            continue
        if not isinstance(doc, Located):
            raise YamlError(f"{file}: a document is a {type(doc).__name__}, not a mapping")
        out.append(doc)
    return out
