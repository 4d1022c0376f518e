"""Text from outside made safe to print: escapes for controls and invisible characters, lossless JSON."""

from __future__ import annotations

import json

import pytest

from backfill_sync.safe_text import json_safe, printable, printable_lines

PERSIAN = "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645"  # "I want", with its ZWNJ


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        pytest.param("daily_sales", "daily_sales", id="plain"),
        pytest.param("Überstunden 2024 ☃", "Überstunden 2024 ☃", id="non-ascii-kept"),
        pytest.param("\x1b[31mred", "\\x1b[31mred", id="ansi-escape"),
        pytest.param("a\n::error::x", "a\\n::error::x", id="newline-workflow-command"),
        pytest.param("a\r\tb\x7f\x9b", "a\\r\\tb\\x7f\\x9b", id="cr-tab-del-c1"),
        pytest.param("abc\u202edcba\u2066", "abc\\u202edcba\\u2066", id="bidi"),
        pytest.param("zero\u200bwidth\ufeff\u2060", "zero\\u200bwidth\\ufeff\\u2060", id="invisible"),
        pytest.param("line\u2028sep", "line\\u2028sep", id="line-separator"),
        pytest.param("lone\ud800", "lone\\ud800", id="lone-surrogate"),
        pytest.param("\U000e0001tag", "\\U000e0001tag", id="astral-format"),
        pytest.param(PERSIAN + " 👩\u200d💻", PERSIAN + " 👩\u200d💻", id="zwnj-zwj-kept"),
    ],
)
def test_printable_escapes_what_could_repaint_a_terminal_or_start_a_log_line(text: str, shown: str):
    assert printable(text) == shown
    printable(text).encode("utf-8")


def test_printable_lines_keeps_our_own_line_breaks():
    assert printable_lines("first \x1b[2J\nsecond\r\nthird\r") == "first \\x1b[2J\nsecond\r\nthird\\r"


@pytest.mark.parametrize(
    "value",
    [
        pytest.param({"name": "abc\u202edcba", "n": [1, "\x85\x7f"]}, id="bidi-c1-del"),
        pytest.param({"lone": "\ud800x", "astral": "\U000e0001"}, id="surrogate-and-astral"),
        pytest.param({"plain": "héllo", "ctl": "\x1b\n"}, id="c0-already-escaped"),
    ],
)
def test_json_safe_escapes_losslessly(value: object):
    document = json.dumps(value, indent=2, ensure_ascii=False)
    safe = json_safe(document)
    assert json.loads(safe) == value
    assert printable(safe.replace("\n", "")) == safe.replace("\n", "")  # nothing left to escape
    safe.encode("utf-8")
