"""One YAML document as a flat list of parser events, read by libyaml (C) or PyYAML's pure-Python parser.

PyYAML's composer would turn these events into node objects, calling a resolver for each; the builder in
yaml_loader walks the list by index instead, which is most of what makes libyaml pay. The checks the
composer makes (one document; an anchor defined once, before any alias to it) are made here, raising
the composer's own errors.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import yaml
from yaml.composer import ComposerError
from yaml.events import (
    AliasEvent,
    Event,
    MappingEndEvent,
    MappingStartEvent,
    NodeEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
    StreamEndEvent,
)
from yaml.scanner import ScannerError

try:
    from yaml._yaml import CParser
except ImportError:  # PyYAML built without libyaml: the pure-Python parser reads everything, slower
    HAVE_LIBYAML = False
else:
    HAVE_LIBYAML = True


class _Parser(Protocol):
    """What libyaml's CParser and PyYAML's pure-Python loader both offer."""

    def get_event(self) -> Event | None: ...
    def check_event(self, *choices: type[Event]) -> bool: ...
    def dispose(self) -> None: ...


@dataclass(frozen=True, slots=True)
class EventTree:
    """The node events of one document, the root first, in the order written.

    `items[i]` lists the nodes inside the collection that starts at event `i` (for a mapping, keys and
    values alternating); an alias is listed as the node it names, so the tree is PyYAML's node graph.
    """

    events: list[NodeEvent]
    items: dict[int, list[int]]


def read_events(text: str, *, libyaml: bool) -> EventTree | None:
    """The single document of `text`, or None when it holds none; YAMLError as PyYAML's loader raises it.

    With `libyaml`, ReaderError and UnicodeEncodeError (a lone surrogate) can come from libyaml's checks
    of the text; without it, ReaderError comes from PyYAML's, before any event.
    """
    if libyaml:
        return _read_with(CParser(text))
    loader = yaml.SafeLoader(text)
    try:
        return _read_with(loader)
    except ValueError as exc:  # PyYAML's scanner calls chr() on an escape such as "\U00110000"
        problem = "found an escape beyond \\U0010FFFF, which is no Unicode character"
        raise ScannerError(None, None, problem, loader.get_mark()) from exc


def _read_with(parser: _Parser) -> EventTree | None:
    try:
        return _read_document(parser)
    finally:
        parser.dispose()


def _read_document(parser: _Parser) -> EventTree | None:
    parser.get_event()  # stream start
    if parser.check_event(StreamEndEvent):
        return None
    parser.get_event()  # document start
    tree = _read_node(parser)
    parser.get_event()  # document end
    if not parser.check_event(StreamEndEvent):
        first, event = _start(tree.events[0]), _start(parser.get_event())
        raise ComposerError(
            "expected a single document in the stream", first, "but found another document", event
        )
    return tree


def _read_node(parser: _Parser) -> EventTree:
    # The hottest loop of validate: one pass per event, with type() tests in order of frequency.
    events: list[NodeEvent] = []
    items: dict[int, list[int]] = {}
    anchors: dict[str, int] = {}
    inside: list[int] = []  # the items of the innermost open collection (first, a list for the root)
    unclosed = [inside]
    while True:
        event = parser.get_event()
        kind = type(event)
        if kind is ScalarEvent or kind is MappingStartEvent or kind is SequenceStartEvent:
            assert isinstance(event, NodeEvent)
            index = len(events)
            inside.append(index)
            events.append(event)
            if event.anchor is not None:
                _define(anchors, event, index, events)
            if kind is not ScalarEvent:
                inside = items[index] = []
                unclosed.append(inside)
                continue
        elif kind is MappingEndEvent or kind is SequenceEndEvent:
            unclosed.pop()
            inside = unclosed[-1]
        elif kind is AliasEvent:
            assert isinstance(event, AliasEvent)
            inside.append(_anchored(anchors, event))
        else:  # the parser ends a document only after its root node
            raise ComposerError(None, None, f"unexpected {kind.__name__} inside a value", None)
        if len(unclosed) == 1:
            return EventTree(events, items)


def _anchored(anchors: dict[str, int], alias: AliasEvent) -> int:
    name = alias.anchor or ""
    if name not in anchors:
        raise ComposerError(None, None, f"found undefined alias {name!r}", _start(alias))
    return anchors[name]


def _define(anchors: dict[str, int], event: NodeEvent, index: int, events: list[NodeEvent]) -> None:
    name = event.anchor or ""
    if name in anchors:
        first = _start(events[anchors[name]])
        raise ComposerError(
            f"found duplicate anchor {name!r}; first occurrence", first, "second occurrence", _start(event)
        )
    anchors[name] = index


def _start(event: Event | None) -> Any:
    # Any: libyaml's marks are a class of their own, with the same line and column as PyYAML's Mark.
    return event.start_mark if event else None
