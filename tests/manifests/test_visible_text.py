"""Invisible format characters: one fixed set, the same in validate and in the schema editors read."""

from __future__ import annotations

import re
import sys
import unicodedata

from backfill_sync.manifests.schema import manifest_schema
from backfill_sync.manifests.visible_text import hidden_characters, hidden_characters_message

JOINERS = {"\u200c", "\u200d"}  # ZWNJ and ZWJ: Persian, Indic scripts and emoji need them


def test_the_set_is_every_format_character_but_the_joiners():
    expected = {
        chr(code)
        for code in range(sys.maxunicode + 1)
        if unicodedata.category(chr(code)) == "Cf" and chr(code) not in JOINERS
    }
    found = set(hidden_characters("".join(map(chr, range(sys.maxunicode + 1)))))
    # A newer Unicode may add format characters: add them to visible_text.py and the schema's pattern.
    assert found == expected, f"Unicode {unicodedata.unidata_version}"


def test_the_schemas_pattern_lists_the_same_characters_of_the_basic_multilingual_plane():
    pattern = re.compile(manifest_schema()["$defs"]["visible_text"]["not"]["pattern"])
    differ = [
        f"U+{code:04X}"
        for code in range(0x10000)
        if bool(pattern.search(chr(code))) != bool(hidden_characters(f"x{chr(code)}"))
    ]
    assert differ == []


def test_joined_scripts_and_emoji_are_visible_text():
    assert hidden_characters("\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645") == []  # Persian, with ZWNJ
    assert hidden_characters("\U0001f469\u200d\U0001f4bb") == []  # woman technologist, with ZWJ
    assert hidden_characters("reload-2024-q1") == []


def test_each_hidden_character_is_named_once_in_order():
    assert hidden_characters("a\u2066b\u200bc\u2066") == ["\u2066", "\u200b"]
    assert hidden_characters_message(["\u2066", "\u200b"]) == (
        "holds U+2066 (LEFT-TO-RIGHT ISOLATE), U+200B (ZERO WIDTH SPACE), invisible characters "
        "that can hide or reorder text from a reviewer: remove them"
    )
