"""Safe YAML to Document: timestamps stay strings, positions kept, duplicate keys and alias bombs refused."""

from __future__ import annotations

import math
import re
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from backfill_sync.manifests.document import Document, FieldPath, Position, format_path
from backfill_sync.models import Violation

# Past this many values (counting every expansion of an alias) a manifest is hostile or a mistake;
# real manifests hold a few hundred. It stops "billion laughs" before anything is built.
MAX_YAML_VALUES = 100_000

_TAG = "tag:yaml.org,2002:"
_TIMESTAMP_TAG = _TAG + "timestamp"
_MERGE_TAG = _TAG + "merge"
_MAPPING_TAG = _TAG + "map"
_SEQUENCE_TAG = _TAG + "seq"
_SCALAR_TAGS = frozenset(_TAG + name for name in ("str", "int", "float", "bool", "null", "timestamp"))
# Plain scalars that YAML 1.1 (PyYAML, Mage) and YAML 1.2 (editors, ruamel) read differently: yes/no/on/off,
# 010 (octal), 12:30:00 (base 60), 1_000, 0b101; and 0o17 or 1e3, strings in 1.1 but numbers in 1.2.
_AMBIGUOUS_NUMBER = re.compile(r"[-+]?(0[0-9_]+|0b[01_]+|[0-9][0-9_]*(:[0-5]?[0-9])+(\.[0-9_]*)?|.*_.*)")
_NUMBER_IN_YAML_12 = re.compile(r"[-+]?(0o[0-7]+|[0-9]+[eE][-+]?[0-9]+|[0-9]*\.[0-9]+[eE][-+]?[0-9]+)")


class ManifestLoader(yaml.SafeLoader):
    """SafeLoader whose timestamps stay strings: the manifest grammar, not PyYAML, decides what a date is."""

    yaml_implicit_resolvers = {  # noqa: RUF012 (the class-level table is PyYAML's design)
        first: [(tag, regexp) for tag, regexp in resolvers if tag != _TIMESTAMP_TAG]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }


def _construct_timestamp_as_string(loader: ManifestLoader, node: Node) -> str:
    return str(node.value)


ManifestLoader.add_constructor(_TIMESTAMP_TAG, _construct_timestamp_as_string)


class _Refused(Exception):
    """Building must stop: the document is hostile (alias bomb, recursion)."""

    def __init__(self, node: Node, message: str) -> None:
        super().__init__(message)
        self.node = node
        self.message = message


def parse_yaml(text: str, file: str) -> tuple[Document | None, list[Violation]]:
    """Parse one manifest's text; on any problem return no Document and every violation found."""
    try:
        loader = ManifestLoader(text)
    except yaml.reader.ReaderError as exc:
        line, col = _text_position(text, exc.position)
        return None, [
            Violation(file, line, col, "", f"invalid YAML: character U+{exc.character:04X} is not allowed")
        ]
    try:
        node = loader.get_single_node()
        if node is None:
            return None, [
                Violation(file, 1, 1, "", "the file is empty: a manifest needs pipeline_uuid and backfills")
            ]
        builder = _Builder(file, loader)
        try:
            data = builder.build(node, ())
        except _Refused as exc:
            line, col = _position(exc.node)
            return None, [Violation(file, line, col, "", exc.message)]
    except yaml.MarkedYAMLError as exc:
        return None, [_syntax_violation(file, exc)]
    finally:
        loader.dispose()
    if builder.violations:
        return None, builder.violations + builder.soft
    return Document(file, data, builder.values, builder.keys, tuple(builder.soft)), []


def _syntax_violation(file: str, exc: yaml.MarkedYAMLError) -> Violation:
    mark = exc.problem_mark or exc.context_mark
    line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
    problem, context = exc.problem or "", exc.context or ""
    if "'\\t'" in problem:
        return Violation(file, line, col, "", "invalid YAML: a tab here; YAML is indented with spaces only")
    if problem.startswith("but ") and context:
        message = f"invalid YAML: {context}, {problem}"
    elif context and exc.context_mark:
        message = f"invalid YAML: {problem} ({context} on line {exc.context_mark.line + 1})"
    else:
        message = f"invalid YAML: {problem or context}"
    return Violation(file, line, col, "", message)


def _position(node: Node) -> Position:
    return (node.start_mark.line + 1, node.start_mark.column + 1)


def _text_position(text: str, index: int) -> Position:
    before = text[:index]
    return (before.count("\n") + 1, index - (before.rfind("\n") + 1) + 1)


class _Builder:
    """Turns a composed node tree into plain data, recording positions and collecting problems."""

    def __init__(self, file: str, loader: ManifestLoader) -> None:
        self.file = file
        self.loader = loader
        self.values: dict[FieldPath, Position] = {}
        self.keys: dict[FieldPath, Position] = {}
        self.violations: list[Violation] = []
        self.soft: list[Violation] = []  # reported with the schema's problems, not instead of them
        self._count = 0
        self._open: set[int] = set()

    def build(self, node: Node, path: FieldPath) -> Any:
        self._count += 1
        if self._count > MAX_YAML_VALUES:
            raise _Refused(node, f"the YAML expands to more than {MAX_YAML_VALUES} values (anchors/aliases?)")
        if id(node) in self._open:
            raise _Refused(node, "a YAML alias refers to itself (recursive anchor)")
        self.values.setdefault(path, _position(node))
        self._open.add(id(node))
        try:
            if isinstance(node, MappingNode):
                return self._build_mapping(node, path)
            if isinstance(node, SequenceNode):
                return self._build_sequence(node, path)
            assert isinstance(node, ScalarNode)  # the composer makes only these three kinds
            return self._build_scalar(node, path)
        finally:
            self._open.discard(id(node))

    def _problem(self, node: Node, path: FieldPath, message: str, *, soft: bool = False) -> None:
        """A hard problem leaves no usable data; a soft one leaves well-defined data to check further."""
        line, col = _position(node)
        found = Violation(self.file, line, col, format_path(path), message)
        (self.soft if soft else self.violations).append(found)

    def _build_sequence(self, node: SequenceNode, path: FieldPath) -> list[Any]:
        if node.tag != _SEQUENCE_TAG:
            self._problem(node, path, _unsupported_tag(node))
        return [self.build(item, (*path, index)) for index, item in enumerate(node.value)]

    def _build_mapping(self, node: MappingNode, path: FieldPath) -> dict[str, Any]:
        if node.tag != _MAPPING_TAG:
            self._problem(node, path, _unsupported_tag(node))
        result: dict[str, Any] = {}
        first_lines: dict[str, int] = {}
        merges: list[Node] = []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                merges.append(value_node)
                continue
            key = self._build_key(key_node, path)
            if key is None:
                continue
            if key in first_lines:  # the first value is kept, so the rest of the file is still checked
                self._problem(key_node, (*path, key), _duplicate_message(key, first_lines[key]), soft=True)
                continue
            first_lines[key] = key_node.start_mark.line + 1
            self.keys.setdefault((*path, key), _position(key_node))
            result[key] = self.build(value_node, (*path, key))
        # Merged keys (`<<: *defaults`) never override keys written out; earlier merges win, as in YAML 1.1.
        for merged in self._merge_sources(merges, path):
            for key, value in self.build(merged, path).items():
                result.setdefault(key, value)
        return result

    def _merge_sources(self, merges: list[Node], path: FieldPath) -> list[MappingNode]:
        sources: list[MappingNode] = []
        for merge in merges:
            items = merge.value if isinstance(merge, SequenceNode) else [merge]
            for item in items:
                if isinstance(item, MappingNode):
                    sources.append(item)
                else:
                    self._problem(item, path, "a << merge needs a mapping or a list of mappings")
        return sources

    def _build_key(self, node: Node, path: FieldPath) -> str | None:
        key: object = node
        if isinstance(node, ScalarNode):
            key = self._build_scalar(node, path, is_key=True)
        if isinstance(key, str):
            return key
        shown = "a mapping or list" if isinstance(key, Node) else f"{yaml.safe_dump(key).split(chr(10))[0]}"
        self._problem(node, path, f"keys must be strings, not {shown} (quote the key)")
        return None

    def _build_scalar(self, node: ScalarNode, path: FieldPath, *, is_key: bool = False) -> Any:
        if node.tag not in _SCALAR_TAGS:
            self._problem(node, path, _unsupported_tag(node))
            return None
        value = self.loader.construct_object(node)
        ambiguity = None if is_key else _ambiguity(node, value)
        if ambiguity:
            self._problem(node, path, ambiguity, soft=True)
        if isinstance(value, float) and not math.isfinite(value):
            self._problem(node, path, f"{node.value} cannot be sent to Mage as JSON; use a finite number")
        return value


def _ambiguity(node: ScalarNode, value: Any) -> str | None:
    """Why a plain scalar would be misread by some YAML reader, or None when every reader agrees."""
    if node.style is not None:  # quoted or block: a string for everyone
        return None
    text = node.value
    readers = (
        "to YAML 1.1 readers (this tool, so that is what Mage gets) but {other} to YAML 1.2 ones (editors)"
    )
    if isinstance(value, bool) and text.lower() not in ("true", "false"):
        meaning = f"{text} means {str(value).lower()} " + readers.format(other="a string")
        return f"{meaning}: write {str(value).lower()}, or quote it ('{text}') for the text"
    if isinstance(value, int | float) and _AMBIGUOUS_NUMBER.fullmatch(text):
        meaning = f"{text} means {value} " + readers.format(other="something else")
        return f"{meaning}: write {value}, or quote it ('{text}') for the text"
    if isinstance(value, str) and _NUMBER_IN_YAML_12.fullmatch(text):
        meaning = f"{text} is text " + readers.format(other="a number")
        return f"{meaning}: quote it ('{text}')"
    return None


def _duplicate_message(key: str, first_line: int) -> str:
    return (
        f"duplicate key {key!r} (first set on line {first_line}): YAML would silently keep only the last one"
    )


def _unsupported_tag(node: Node) -> str:
    tag = "!!" + node.tag.removeprefix(_TAG) if node.tag.startswith(_TAG) else node.tag
    return f"unsupported YAML tag {tag}: manifests hold plain data (strings, numbers, lists, mappings)"
