"""The canonical text of a manifest: key order, UTC datetimes, quoting and indentation, comments kept.

Pure: text in, text out. ruamel.yaml's round-trip mode keeps comments, but it ties each comment to the
key *before* it; a comment is read by people as belonging to the key *below* it, so before keys are
reordered every "lines between two keys" block is detached and re-attached in front of the key it
precedes (see `_reorder`).
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import yaml
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import CommentMark
from ruamel.yaml.scalarstring import (
    FoldedScalarString,
    LiteralScalarString,
    ScalarString,
    SingleQuotedScalarString,
)
from ruamel.yaml.tokens import CommentToken

from backfill_sync.datetimes import format_iso, parse_manifest_datetime
from backfill_sync.manifests.yaml_loader import parse_yaml
from backfill_sync.models import Violation

TOP_LEVEL_ORDER: tuple[str, ...] = ("pipeline_uuid", "backfills")
BACKFILL_ORDER: tuple[str, ...] = (
    "name",
    "description",
    "id",
    "previous_names",
    "start_datetime",
    "end_datetime",
    "interval_type",
    "interval_units",
    "variables",
    "settings",
    "state",
    "retry_failed_before",
)
DATETIME_KEYS = ("start_datetime", "end_datetime", "retry_failed_before")
SCHEMA_URL = "https://backfill-sync.dev/schemas/backfill-manifest.schema.json"
MODELINE = f"# yaml-language-server: $schema={SCHEMA_URL}"

# Columns in the canonical layout (mapping indent 2, sequence items `  - ` with keys at 4).
_TOP_COLUMN = 0
_ITEM_DASH_COLUMN = 2
_ITEM_KEY_COLUMN = 4
_NO_WRAP = 1 << 30  # never fold long strings: a description stays on its line
_STR_TAG = "tag:yaml.org,2002:str"
_BOM = "\ufeff"
_YAML11 = yaml.resolver.Resolver()  # how PyYAML, and so validate, reads a plain scalar


class FormatError(RuntimeError):
    """The canonical text would not mean what the original meant: a bug in fmt (traceback), never written."""


def format_manifest(text: str, data: Any) -> str:
    """The canonical text of a manifest that passed validation; `data` is its validated plain data."""
    tree = _round_trip().load(text.removeprefix(_BOM).replace("\r\n", "\n"))
    _canonicalise(tree, data)
    formatted = dump_tree(tree)
    check_same_meaning(data, formatted)
    return formatted


def unformattable(text: str, file: str) -> list[Violation]:
    """What fmt refuses to rewrite: anchors and aliases (a reordered copy could no longer share them)."""
    found = []
    for token in yaml.scan(text.removeprefix(_BOM), Loader=yaml.SafeLoader):
        if isinstance(token, yaml.AnchorToken | yaml.AliasToken):
            line, col = token.start_mark.line + 1, token.start_mark.column + 1
            message = "fmt does not rewrite anchors or aliases (&, *, <<): write the values out, then run fmt"
            found.append(Violation(file, line, col, "", message))
    return found[:1]


def render_manifest(pipeline_uuid: str, backfills: list[dict[str, Any]], *, schema: str | None = None) -> str:
    """A new manifest in canonical form (what `import` writes), with a modeline pointing at `schema`
    when one is given."""
    tree = CommentedMap()
    tree["pipeline_uuid"] = pipeline_uuid
    items = CommentedSeq(_new_backfill(entry) for entry in backfills)
    for item in items[:-1]:
        _attach_following(item, list(item)[-1], "\n")  # a blank line between backfills, as people write
    tree["backfills"] = items
    if schema is not None:
        tree.yaml_set_start_comment(f"yaml-language-server: $schema={schema}")
    return format_manifest(dump_tree(tree), _plain(pipeline_uuid, backfills))


def dump_tree(tree: Any) -> str:
    stream = io.StringIO()
    _round_trip().dump(tree, stream)
    return stream.getvalue().rstrip("\n") + "\n"


def check_same_meaning(data: Any, formatted: str) -> None:
    """Re-read the canonical text as validate would: the data must be the same, datetimes normalised."""
    document, problems = parse_yaml(formatted, "<formatted>")
    if document is None:
        raise FormatError(f"fmt produced YAML that does not parse: {problems[0]}")
    if _comparable(document.data) != _comparable(data):
        raise FormatError("fmt produced YAML that means something else than the original; nothing written")


def canonical_datetime(text: str) -> str:
    """`2024-01-01` -> `2024-01-01T00:00:00Z`; offsets converted to UTC; microseconds only when non-zero."""
    return format_iso(parse_manifest_datetime(text))


# -- building ---------------------------------------------------------------------------------------


def _round_trip() -> YAML:
    rt = YAML(typ="rt")
    rt.indent(mapping=2, sequence=4, offset=2)
    rt.width = _NO_WRAP
    rt.representer.add_representer(type(None), _represent_null)
    return rt


def _represent_null(representer: Any, _data: None) -> Any:
    # ruamel writes `key:` for null; `null` says it on purpose.
    return representer.represent_scalar("tag:yaml.org,2002:null", "null")


def _new_backfill(entry: dict[str, Any]) -> CommentedMap:
    backfill = CommentedMap()
    for key in BACKFILL_ORDER:
        if key in entry:
            backfill[key] = _commented(entry[key])
    return backfill


def _commented(value: Any) -> Any:
    # ruamel keeps the lines after a nested mapping on its last key, and only a CommentedMap has
    # one: on a plain dict the blank line between backfills would be printed after `variables:`.
    if isinstance(value, dict):
        return CommentedMap((key, _commented(item)) for key, item in value.items())
    if isinstance(value, list):
        return CommentedSeq(_commented(item) for item in value)
    return value


def _plain(pipeline_uuid: str, backfills: list[dict[str, Any]]) -> dict[str, Any]:
    return {"pipeline_uuid": pipeline_uuid, "backfills": backfills}


# -- canonicalising ---------------------------------------------------------------------------------


def _canonicalise(tree: Any, data: Any) -> None:
    if not isinstance(tree, CommentedMap):
        raise FormatError("only a validated manifest (a mapping at the top) can be formatted")
    items = tree.get("backfills")
    if isinstance(items, CommentedSeq):
        for item, plain in zip(items, data["backfills"], strict=True):
            _normalise_datetimes(item, plain)
        _reindent_tokens(_seq_head_tokens(tree, items), _ITEM_DASH_COLUMN)
        for index, item in enumerate(items):
            last = index == len(items) - 1
            _reindent_nested(item, _ITEM_KEY_COLUMN)
            _reorder(item, BACKFILL_ORDER, _ITEM_KEY_COLUMN, _TOP_COLUMN if last else _ITEM_DASH_COLUMN)
    _reorder(tree, TOP_LEVEL_ORDER, _TOP_COLUMN, _TOP_COLUMN)
    _quote_ambiguous(tree)


def _normalise_datetimes(item: CommentedMap, plain: dict[str, Any]) -> None:
    for key in DATETIME_KEYS:
        if key in item:
            item[key] = SingleQuotedScalarString(canonical_datetime(plain[key]))


def _quote_ambiguous(node: Any) -> None:
    """Quote strings that YAML 1.1 readers (PyYAML, validate) would take for a bool, number, date or null.

    ruamel decides quoting by YAML 1.2, where `yes`, `on`, `0o7` or `1_000` are plain strings.
    """
    if isinstance(node, CommentedMap):
        for key in list(node):
            value = node[key]
            if _needs_quotes(value):
                node[key] = SingleQuotedScalarString(value)
            else:
                _quote_ambiguous(value)
        if any(_needs_quotes(key) for key in node):
            _requote_keys(node)
    elif isinstance(node, CommentedSeq):
        for index, value in enumerate(node):
            if _needs_quotes(value):
                node[index] = SingleQuotedScalarString(value)
            else:
                _quote_ambiguous(value)


def _needs_quotes(value: Any) -> bool:
    if not isinstance(value, str) or isinstance(value, ScalarString):
        return False
    tag: str = _YAML11.resolve(yaml.ScalarNode, value, (True, False))  # type: ignore[no-untyped-call]
    return tag != _STR_TAG


def _requote_keys(node: CommentedMap) -> None:
    # Keys cannot be replaced in place; a quoted key equals and hashes like the plain one, so the
    # comments stored under it stay attached.
    items = list(node.items())
    for key, _ in items:
        del node[key]
    for key, value in items:
        node[SingleQuotedScalarString(key) if _needs_quotes(key) else key] = value


# -- moving comments with their keys ----------------------------------------------------------------


def _reorder(node: CommentedMap, order: tuple[str, ...], key_column: int, tail_column: int) -> None:
    """Put the keys in `order` (others after, as they were); comment lines move with the key below them.

    Lines above the first key live outside this mapping and stay there. Lines that were above a key
    that is now first have nowhere to go above it, so they go above the second key.
    """
    keys = list(node)
    leads: dict[Any, str] = {}
    tail = ""
    for index, key in enumerate(keys):
        following = _detach_following(node, key)
        if index + 1 < len(keys):
            leads[keys[index + 1]] = following
        else:
            tail = following
    ranked = sorted(keys, key=lambda key: order.index(key) if key in order else len(order))
    for key in ranked:
        node.move_to_end(key)
    orphan = leads.pop(ranked[0], "")
    if len(ranked) > 1:
        leads[ranked[1]] = orphan + leads.get(ranked[1], "")
    else:
        tail = orphan + tail
    for index, key in enumerate(ranked):
        if index + 1 < len(ranked):
            _attach_following(node, key, _reindent(leads.get(ranked[index + 1], ""), key_column))
        else:
            _attach_following(node, key, _reindent(tail, tail_column))


def _detach_following(node: CommentedMap, key: Any) -> str:
    """Remove and return the full comment lines after `key`'s value; its end-of-line comment stays."""
    entry, slot, block = _after_value(node, key)
    token = entry[slot]
    if token is None:
        return ""
    eol, following = _split_token(token, block)
    _set_token(entry, slot, token, eol, "", block)
    return following


def _attach_following(node: CommentedMap, key: Any, lines: str) -> None:
    entry, slot, block = _after_value(node, key)
    token = entry[slot]
    eol = "" if token is None else _split_token(token, block)[0]
    _set_token(entry, slot, token, eol, lines, block)


def _split_token(token: CommentToken, block: bool) -> tuple[str, str]:
    """(end-of-line comment, following lines). After a `|`/`>` scalar there is no end-of-line part:
    ruamel keeps only the lines below it, without the leading newline."""
    if block:
        return "", str(token.value)
    eol, _, following = token.value.partition("\n")
    return str(eol), str(following)


def _set_token(
    entry: list[Any], slot: int, token: CommentToken | None, eol: str, following: str, block: bool
) -> None:
    value = following if block else eol + "\n" + following
    if not eol and not following:
        entry[slot] = None
    elif token is None:
        entry[slot] = CommentToken(value, CommentMark(0), None)
    else:
        token.value = value


def _after_value(node: CommentedMap | CommentedSeq, key: Any) -> tuple[list[Any], int, bool]:
    """Where ruamel keeps the comments after a value: inside a block collection, after its last item.

    The flag says the value is a `|`/`>` block scalar, whose token holds only the lines below it.
    """
    value = node[key]
    if isinstance(value, CommentedMap | CommentedSeq) and len(value) and not value.fa.flow_style():
        last = len(value) - 1 if isinstance(value, CommentedSeq) else list(value)[-1]
        return _after_value(value, last)
    slot = 0 if isinstance(node, CommentedSeq) else 2
    entry = node.ca.items.setdefault(key, [None, None, None, None])
    return entry, slot, isinstance(value, LiteralScalarString | FoldedScalarString)


def _reindent_nested(node: CommentedMap, column: int) -> None:
    """Comments inside block mappings (variables, settings) follow their keys to the new indentation."""
    for key in node:
        value = node[key]
        if not isinstance(value, CommentedMap) or not len(value) or value.fa.flow_style():
            continue
        inner = column + 2
        _tidy_nested_head(node, key, value, inner)
        for inner_key in list(value)[:-1]:  # the last one's lines belong to the level above
            _attach_following(value, inner_key, _reindent(_detach_following(value, inner_key), inner))
        _reindent_nested(value, inner)


def _reindent(lines: str, column: int) -> str:
    """Full-line comments indented like the line they stand above; blank lines kept."""
    return "".join(
        " " * column + line.strip() + "\n" if line.strip() else "\n" for line in lines.splitlines()
    )


def _tidy_nested_head(node: CommentedMap, key: Any, value: CommentedMap, column: int) -> None:
    """Comment lines between `key:` and its first nested key: reindented, blank lines dropped
    (a blank line right after `variables:` is never meant, and older imports wrote one)."""
    entry = node.ca.items.get(key)
    heads = [entry[3] if entry else None, value.ca.comment[1] if value.ca.comment else None]
    tokens = list(_unique_tokens(heads))
    _reindent_tokens(iter(tokens), column)
    for token in tokens:
        token.value = "".join(line + "\n" for line in token.value.splitlines() if line.strip())
    for tokens_list in heads:
        if tokens_list is not None:
            tokens_list[:] = [
                token for token in tokens_list if not isinstance(token, CommentToken) or token.value
            ]


def _seq_head_tokens(tree: CommentedMap, items: CommentedSeq) -> Iterator[CommentToken]:
    """Comment lines between `backfills:` and its first item."""
    entry = tree.ca.items.get("backfills")
    yield from _unique_tokens(
        [items.ca.comment[1] if items.ca.comment else None, entry[3] if entry else None]
    )


def _unique_tokens(sources: list[list[Any] | None]) -> Iterator[CommentToken]:
    # ruamel keeps the lines above a collection's first item in two places, as one shared token.
    seen: set[int] = set()
    for tokens in sources:
        for token in tokens or []:
            if isinstance(token, CommentToken) and id(token) not in seen:
                seen.add(id(token))
                yield token


def _reindent_tokens(tokens: Iterator[CommentToken], column: int) -> None:
    # A comment before an item is written `start_mark.column` spaces in, then its text.
    for token in tokens:
        token.value = _reindent(token.value, column).lstrip(" ")
        token.start_mark = CommentMark(column)  # type: ignore[assignment]


# -- comparing --------------------------------------------------------------------------------------


def _comparable(data: Any) -> str:
    """JSON with datetimes canonical: equal exactly when the two manifests mean the same."""
    copy = json.loads(json.dumps(data))
    for entry in copy.get("backfills") or []:
        for key in DATETIME_KEYS:
            if isinstance(entry.get(key), str):
                entry[key] = canonical_datetime(entry[key])
    return json.dumps(copy, sort_keys=True)
