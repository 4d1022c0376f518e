"""Safe YAML to Document: timestamps stay strings, positions kept, duplicate keys and alias bombs refused.

libyaml reads the text when PyYAML has it. A text libyaml refuses is read again by PyYAML's pure-Python
parser, which words every YAML error and settles the rare texts the two disagree on, so validate says
the same with or without libyaml; it is only slower without.
"""

from __future__ import annotations

import math
import re
import sys
from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.events import MappingStartEvent, NodeEvent, ScalarEvent, SequenceStartEvent
from yaml.nodes import ScalarNode

from backfill_sync.manifests.document import Document, FieldPath, Position, format_path
from backfill_sync.manifests.yaml_events import HAVE_LIBYAML, EventTree, read_events
from backfill_sync.models import Violation

# Past this many values (counting every expansion of an alias) a manifest is hostile or a mistake;
# real manifests hold a few hundred. It stops "billion laughs" before anything is built.
MAX_YAML_VALUES = 100_000
# Past this many levels of nesting (through aliases and << merges too) a manifest is hostile: real ones
# use five or six, and deeper data would exhaust Python's recursion in whatever reads it next.
MAX_YAML_DEPTH = 100

_TAG = "tag:yaml.org,2002:"
_STR_TAG = _TAG + "str"
_TIMESTAMP_TAG = _TAG + "timestamp"
_MERGE_TAG = _TAG + "merge"
_MAPPING_TAG = _TAG + "map"
_SEQUENCE_TAG = _TAG + "seq"
_TEXT_TAGS = frozenset((_STR_TAG, _TIMESTAMP_TAG))  # timestamps stay the text written: see datetimes.py
_SAFE = SafeConstructor()
_CONSTRUCTORS = {
    _TAG + "int": _SAFE.construct_yaml_int,
    _TAG + "float": _SAFE.construct_yaml_float,
    _TAG + "bool": _SAFE.construct_yaml_bool,
    _TAG + "null": _SAFE.construct_yaml_null,
}
# How PyYAML's SafeLoader resolves a plain scalar, by its first character, except that nothing is a
# timestamp: the manifest grammar, not PyYAML, decides what a date is.
_RESOLVERS: dict[str | None, list[tuple[str, re.Pattern[str]]]] = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != _TIMESTAMP_TAG]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_ANY_FIRST = _RESOLVERS.pop(None, [])  # tried after those of the first character, as PyYAML does
_PLAIN_RESOLVERS = {
    first: resolvers + _ANY_FIRST for first, resolvers in _RESOLVERS.items() if first is not None
}
_PLAIN_TAGS: dict[str, str] = {}  # resolved plain scalars: keys and common values repeat in every file
_PLAIN_TAGS_KEPT = 10_000
_CONSTRUCTED: dict[tuple[str, str], tuple[Any, bool]] = {}  # see _remember_constructed
_CONSTRUCTED_KEPT = 10_000
# Plain scalars that YAML 1.1 (PyYAML, Mage) and YAML 1.2 (editors, ruamel) read differently: yes/no/on/off,
# 010 (octal), 12:30:00 (base 60), 1_000, 0b101; and 0o17 or 1e3, strings in 1.1 but numbers in 1.2.
_AMBIGUOUS_NUMBER = re.compile(r"[-+]?(0[0-9_]+|0b[01_]+|[0-9][0-9_]*(:[0-5]?[0-9])+(\.[0-9_]*)?|.*_.*)")
_NUMBER_IN_YAML_12 = re.compile(r"[-+]?(0o[0-7]+|[0-9]+[eE][-+]?[0-9]+|[0-9]*\.[0-9]+[eE][-+]?[0-9]+)")
_NUMBER_STARTS = frozenset("+-.0123456789")
_HEADER_INTO_COMMENT = re.compile(r"[|>][-+0-9]*#")  # `|#`: libyaml reads it, PyYAML refuses it
# PyYAML turns "\ud800" into half a character, which no UTF-8 text (or JSON for Mage) can carry.
_SURROGATE = re.compile("[\ud800-\udfff]")
_UNREADABLE = object()  # a scalar whose problem is already reported


class _PyYAMLDecides(Exception):
    """libyaml's reading of this text may differ from PyYAML's pure-Python one, which decides."""


class _Refused(Exception):
    """Building must stop: the document is hostile (alias bomb, recursion, depth)."""

    def __init__(self, position: Position, message: str) -> None:
        super().__init__(message)
        self.position = position
        self.message = message


def parse_yaml(text: str, file: str, *, libyaml: bool = True) -> tuple[Document | None, list[Violation]]:
    """Parse one manifest's text; on any problem return no Document and every violation found.

    `libyaml=False` reads with PyYAML's pure-Python parser only, as when PyYAML comes without libyaml.
    """
    if libyaml and HAVE_LIBYAML and not _libyaml_differs(text):
        try:
            return _build(read_events(text, libyaml=True), file, libyaml=True)
        except (yaml.YAMLError, UnicodeError, _PyYAMLDecides):
            pass  # read again below: PyYAML's wording, and its verdict where the parsers disagree
    try:
        tree = read_events(text, libyaml=False)
    except yaml.reader.ReaderError as exc:
        line, col = _text_position(text, exc.position)
        message = f"invalid YAML: character U+{exc.character:04X} is not allowed"
        return None, [Violation(file, line, col, "", message)]
    except yaml.MarkedYAMLError as exc:
        return None, [_syntax_violation(file, exc)]
    return _build(tree, file, libyaml=False)


def _libyaml_differs(text: str) -> bool:
    """Whether libyaml may read this text otherwise than PyYAML's pure-Python parser (found by comparing
    the two on generated texts): tabs (libyaml allows more), a byte-order mark after the start (PyYAML
    gives it no column), or a block scalar's header run into a comment (`|#`)."""
    if "\t" in text or text.find("\ufeff", 1) >= 0:
        return True
    return ("|" in text or ">" in text) and _HEADER_INTO_COMMENT.search(text) is not None


def _build(tree: EventTree | None, file: str, *, libyaml: bool) -> tuple[Document | None, list[Violation]]:
    if tree is None:
        message = "the file is empty: a manifest needs pipeline_uuid and backfills"
        return None, [Violation(file, 1, 1, "", message)]
    builder = _Builder(file, tree, libyaml=libyaml)
    try:
        data = builder.build(0, ())
    except _Refused as exc:
        return None, [Violation(file, *exc.position, "", exc.message)]
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


def _text_position(text: str, index: int) -> Position:
    before = text[:index]
    return (before.count("\n") + 1, index - (before.rfind("\n") + 1) + 1)


class _Builder:
    """Turns a document's events into plain data, recording positions and collecting problems.

    A node is the index of its event in the tree; an alias is its anchored node, as in PyYAML's node
    graph, so positions, counts and recursion work out as they did on nodes.
    """

    def __init__(self, file: str, tree: EventTree, *, libyaml: bool) -> None:
        self.file = file
        self.libyaml = libyaml
        self.events = tree.events
        self.items = tree.items
        self.values: dict[FieldPath, Position] = {}
        self.keys: dict[FieldPath, Position] = {}
        self.violations: list[Violation] = []
        self.soft: list[Violation] = []  # reported with the schema's problems, not instead of them
        self._count = 0
        self._open: set[int] = set()

    def build(self, node: int, path: FieldPath) -> Any:
        self._count += 1
        if self._count > MAX_YAML_VALUES:
            message = f"the YAML expands to more than {MAX_YAML_VALUES} values (anchors/aliases?)"
            raise _Refused(self._position(node), message)
        event = self.events[node]
        mark = event.start_mark
        self.values.setdefault(path, (mark.line + 1, mark.column + 1) if mark else (1, 1))
        if type(event) is ScalarEvent:
            return self._build_scalar(node, event, path)
        if node in self._open:
            raise _Refused(self._position(node), "a YAML alias refers to itself (recursive anchor)")
        if len(self._open) >= MAX_YAML_DEPTH:
            message = f"the YAML nests more than {MAX_YAML_DEPTH} levels deep; a manifest needs a handful"
            raise _Refused(self._position(node), message)
        self._open.add(node)
        try:
            if type(event) is MappingStartEvent:
                return self._build_mapping(node, event, path)
            return self._build_sequence(node, event, path)
        finally:
            self._open.discard(node)

    def _position(self, node: int) -> Position:
        mark = self.events[node].start_mark
        return (mark.line + 1, mark.column + 1) if mark else (1, 1)

    def _problem(self, node: int, path: FieldPath, message: str, *, soft: bool = False) -> None:
        """A hard problem leaves no usable data; a soft one leaves well-defined data to check further."""
        line, col = self._position(node)
        found = Violation(self.file, line, col, format_path(path), message)
        (self.soft if soft else self.violations).append(found)

    def _build_sequence(self, node: int, event: NodeEvent, path: FieldPath) -> list[Any]:
        tag = _collection_tag(event, _SEQUENCE_TAG)
        if tag != _SEQUENCE_TAG:
            self._problem(node, path, _unsupported_tag(tag))
        return [self.build(item, (*path, index)) for index, item in enumerate(self.items[node])]

    def _build_mapping(self, node: int, event: NodeEvent, path: FieldPath) -> dict[str, Any]:
        tag = _collection_tag(event, _MAPPING_TAG)
        if tag != _MAPPING_TAG:
            self._problem(node, path, _unsupported_tag(tag))
        result: dict[str, Any] = {}
        first_lines: dict[str, int] = {}
        merges: list[int] = []
        items = self.items[node]
        events = self.events
        for key_node, value_node in zip(items[::2], items[1::2], strict=True):
            key_event = events[key_node]
            if not isinstance(key_event, ScalarEvent):
                self._problem(key_node, path, "keys must be strings, not a mapping or list (quote the key)")
                continue
            if key_event.value == "<<" and _scalar_tag(key_event) == _MERGE_TAG:
                merges.append(value_node)
                continue
            key = self._build_scalar(key_node, key_event, path, is_key=True)
            if not isinstance(key, str):
                self._not_a_key(key_node, key, path)
                continue
            where = (*path, key)
            if key in first_lines:  # the first value is kept, so the rest of the file is still checked
                self._problem(key_node, where, _duplicate_message(key, first_lines[key]), soft=True)
                continue
            mark = key_event.start_mark
            position = (mark.line + 1, mark.column + 1) if mark else (1, 1)
            first_lines[key] = position[0]
            self.keys.setdefault(where, position)
            result[key] = self.build(value_node, where)
        # Merged keys (`<<: *defaults`) never override keys written out; earlier merges win, as in YAML 1.1.
        for merged in self._merge_sources(merges, path):
            for key, value in self.build(merged, path).items():
                result.setdefault(key, value)
        return result

    def _merge_sources(self, merges: list[int], path: FieldPath) -> list[int]:
        sources: list[int] = []
        for merge in merges:
            event = self.events[merge]
            for item in self.items[merge] if isinstance(event, SequenceStartEvent) else [merge]:
                found = self.events[item]
                if isinstance(found, MappingStartEvent):
                    sources.append(item)
                    continue
                if self.libyaml and isinstance(found, ScalarEvent) and not found.value and not found.style:
                    raise _PyYAMLDecides  # where an empty value is, libyaml and PyYAML may not agree
                self._problem(item, path, "a << merge needs a mapping or a list of mappings")
        return sources

    def _not_a_key(self, node: int, key: Any, path: FieldPath) -> None:
        if key is not _UNREADABLE:  # else its problem is reported already
            shown = yaml.safe_dump(key).split("\n")[0]
            self._problem(node, path, f"keys must be strings, not {shown} (quote the key)")

    def _build_scalar(self, node: int, event: ScalarEvent, path: FieldPath, *, is_key: bool = False) -> Any:
        text, style = event.value, event.style
        if self.libyaml and not style and (not text or "?" in text):
            # An empty plain value (libyaml may place or tag it differently), or one holding a `?`
            # (which in a flow collection libyaml reads as text, PyYAML as an error).
            raise _PyYAMLDecides
        tag = _scalar_tag(event)
        if tag in _TEXT_TAGS:
            if style == '"' and _SURROGATE.search(text):
                self._problem(node, path, _surrogate_message(text))
                return _UNREADABLE
            if not style and not is_key and text[:1] in _NUMBER_STARTS and _NUMBER_IN_YAML_12.fullmatch(text):
                self._problem(node, path, _ambiguity_message(text, text), soft=True)
            return text
        if tag not in _CONSTRUCTORS:
            self._problem(node, path, _unsupported_tag(tag))
            return None
        known = _CONSTRUCTED.get((tag, text))
        if known is None:
            value, problem = _construct(tag, text)
            if problem:
                self._problem(node, path, problem)
                return _UNREADABLE
            known = _remember_constructed(tag, text, value)
        value, ambiguous = known
        if isinstance(value, float) and not math.isfinite(value):
            self._problem(node, path, f"{text} cannot be sent to Mage as JSON; use a finite number")
        if not style and not is_key and ambiguous:
            self._problem(node, path, _ambiguity_message(text, value), soft=True)
        return value


def _remember_constructed(tag: str, text: str, value: Any) -> tuple[Any, bool]:
    """The value and whether YAML 1.2 readers take its text for something else, kept for the next time
    (bools, numbers and nulls are immutable, and the same few recur in every entry of every file)."""
    known = (value, _is_ambiguous(text, value))
    if len(_CONSTRUCTED) < _CONSTRUCTED_KEPT:
        _CONSTRUCTED[(tag, text)] = known
    return known


def _scalar_tag(event: ScalarEvent) -> str:
    """The tag PyYAML's SafeLoader gives a scalar, except that none is a timestamp by its looks."""
    tag = event.tag
    if tag is not None and tag != "!":
        return tag
    if not event.implicit[0]:
        return _STR_TAG
    value = event.value
    known = _PLAIN_TAGS.get(value)
    if known is None:
        known = _resolve_plain(value)
        if len(_PLAIN_TAGS) < _PLAIN_TAGS_KEPT:
            _PLAIN_TAGS[value] = known
    return known


def _resolve_plain(value: str) -> str:
    for tag, regexp in _PLAIN_RESOLVERS.get(value[0] if value else "", _ANY_FIRST):
        if regexp.match(value):
            return tag
    return _STR_TAG


def _collection_tag(event: NodeEvent, default: str) -> str:
    tag = getattr(event, "tag", None)
    return default if tag is None or tag == "!" else str(tag)


def _is_ambiguous(text: str, value: Any) -> bool:
    """Whether YAML 1.2 readers (editors) take this plain bool or number for something else."""
    if isinstance(value, bool):
        return text.lower() not in ("true", "false")
    return isinstance(value, int | float) and _AMBIGUOUS_NUMBER.fullmatch(text) is not None


def _ambiguity_message(text: str, value: Any) -> str:
    readers = (
        "to YAML 1.1 readers (this tool, so that is what Mage gets) but {other} to YAML 1.2 ones (editors)"
    )
    if isinstance(value, str):
        meaning = f"{text} is text " + readers.format(other="a number")
        return f"{meaning}: quote it ('{text}')"
    shown = str(value).lower() if isinstance(value, bool) else str(value)
    other = "a string" if isinstance(value, bool) else "something else"
    meaning = f"{text} means {shown} " + readers.format(other=other)
    return f"{meaning}: write {shown}, or quote it ('{text}') for the text"


def _duplicate_message(key: str, first_line: int) -> str:
    return (
        f"duplicate key {key!r} (first set on line {first_line}): YAML would silently keep only the last one"
    )


def _unsupported_tag(tag: str) -> str:
    shown = "!!" + tag.removeprefix(_TAG) if tag.startswith(_TAG) else tag
    return f"unsupported YAML tag {shown}: manifests hold plain data (strings, numbers, lists, mappings)"


def _construct(tag: str, text: str) -> tuple[Any, str | None]:
    """The value of a bool, number or null scalar, or why it has none (a wrongly tagged text, a huge int)."""
    try:
        value = _CONSTRUCTORS[tag](ScalarNode(tag, text))
    except (ValueError, KeyError):
        digits = text.strip().lstrip("+-").replace("_", "")
        if tag == _TAG + "int" and digits.isdigit():
            return None, _long_integer_message(len(digits))
        shown = text if len(text) <= 40 else text[:37] + "..."
        return (
            None,
            f"{shown!r} is not a valid !!{tag.removeprefix(_TAG)}: fix the value, or drop the tag for text",
        )
    try:
        str(value)  # in hex or base 60, an integer can be read yet be too long for Python to print
    except ValueError:
        return None, _long_integer_message(None)
    return value, None


def _long_integer_message(digits: int | None) -> str:
    count = f"of {digits} digits " if digits else ""
    limit = sys.get_int_max_str_digits()
    return (
        f"an integer {count}is longer than the {limit} digits Python reads or writes; no manifest needs one"
    )


def _surrogate_message(value: str) -> str:
    half = _SURROGATE.search(value)
    code = ord(half.group()) if half else 0
    return (
        f"\\u{code:04X} is half of a UTF-16 surrogate pair, not a character: "
        "write the character itself, or escape it whole as \\U0001F600 does"
    )
