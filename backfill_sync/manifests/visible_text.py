"""Text a reviewer reads must show all it holds: invisible format characters are refused in it.

Bidirectional controls can make `reload-eu` display as something else; a zero-width space makes two
names that look the same differ. Every format character (Unicode category Cf) is refused except the
zero-width joiner and non-joiner, which Persian, Indic scripts and emoji need. The set is fixed here
(Unicode 14.0, Python 3.11's) so that every Python gives the same verdict; a test compares it with the
running Python's Unicode database, and the JSON Schema's `$defs/visible_text` lists its BMP part.
"""

from __future__ import annotations

import re
import unicodedata

# Every Cf character but U+200C ZERO WIDTH NON-JOINER and U+200D ZERO WIDTH JOINER.
_FORMAT_CHARACTERS = (
    "\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890-\u0891\u08e2\u180e\u200b\u200e-\u200f\u202a-\u202e"
    "\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb"  # the Basic Multilingual Plane: the schema's pattern
    "\U000110bd\U000110cd\U00013430-\U00013438\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0001"
    "\U000e0020-\U000e007f"
)
_HIDDEN = re.compile(f"[{_FORMAT_CHARACTERS}]")


def hidden_characters(text: str) -> list[str]:
    """The invisible format characters in `text`, each once, in order of appearance."""
    if text.isascii():  # the common case, answered without a scan
        return []
    return list(dict.fromkeys(_HIDDEN.findall(text)))


def hidden_characters_message(characters: list[str]) -> str:
    named = ", ".join(
        f"U+{ord(each):04X} ({unicodedata.name(each, 'a format character')})" for each in characters
    )
    kind, pronoun = (
        ("an invisible character", "it") if len(characters) == 1 else ("invisible characters", "them")
    )
    return f"holds {named}, {kind} that can hide or reorder text from a reviewer: remove {pronoun}"
